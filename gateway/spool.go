package gateway

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Spool files hold the messages that do not fit in postgate_memory_limit
// while they are received. They live in queue_directory/spool, on the
// queue's file system, so the queue copies a message into its log without
// it passing through memory (copy_file_range), and they never outlive
// their session: a spool file has no name (O_TMPFILE), or loses it right
// after it is created, so it is gone when closed or when the process dies.

// spoolDir makes queue_directory/spool and removes what a crash left there
// (spool files from a file system without O_TMPFILE, killed between
// create and unlink).
func spoolDir(queueDir string) (string, error) {
	dir := filepath.Join(queueDir, "spool")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("spool directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("spool directory: %w", err)
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return "", fmt.Errorf("spool directory: remove leftover: %w", err)
		}
	}
	return dir, nil
}

// createSpool creates an unnamed spool file in dir.
func createSpool(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, "(spool)")), nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
		return nil, fmt.Errorf("create spool file in %s: %w", dir, err)
	}
	// No O_TMPFILE on this file system: a name for a moment.
	f, err := os.CreateTemp(dir, "spool-")
	if err != nil {
		return nil, fmt.Errorf("create spool file: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("unlink spool file: %w", err)
	}
	return f, nil
}
