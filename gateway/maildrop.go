package gateway

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The maildrop is where `postgate sendmail` leaves a message for the daemon
// (Postfix's postdrop and pickup): queue_directory/postdrop (not
// "maildrop", whose presence marks a Postfix queue directory), a directory
// anyone may create files in but not list or read (mode 1733: sticky, so
// no one removes another's file). A file is written under a name starting
// with '.', synced, then renamed into place, so the daemon never sees a
// partial one. The daemon, the queue's one writer, picks files up into
// the queue and removes them; a message sent while the daemon is down
// waits there.
const MaildropDir = "postdrop"

// Drop is a maildrop file's envelope: its first line, as JSON. The message
// follows, as the submitter gave it (LF line ends).
type Drop struct {
	Sender     string   `json:"sender"`
	Recipients []string `json:"recipients"`
	UID        int      `json:"uid"`
	FullName   string   `json:"full_name,omitempty"`
}

// WriteMaildrop writes a message into qdir's maildrop, creating the
// directory if it can (as root, before the daemon first ran). It returns
// the file's path once the file is complete and durable.
func WriteMaildrop(qdir string, d Drop, content io.Reader) (string, error) {
	dir, err := ensureMaildrop(qdir)
	if err != nil {
		return "", err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("%016x.%s", time.Now().UnixNano(), hex.EncodeToString(rnd[:]))
	tmp := filepath.Join(dir, "."+name)
	// Readable by the daemon, which may run as mail_owner; no one else can
	// find the name (the directory is not listable).
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("maildrop %s: %w", dir, err)
	}
	head, _ := json.Marshal(d)
	w := bufio.NewWriter(f)
	w.Write(head)
	w.WriteByte('\n')
	_, err = io.Copy(w, content)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("maildrop %s: %w", dir, err)
	}
	return filepath.Join(dir, name), nil
}

// ensureMaildrop makes the maildrop directory with its mode (the chmod
// fails harmlessly for a user who does not own it).
func ensureMaildrop(qdir string) (string, error) {
	dir := filepath.Join(qdir, MaildropDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("maildrop %s: %w", dir, err)
	}
	os.Chmod(dir, os.ModeSticky|0o733)
	return dir, nil
}

// readDrop reads a maildrop file: its envelope and the message.
func readDrop(path string, limit int64) (Drop, []byte, error) {
	var d Drop
	b, err := os.ReadFile(path)
	if err != nil {
		return d, nil, err
	}
	head, msg, ok := strings.Cut(string(b), "\n")
	if !ok {
		return d, nil, errors.New("no envelope line")
	}
	if err := json.Unmarshal([]byte(head), &d); err != nil {
		return d, nil, fmt.Errorf("envelope: %w", err)
	}
	if len(d.Recipients) == 0 {
		return d, nil, errors.New("no recipients")
	}
	if limit > 0 && int64(len(msg)) > limit {
		return d, nil, fmt.Errorf("message of %d bytes exceeds message_size_limit %d", len(msg), limit)
	}
	return d, []byte(msg), nil
}
