package rules

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// reloadInterval is how often a file table looks at its file's mtime/size.
const reloadInterval = time.Second

// texthash serves a Postfix source file ("key whitespace value" lines) from
// memory and reloads it when the file changes. A file that fails to reload
// leaves the previous contents in service (reported through Warn).
type texthash struct {
	path     string
	opts     OpenOptions
	interval time.Duration
	now      func() time.Time

	cur       atomic.Pointer[textSnapshot]
	nextCheck atomic.Int64 // unix nanoseconds
	reload    sync.Mutex   // one reload at a time; lookups never wait for it
	lastErr   string       // guarded by reload: the last reload problem reported
}

type textSnapshot struct {
	m  map[string]string
	fi os.FileInfo
}

func openTexthash(_, name string, o OpenOptions) (Table, error) {
	t := &texthash{path: name, opts: o, interval: reloadInterval, now: time.Now}
	snap, err := t.load()
	if err != nil {
		return nil, err
	}
	t.cur.Store(snap)
	t.nextCheck.Store(t.now().Add(t.interval).UnixNano())
	return t, nil
}

func (t *texthash) FixedString() bool { return true }

func (t *texthash) String() string { return "texthash:" + t.path }

// Lookup returns the value stored for the lowercased key.
func (t *texthash) Lookup(_ context.Context, key string) (string, bool, error) {
	t.maybeReload()
	v, ok := t.cur.Load().m[strings.ToLower(key)]
	return v, ok, nil
}

func (t *texthash) maybeReload() {
	now := t.now().UnixNano()
	if now < t.nextCheck.Load() || !t.reload.TryLock() {
		return
	}
	defer t.reload.Unlock()
	t.nextCheck.Store(now + int64(t.interval))
	old := t.cur.Load()
	fi, err := os.Stat(t.path)
	if err == nil && os.SameFile(fi, old.fi) && fi.ModTime().Equal(old.fi.ModTime()) && fi.Size() == old.fi.Size() {
		return
	}
	snap, err := t.load()
	if err != nil {
		if msg := err.Error(); msg != t.lastErr {
			t.lastErr = msg
			t.opts.warn("%s; keeping the previous contents of %s", msg, t.path)
		}
		return
	}
	t.lastErr = ""
	t.cur.Store(snap)
}

func (t *texthash) load() (*textSnapshot, error) {
	f, err := os.Open(t.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	m, err := parseTexthash(t.path, string(data), t.opts)
	if err != nil {
		return nil, err
	}
	return &textSnapshot{m: m, fi: fi}, nil
}

// parseTexthash parses postmap(1) source text. Keys are lowercased; a
// duplicate key keeps its first value (with a warning), as postmap does.
func parseTexthash(path, data string, o OpenOptions) (map[string]string, error) {
	lines, err := logicalLines(data)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	m := make(map[string]string, len(lines))
	for _, l := range lines {
		key, value, err := splitKeyValue(l.text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, l.num, err)
		}
		key = strings.ToLower(key)
		if _, dup := m[key]; dup {
			o.warn("%s:%d: duplicate entry: %q", path, l.num, key)
			continue
		}
		m[key] = value
	}
	return m, nil
}

// splitKeyValue splits "key whitespace value". A key may contain whitespace
// inside double quotes (with \" and \\ escapes); the quotes stay part of
// the key, as in postmap.
func splitKeyValue(line string) (key, value string, err error) {
	line = strings.TrimRight(line, " \t\r\n\v\f")
	i, quoted := 0, false
	for ; i < len(line); i++ {
		c := line[i]
		if quoted {
			if c == '\\' && i+1 < len(line) {
				i++
			} else if c == '"' {
				quoted = false
			}
			continue
		}
		if c == '"' {
			quoted = true
		} else if isSpace(c) {
			break
		}
	}
	if quoted {
		return "", "", fmt.Errorf("unbalanced '\"' in '%s'", line)
	}
	key, value = line[:i], strings.TrimLeft(line[i:], " \t\r\n\v\f")
	if key == "" || value == "" {
		return "", "", fmt.Errorf("expected format: key whitespace value")
	}
	return key, value, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}
