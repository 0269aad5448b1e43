package harness

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// This file runs protocol scripts: SMTP dialogs written as text, played
// against a server, and written down as a transcript (see
// test/protocol_test.go for the format of both).

// Script is one parsed protocol script.
type Script struct {
	Name  string   // file name without .script
	Main  []string // @main lines, verbatim main.cf text
	Files []File   // @file blocks: tables the @main lines name under @files@
	// DNS is the zone (master-file lines of @dns) the harness serves to
	// both servers; none: the servers get no DNS answers, as before.
	DNS []string
	// Servfail lists the names (@dns-servfail) the DNS server answers
	// SERVFAIL for, whatever the type.
	Servfail []string
	// Sink lists the answers of the RCPT sink (@sink-rcpt) the harness
	// starts for the script, whose next hop @sink@ names in @main lines;
	// UsesSink is set when the script has a sink at all.
	Sink     []SinkRcpt
	UsesSink bool
	Steps    []Step
}

// File is a file a script writes before the server starts.
type File struct {
	Name string // a plain file name
	Text string
}

// StepKind says what a step does.
type StepKind int

const (
	StepConnect     StepKind = iota // close the connection, open a new one, read the greeting
	StepCommand                     // send one line with CRLF, read one reply
	StepPipeline                    // send lines in one write, read one reply per line
	StepRaw                         // send bytes as they are, read nothing
	StepRead                        // read one reply
	StepShutWrite                   // half-close
	StepExpectClose                 // record whether the server closes within CloseWait
	StepSleep                       // wait
	StepContent                     // after a 354: send message content, read one reply
	StepSinkLog                     // record what the RCPT sink got since the last StepSinkLog
)

// Step is one line (or @pipeline block) of a script.
type Step struct {
	Kind    StepKind
	Line    int      // line number in the script file
	Src     string   // StepConnect: local address
	Data    []string // StepCommand: one line; StepPipeline: lines; StepRaw: one text
	Sleep   time.Duration
	Differs *Difference // applies to the first reply this step reads
}

// Difference is a deliberate departure of postgate from Postfix, declared
// with @differs / @postgate for one reply.
type Difference struct {
	Reason   string
	Postgate []string // transcript lines ("S: ...", "-- closed", "-- open") postgate answers
	Line     int      // line of the @differs directive
}

// Transcript lines.
const (
	DiffersMarker = "-- differs: "
	closedLine    = "-- closed"
	openLine      = "-- open"
)

// DefaultSource is the client address of @connect without an argument:
// outside mynetworks, and not 127.0.0.2 (the "listed" address of DNS lists).
const DefaultSource = "127.0.0.5"

