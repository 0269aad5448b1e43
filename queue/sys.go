package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// The few system calls the standard library does not offer: fdatasync,
// pwritev and flock.

// fdatasyncer is the default Syncer: fdatasync flushes the data and the
// file size, not the timestamps nobody needs back.
type fdatasyncer struct{}

func (fdatasyncer) Sync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

var errShortWrite = errors.New("short write")

// iovMax is Linux's IOV_MAX.
const iovMax = 1024

// pwritev writes iov at off in as few system calls as the kernel allows.
// It consumes iov.
func pwritev(f *os.File, iov [][]byte, off int64) error {
	fd := int(f.Fd())
	for len(iov) > 0 {
		chunk := iov[:min(len(iov), iovMax)]
		n, err := unix.Pwritev(fd, chunk, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return errShortWrite
		}
		off += int64(n)
		for n > 0 {
			if n >= len(iov[0]) {
				n -= len(iov[0])
				iov = iov[1:]
			} else {
				iov[0] = iov[0][n:]
				n = 0
			}
		}
		for len(iov) > 0 && len(iov[0]) == 0 {
			iov = iov[1:]
		}
	}
	return nil
}

// lockDir takes the exclusive lock on DIR/lock that keeps a second daemon
// away. The lock goes with the process, so a crash never leaves it stale.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked by another postgate (is one already running on this queue?)", ErrLocked, path)
		}
		return nil, fmt.Errorf("queue: lock %s: %w", path, err)
	}
	// For the admin who wonders who holds it.
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
