package gateway

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// MailLog writes Postfix-shaped mail log lines ("postgate/smtpd[pid]: text").
// To a file it adds the syslog prefix ("Nov 21 05:53:50 host ") as Postfix's
// maillog_file does, so pflogsumm and admins' greps keep working.
//
// Lines are buffered and flushed by a background loop (and at Close) so that
// logging costs no write syscall per line on the hot path. The loop wakes
// only when a line waits, so an idle gateway's log costs no wake-ups.
type MailLog struct {
	mu       sync.Mutex
	w        *bufio.Writer
	pending  chan struct{} // a line waits in an empty buffer: wakes flushLoop
	closer   io.Closer
	prefix   bool // add the syslog timestamp and host
	host     string
	name     string // syslog_name, "postgate"
	pid      int
	stop     chan struct{}
	done     chan struct{}
	closeErr error
	now      func() time.Time
}

// OpenMailLog logs to path (appending, created 0644) with the full syslog
// prefix, or to w without it when path is empty.
func OpenMailLog(path string, w io.Writer, syslogName, host string) (*MailLog, error) {
	l := &MailLog{name: syslogName, host: host, pid: os.Getpid(), now: time.Now,
		pending: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("maillog_file: %w", err)
		}
		l.w, l.closer, l.prefix = bufio.NewWriterSize(f, 64<<10), f, true
	} else {
		l.w = bufio.NewWriterSize(w, 16<<10)
	}
	go l.flushLoop()
	return l, nil
}

// flushDelay is how long a logged line may wait in the buffer: the lines
// that follow it meanwhile share its write.
const flushDelay = 50 * time.Millisecond

// flushLoop flushes the buffer flushDelay after a line went into it empty.
// Until that flush more lines find it non-empty and wake nobody.
func (l *MailLog) flushLoop() {
	defer close(l.done)
	t := time.NewTimer(flushDelay)
	t.Stop()
	for {
		select {
		case <-l.pending:
		case <-l.stop:
			return
		}
		t.Reset(flushDelay)
		select {
		case <-t.C:
		case <-l.stop:
			return // Close flushes
		}
		l.mu.Lock()
		l.w.Flush()
		l.mu.Unlock()
	}
}

// Logf writes one line for program prog ("smtpd", "qmgr", "cleanup").
func (l *MailLog) Logf(prog, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Buffered() == 0 {
		select {
		case l.pending <- struct{}{}:
		default: // already woken
		}
	}
	if l.prefix {
		l.w.WriteString(l.now().Format(time.Stamp))
		l.w.WriteByte(' ')
		l.w.WriteString(l.host)
		l.w.WriteByte(' ')
	}
	fmt.Fprintf(l.w, "%s/%s[%d]: ", l.name, prog, l.pid)
	fmt.Fprintf(l.w, format, args...)
	l.w.WriteByte('\n')
}

// Close flushes and closes the log.
func (l *MailLog) Close() error {
	select {
	case <-l.stop:
		return l.closeErr
	default:
	}
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeErr = l.w.Flush()
	if l.closer != nil {
		if err := l.closer.Close(); l.closeErr == nil {
			l.closeErr = err
		}
	}
	return l.closeErr
}