// ParseScriptFile reads and parses a .script file.
func ParseScriptFile(path string) (*Script, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSuffix(filepath.Base(path), ".script")
	s, err := ParseScript(name, string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseScript parses script text.
func ParseScript(name, text string) (*Script, error) {
	s := &Script{Name: name}
	var (
		pipeline *Step       // open @pipeline block
		differs  *Difference // declared, waiting for its @postgate lines / its reply
		file     *File       // open @file block
		connect  bool
	)
	lines := strings.Split(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, line := range lines {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		errorf := func(format string, args ...any) error {
			return fmt.Errorf("line %d: %s", n, fmt.Sprintf(format, args...))
		}
		if file != nil {
			if line == "@endfile" {
				s.Files = append(s.Files, *file)
				file = nil
			} else {
				file.Text += line + "\n"
			}
			continue
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if differs != nil && len(differs.Postgate) == 0 && !strings.HasPrefix(line, "@postgate ") {
			return nil, errorf("@differs must be followed by @postgate lines")
		}
		if !strings.HasPrefix(line, "@") {
			data, err := Unescape(line)
			if err != nil {
				return nil, errorf("%v", err)
			}
			if pipeline != nil {
				pipeline.Data = append(pipeline.Data, data)
				continue
			}
			if !connect {
				return nil, errorf("command before the first @connect")
			}
			s.add(&Step{Kind: StepCommand, Line: n, Data: []string{data}}, &differs)
			continue
		}
		word, arg, _ := strings.Cut(line, " ")
		if pipeline != nil && word != "@end" {
			return nil, errorf("%s inside @pipeline (only command lines and @end)", word)
		}
		noArg := func() error {
			if arg != "" {
				return errorf("%s takes no argument", word)
			}
			return nil
		}
		needConn := func() error {
			if !connect {
				return errorf("%s before the first @connect", word)
			}
			return nil
		}
		var err error
		switch word {
		case "@main":
			if len(s.Steps) > 0 || connect {
				return nil, errorf("@main after the first @connect")
			}
			if strings.TrimSpace(arg) == "" {
				return nil, errorf("@main needs a main.cf line")
			}
			s.Main = append(s.Main, arg)
		case "@file":
			name := strings.TrimSpace(arg)
			if connect {
				return nil, errorf("@file after the first @connect")
			}
			if name == "" || strings.ContainsAny(name, "/ \t") {
				return nil, errorf("@file needs a plain file name")
			}
			file = &File{Name: name}
		case "@dns", "@dns-servfail":
			if connect {
				return nil, errorf("%s after the first @connect", word)
			}
			if strings.TrimSpace(arg) == "" {
				return nil, errorf("%s needs a zone line or a name", word)
			}
			if word == "@dns" {
				s.DNS = append(s.DNS, arg)
			} else {
				s.Servfail = append(s.Servfail, strings.TrimSpace(arg))
			}
		case "@sink-rcpt":
			if connect {
				return nil, errorf("@sink-rcpt after the first @connect")
			}
			r := SinkRcpt{}
			var rest string
			r.Addr, rest, _ = strings.Cut(strings.TrimSpace(arg), " ")
			if ms, after, ok := strings.Cut(rest, " "); ok && strings.HasPrefix(ms, "+") {
				n, perr := strconv.Atoi(ms[1:])
				if perr != nil || n < 0 || n > 30000 {
					return nil, errorf("@sink-rcpt delay %q is not +MS (0..30000)", ms)
				}
				r.Delay, rest = time.Duration(n)*time.Millisecond, after
			}
			if r.Reply = strings.TrimSpace(rest); r.Addr == "" || len(r.Reply) < 3 || r.Reply[0] < '2' || r.Reply[0] > '5' {
				return nil, errorf("@sink-rcpt needs an address, maybe +MS, and a reply")
			}
			s.Sink, s.UsesSink = append(s.Sink, r), true
		case "@sink-log":
			if err = noArg(); err == nil {
				err = needConn()
			}
			s.UsesSink = true
			s.Steps = append(s.Steps, Step{Kind: StepSinkLog, Line: n})
		case "@connect":
			src := strings.TrimSpace(arg)
			if src == "" {
				src = DefaultSource
			}
			if ip := net.ParseIP(src); ip == nil || ip.To4() == nil || ip.To4()[0] != 127 {
				return nil, errorf("@connect source %q is not in 127.0.0.0/8", src)
			}
			connect = true
			s.add(&Step{Kind: StepConnect, Line: n, Src: src}, &differs)
		case "@pipeline":
			if err = needConn(); err == nil {
				err = noArg()
			}
			pipeline = &Step{Kind: StepPipeline, Line: n}
		case "@end":
			if pipeline == nil {
				return nil, errorf("@end without @pipeline")
			}
			if err = noArg(); err == nil && len(pipeline.Data) == 0 {
				err = errorf("empty @pipeline")
			}
			s.add(pipeline, &differs)
			pipeline = nil
		case "@raw", "@content":
			if err = needConn(); err != nil {
				break
			}
			var data string
			if data, err = Unescape(arg); err != nil {
				err = errorf("%v", err)
			} else if data == "" {
				err = errorf("%s needs text", word)
			}
			if word == "@raw" {
				s.Steps = append(s.Steps, Step{Kind: StepRaw, Line: n, Data: []string{data}})
			} else {
				s.add(&Step{Kind: StepContent, Line: n, Data: []string{data}}, &differs)
			}
		case "@read":
			if err = needConn(); err == nil {
				err = noArg()
			}
			s.add(&Step{Kind: StepRead, Line: n}, &differs)
		case "@shutwr":
			if err = needConn(); err == nil {
				err = noArg()
			}
			s.Steps = append(s.Steps, Step{Kind: StepShutWrite, Line: n})
		case "@expect-close":
			if err = needConn(); err == nil {
				err = noArg()
			}
			s.add(&Step{Kind: StepExpectClose, Line: n}, &differs)
		case "@sleep":
			ms, perr := strconv.Atoi(strings.TrimSpace(arg))
			if perr != nil || ms < 0 || ms > 10000 {
				err = errorf("@sleep needs milliseconds (0..10000)")
			}
			s.Steps = append(s.Steps, Step{Kind: StepSleep, Line: n, Sleep: time.Duration(ms) * time.Millisecond})
		case "@differs":
			if differs != nil {
				return nil, errorf("@differs while the one of line %d has not met its reply", differs.Line)
			}
			if strings.TrimSpace(arg) == "" {
				return nil, errorf("@differs needs a reason")
			}
			differs = &Difference{Reason: strings.TrimSpace(arg), Line: n}
		case "@postgate":
			if differs == nil {
				return nil, errorf("@postgate without @differs")
			}
			if len(s.Steps) > 0 && s.Steps[len(s.Steps)-1].Differs == differs {
				return nil, errorf("@postgate after the reply it describes")
			}
			var data string
			if data, err = Unescape(arg); err != nil {
				err = errorf("%v", err)
				break
			}
			if data == closedLine || data == openLine {
				differs.Postgate = append(differs.Postgate, data)
			} else {
				differs.Postgate = append(differs.Postgate, "S: "+shortenReply(data))
			}
		default:
			err = errorf("unknown directive %s", word)
		}
		if err != nil {
			return nil, err
		}
	}
	if pipeline != nil {
		return nil, fmt.Errorf("line %d: @pipeline without @end", pipeline.Line)
	}
	if file != nil {
		return nil, fmt.Errorf("@file %s without @endfile", file.Name)
	}
	if differs != nil {
		return nil, fmt.Errorf("line %d: @differs without a reply after it", differs.Line)
	}
	if !connect {
		return nil, fmt.Errorf("no @connect")
	}
	if len(s.Servfail) > 0 && len(s.DNS) == 0 {
		return nil, fmt.Errorf("@dns-servfail without @dns records")
	}
	return s, nil
}

// add appends a step that reads replies, giving it the pending @differs.
func (s *Script) add(st *Step, differs **Difference) {
	st.Differs = *differs
	*differs = nil
	s.Steps = append(s.Steps, *st)
}

// Differences lists the script's @differs declarations in order.
func (s *Script) Differences() []*Difference {
	var ds []*Difference
	for _, st := range s.Steps {
		if st.Differs != nil {
			ds = append(ds, st.Differs)
		}
	}
	return ds
}

// Unescape decodes a script line's escapes: \r \n \t \\ \xHH.
func Unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("trailing backslash")
		}
		i++
		switch s[i] {
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case '\\':
			b.WriteByte('\\')
		case 'x':
			if i+2 >= len(s) {
				return "", fmt.Errorf(`short \x escape`)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf(`bad \x escape %q`, s[i-1:i+3])
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			return "", fmt.Errorf(`unknown escape \%c`, s[i])
		}
	}
	return b.String(), nil
}

// Quote shows bytes in a transcript: printable UTF-8 as it is, a backslash
// as \\, CR, LF and TAB as \r \n \t, every other byte as \xHH.
func Quote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError && size == 1, r < 0x20, r == 0x7f, r >= 0x80 && !unicode.IsPrint(r):
			for j := 0; j < size; j++ {
				fmt.Fprintf(&b, `\x%02x`, s[i+j])
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Transcript shortening: a client line over shortenOver bytes is shown as
// its first shortenTo bytes and its length. A server line is shortened only
// beyond replyShortenOver bytes, and keeps its last shortenTo bytes too
// (replies are what is tested).
const (
	shortenOver      = 100
	replyShortenOver = 1000
	shortenTo        = 60
)

func shorten(s string) string {
	if len(s) <= shortenOver {
		return show(s)
	}
	return fmt.Sprintf("%s...(%d bytes)", Quote(s[:shortenTo]), len(s))
}

func shortenReply(s string) string {
	if len(s) <= replyShortenOver {
		return show(s)
	}
	return fmt.Sprintf("%s...(%d bytes)...%s", Quote(s[:shortenTo]), len(s), show(s[len(s)-shortenTo:]))
}

// show is Quote, with a space at the end shown as \x20 (so that no golden
// line ends in white space, which editors remove).
func show(s string) string {
	q := Quote(s)
	if strings.HasSuffix(q, " ") {
		q = q[:len(q)-1] + `\x20`
	}
	return q
}

// Timing of a script run.
const (
	ReplyTimeout = 10 * time.Second // a reply that takes longer fails the run
	CloseWait    = 2 * time.Second  // @expect-close waits this long for the close
)

// ErrTimeout is returned (wrapped) when the server does not answer.
var ErrTimeout = errors.New("no reply in time")

// RunScript plays s against the SMTP server at addr and returns the
// transcript, one line each. normalize is applied to every server line
// (e.g. to replace queue IDs); sink is the script's RCPT sink, nil when
// it uses none. On error (a dial failure or a server that does not answer
// in ReplyTimeout) it returns the transcript so far.
func RunScript(addr string, s *Script, normalize func(string) string, sink *RcptSink) ([]string, error) {
	if s.UsesSink && sink == nil {
		return nil, fmt.Errorf("%s uses a sink, and none was started", s.Name)
	}
	r := &scriptRun{addr: addr, normalize: normalize, sink: sink}
	defer r.close()
	for _, st := range s.Steps {
		if err := r.step(st); err != nil {
			r.out = append(r.out, fmt.Sprintf("-- stopped at script line %d: %v", st.Line, err))
			return r.out, fmt.Errorf("%s line %d: %w", s.Name, st.Line, err)
		}
	}
	return r.out, nil
}

type scriptRun struct {
	addr      string
	normalize func(string) string
	conn      *net.TCPConn
	rd        *bufio.Reader
	closed    bool // the server closed (EOF or reset seen)
	out       []string
	differs   *Difference // marks the next reply
	last      int         // the code of the last reply read
	sink      *RcptSink   // the script's @sink-rcpt server, or nil
}

func (r *scriptRun) close() {
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
}

func (r *scriptRun) step(st Step) error {
	r.differs = st.Differs
	switch st.Kind {
	case StepConnect:
		r.close()
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(st.Src)}}
		c, err := d.Dial("tcp", r.addr)
		if err != nil {
			return err
		}
		r.conn, r.rd, r.closed, r.last = c.(*net.TCPConn), bufio.NewReader(c), false, 0
		r.out = append(r.out, "-- connect "+st.Src)
		return r.reply()
	case StepCommand:
		r.out = append(r.out, "C: "+shorten(st.Data[0]))
		r.send(st.Data[0] + "\r\n")
		return r.reply()
	case StepPipeline:
		r.out = append(r.out, fmt.Sprintf("-- pipeline: %d lines in one write", len(st.Data)))
		var buf strings.Builder
		for _, l := range st.Data {
			r.out = append(r.out, "C: "+shorten(l))
			buf.WriteString(l + "\r\n")
		}
		r.send(buf.String())
		for i := range st.Data {
			if i > 0 && r.closed {
				break // recorded once
			}
			if err := r.reply(); err != nil {
				return err
			}
		}
		return nil
	case StepRaw:
		r.out = append(r.out, "C: [raw] "+shorten(st.Data[0]))
		r.send(st.Data[0])
		return nil
	case StepRead:
		return r.reply()
	case StepShutWrite:
		r.out = append(r.out, "-- half-close")
		r.conn.CloseWrite() // an error means the connection is gone: reads say so
		return nil
	case StepExpectClose:
		return r.expectClose()
	case StepSleep:
		time.Sleep(st.Sleep)
		return nil
	case StepSinkLog:
		for _, l := range r.sink.Since() {
			r.out = append(r.out, "-- sink: "+l)
		}
		return nil
	case StepContent:
		if r.last != 354 {
			return nil // DATA was refused: nothing to send
		}
		r.out = append(r.out, "C: [content] "+shorten(st.Data[0]))
		r.send(st.Data[0])
		return r.reply()
	}
	return fmt.Errorf("unknown step kind %d", st.Kind)
}

// send writes; an error (the server hung up) shows in the next read.
func (r *scriptRun) send(data string) {
	r.conn.SetWriteDeadline(time.Now().Add(ReplyTimeout))
	r.conn.Write([]byte(data))
}

// mark writes the @differs marker before the reply it concerns.
func (r *scriptRun) mark() {
	if r.differs != nil {
		r.out = append(r.out, DiffersMarker+r.differs.Reason)
		r.differs = nil
	}
}

// reply reads one reply (all lines of a multi-line one) into the
// transcript, or records that the server closed the connection.
func (r *scriptRun) reply() error {
	r.mark()
	if r.closed {
		r.out = append(r.out, closedLine)
		return nil
	}
	r.conn.SetReadDeadline(time.Now().Add(ReplyTimeout))
	for first := true; ; first = false {
		line, err := r.rd.ReadString('\n')
		if err != nil {
			if isTimeout(err) {
				if line != "" {
					r.out = append(r.out, "S: "+r.show(line)+" (incomplete)")
				}
				return fmt.Errorf("%w (%v)", ErrTimeout, ReplyTimeout)
			}
			if line != "" {
				r.out = append(r.out, "S: "+r.show(line)+" (incomplete)")
			}
			r.closed = true
			if first || line != "" {
				r.out = append(r.out, closedLine)
			} else {
				r.out = append(r.out, closedLine+" (inside a multi-line reply)")
			}
			return nil
		}
		r.out = append(r.out, "S: "+r.show(line))
		if len(line) < 4 || line[3] != '-' {
			r.last, _ = strconv.Atoi(line[:min(3, len(line))])
			return nil
		}
	}
}

// show formats a reply line: CRLF removed (a bare LF stays visible as \n).
func (r *scriptRun) show(line string) string {
	line = strings.TrimSuffix(line, "\r\n")
	if r.normalize != nil {
		line = r.normalize(line)
	}
	return shortenReply(line)
}

// expectClose waits CloseWait for the server to close; a reply that comes
// instead is recorded.
func (r *scriptRun) expectClose() error {
	r.mark()
	if r.closed {
		r.out = append(r.out, closedLine)
		return nil
	}
	deadline := time.Now().Add(CloseWait)
	for {
		r.conn.SetReadDeadline(deadline)
		_, err := r.rd.Peek(1)
		switch {
		case err == nil:
			if err := r.reply(); err != nil {
				return err
			}
			if r.closed {
				return nil
			}
		case isTimeout(err):
			r.out = append(r.out, openLine)
			return nil
		default: // EOF or reset
			r.closed = true
			r.out = append(r.out, closedLine)
			return nil
		}
	}
}

// LastCommand is the last client line before transcript line i (for
// listing differences).
func LastCommand(transcript []string, i int) string {
	for ; i >= 0; i-- {
		if strings.HasPrefix(transcript[i], "C: ") {
			return strings.TrimPrefix(transcript[i], "C: ")
		}
		if strings.HasPrefix(transcript[i], "-- connect ") {
			return "(greeting)"
		}
	}
	return ""
}

// ReplyEnd returns the index after the reply that starts at transcript
// line i: S: lines up to the last line of a reply, or one "--" line.
func ReplyEnd(transcript []string, i int) int {
	for ; i < len(transcript); i++ {
		l := transcript[i]
		if !strings.HasPrefix(l, "S: ") {
			if strings.HasPrefix(l, "-- closed") || l == openLine {
				return i + 1
			}
			return i
		}
		text := strings.TrimPrefix(l, "S: ")
		if len(text) < 4 || text[3] != '-' {
			return i + 1
		}
	}
	return i
}
