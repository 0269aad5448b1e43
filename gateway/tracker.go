package gateway

import (
	"strconv"
	"strings"
)

// tracker follows the SMTP dialogue from the raw bytes a connection reads
// and the replies it writes. go-smtp gives no hook per command, yet Postfix's
// log needs the command counts of the disconnect line ("ehlo=1 mail=1
// rcpt=0/1 ... commands=3/4"), the command a timeout or lost connection came
// after, bare LF on command lines, and the error count for the soft and hard
// error limits. Commands are queued as they are read and matched to replies
// in order (pipelining keeps that order); DATA content is skipped by the same
// end-of-data state machine go-smtp uses, BDAT content by its byte count.
type tracker struct {
	mode     trackMode
	line     []byte // the command line being read (capped)
	lineLen  int    // its full length, for the command-line limit
	dotState int    // end-of-data state while in modeData
	bdatLeft int64
	pending  []byte // bytes read while DATA waits for its reply

	queue    []string // command verbs awaiting their replies
	last     string   // last command read, for "timeout after X"
	heloVerb string   // "HELO" or "EHLO" when seen
	quit     bool     // QUIT was answered
	bareLF   bool     // a command line ended in a bare LF
	errors   int      // 4xx/5xx replies sent
	tooLong  bool     // a command line exceeded maxCommandLine

	counts [numVerbs]verbCount
}

type trackMode int

const (
	modeCmd trackMode = iota
	modeDataPending
	modeData
	modeBDAT
)

// maxCommandLine bounds a command line; go-smtp's own line limit is off so
// that message lines of any length are accepted, as Postfix does.
const maxCommandLine = 4096

type verbCount struct{ ok, total int }

// Postfix's order of the disconnect statistics.
var verbNames = [...]string{"helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset", "noop", "vrfy", "etrn", "quit", "unknown"}

const numVerbs = len(verbNames)

func verbIndex(v string) int {
	for i, n := range verbNames[:numVerbs-1] {
		if strings.EqualFold(n, v) {
			return i
		}
	}
	return numVerbs - 1
}

// Data end-of-data states, as in go-smtp's data reader.
const (
	dsBeginLine = iota
	dsDot
	dsDotCR
	dsCR
	dsData
)

// feed consumes bytes read from the client.
func (t *tracker) feed(p []byte) {
	for len(p) > 0 {
		switch t.mode {
		case modeCmd:
			p = t.feedCmd(p)
		case modeDataPending:
			t.pending = append(t.pending, p...)
			return
		case modeData:
			p = t.feedData(p)
		case modeBDAT:
			n := int64(len(p))
			if n > t.bdatLeft {
				n = t.bdatLeft
			}
			t.bdatLeft -= n
			p = p[n:]
			if t.bdatLeft == 0 {
				t.mode = modeCmd
			}
		}
	}
}

func (t *tracker) feedCmd(p []byte) []byte {
	for i, c := range p {
		if c != '\n' {
			t.lineLen++
			if len(t.line) < 512 {
				t.line = append(t.line, c)
			}
			if t.lineLen > maxCommandLine {
				t.tooLong = true
			}
			continue
		}
		line := t.line
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		} else {
			t.bareLF = true
		}
		t.command(string(line))
		t.line, t.lineLen = t.line[:0], 0
		return p[i+1:]
	}
	return nil
}

// command records one command line.
func (t *tracker) command(line string) {
	verb, arg, _ := strings.Cut(strings.TrimLeft(line, " "), " ")
	verb = strings.ToUpper(verb)
	t.last = verb
	t.queue = append(t.queue, verb)
	switch verb {
	case "HELO", "EHLO":
		t.heloVerb = verb
	case "DATA":
		t.mode = modeDataPending
	case "BDAT":
		f := strings.Fields(arg)
		if len(f) > 0 {
			if n, err := strconv.ParseUint(f[0], 10, 32); err == nil && n > 0 {
				t.mode, t.bdatLeft = modeBDAT, int64(n)
			}
		}
	}
}

func (t *tracker) feedData(p []byte) []byte {
	for i, c := range p {
		switch t.dotState {
		case dsBeginLine:
			switch c {
			case '.':
				t.dotState = dsDot
			case '\r':
				t.dotState = dsCR
			default:
				t.dotState = dsData
			}
		case dsDot:
			if c == '\r' {
				t.dotState = dsDotCR
			} else {
				t.dotState = dsData
			}
		case dsDotCR:
			if c == '\n' {
				t.mode, t.dotState = modeCmd, dsBeginLine
				return p[i+1:]
			}
			t.dotState = dsData
		case dsCR:
			if c == '\n' {
				t.dotState = dsBeginLine
			} else if c != '\r' {
				t.dotState = dsData
			}
		case dsData:
			if c == '\r' {
				t.dotState = dsCR
			}
		}
	}
	return nil
}

// reply records a final reply line (code and text) written to the client.
// It returns the verb the reply answers ("" for the greeting or a reply
// postgate sends on its own).
func (t *tracker) reply(code int) string {
	if len(t.queue) == 0 {
		return ""
	}
	verb := t.queue[0]
	if verb == "DATA" && t.mode == modeDataPending {
		pending := t.pending
		t.pending = nil
		if code == 354 {
			t.mode, t.dotState = modeData, dsBeginLine
			t.feed(pending)
			return verb
		}
		t.mode = modeCmd
		t.feed(pending)
	}
	t.queue = t.queue[1:]
	c := &t.counts[verbIndex(verb)]
	c.total++
	if code < 400 {
		c.ok++
	} else {
		t.errors++
	}
	if verb == "QUIT" {
		t.quit = true
	}
	return verb
}

// stats formats the disconnect statistics as Postfix does.
func (t *tracker) stats() string {
	var b strings.Builder
	ok, total := 0, 0
	for i, c := range t.counts {
		if c.total == 0 {
			continue
		}
		ok += c.ok
		total += c.total
		b.WriteByte(' ')
		b.WriteString(verbNames[i])
		b.WriteByte('=')
		writeCount(&b, c.ok, c.total)
	}
	b.WriteString(" commands=")
	if total == 0 {
		b.WriteString("0/0")
	} else {
		writeCount(&b, ok, total)
	}
	return b.String()
}

func writeCount(b *strings.Builder, ok, total int) {
	b.WriteString(strconv.Itoa(ok))
	if ok != total {
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(total))
	}
}

// after names the stage for "timeout after X" and "lost connection after X".
func (t *tracker) after() string {
	if t.last == "" {
		return "CONNECT"
	}
	return t.last
}
