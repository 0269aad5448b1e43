package milter

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	gomilter "github.com/emersion/go-milter"
)

// Field is one header field of the message: its name and its value as
// written after the colon (leading space and CRLF foldings included).
type Field struct {
	Name, Value string
	// Added: a milter added or changed the field (milter_header_checks
	// looks at these).
	Added bool
}

// Message is the message at the end of DATA as the milters see it, and
// the changes they ask for. The header is the client's, without the
// headers the MTA put above it (our Received:), as Postfix hides its own
// Received: from milters.
type Message struct {
	Sender     string
	Recipients []string
	Header     []Field
	// Blank: the header ended with an empty line (there is a body part).
	Blank bool

	body     io.ReaderAt // the body as received: bodySize bytes
	bodySize int64
	// newBody replaces the body when bodyReplaced (SMFIR_REPLBODY).
	newBody      []byte
	bodyReplaced bool

	// Changed: a milter changed the header or the body.
	Changed bool
	// Quarantine is the reason a milter gave for holding the message.
	Quarantine string
	// Warnings are what postgate did not apply (logged by the caller).
	Warnings []string
}

// maxHeader bounds the header read into memory, as Postfix's
// header_size_limit bounds one header: past it the rest is body.
const maxHeader = 1 << 20

// ParseMessage reads the header of content (size bytes, CRLF line ends)
// for the milters; the body stays where it is.
func ParseMessage(content io.ReaderAt, size int64, sender string, rcpts []string) (*Message, error) {
	m := &Message{Sender: sender, Recipients: rcpts}
	r := bufio.NewReader(io.NewSectionReader(content, 0, size))
	var off int64
	for off < maxHeader {
		line, err := r.ReadString('\n')
		if err != nil && err != io.EOF {
			return nil, err
		}
		if line == "" {
			break
		}
		if line == "\r\n" || line == "\n" {
			m.Blank = true
			off += int64(len(line))
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(m.Header) > 0 {
			m.Header[len(m.Header)-1].Value += line[:len(line)-len(lineEnd(line))] + "\r\n"
			off += int64(len(line))
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") {
			break // not a header: the body begins here
		}
		m.Header = append(m.Header, Field{Name: name, Value: value[:len(value)-len(lineEnd(value))] + "\r\n"})
		off += int64(len(line))
		if err != nil {
			break
		}
	}
	// Values are kept with their CRLF; the last one is cut when written.
	for i := range m.Header {
		m.Header[i].Value = strings.TrimSuffix(m.Header[i].Value, "\r\n")
	}
	m.body, m.bodySize = io.NewSectionReader(content, off, size-off), size-off
	return m, nil
}

func lineEnd(s string) string {
	switch {
	case strings.HasSuffix(s, "\r\n"):
		return "\r\n"
	case strings.HasSuffix(s, "\n"):
		return "\n"
	}
	return ""
}

// Body returns the message body as it now is.
func (m *Message) Body() io.Reader {
	if m.bodyReplaced {
		return bytes.NewReader(m.newBody)
	}
	return io.NewSectionReader(m.body, 0, m.bodySize)
}

// Reader returns the message as it now is: the header, the empty line,
// the body.
func (m *Message) Reader() io.Reader {
	var b bytes.Buffer
	for _, f := range m.Header {
		b.WriteString(f.Name)
		b.WriteByte(':')
		b.WriteString(f.Value)
		b.WriteString("\r\n")
	}
	if m.Blank || m.bodyReplaced {
		b.WriteString("\r\n")
	}
	return io.MultiReader(&b, m.Body())
}

// Message is the end-of-message stage: each milter in turn gets the
// header, the body and the end of the message, and its modifications are
// applied to m before the next one sees it. The first milter that does
// more than accept or continue decides.
func (s *Session) Message(m *Message) Result {
	for _, c := range s.conns {
		var reply string
		switch c.state {
		case stateEnvelope:
			reply = s.message(c, m)
		default:
			reply = c.defReply
		}
		if c.state == stateAcceptMsg {
			c.state = stateEnvelope
		}
		if r := result(c, reply); r.Action != Continue {
			return r
		}
	}
	return Result{}
}

// message sends the content to one milter and applies its modifications.
func (s *Session) message(c *conn, m *Message) string {
	c.timeouts(c.m.opts.ContentTimeout)
	defer func() {
		if c.s != nil {
			c.timeouts(c.m.opts.CommandTimeout)
		}
	}()
	step := func(stage Stage, code gomilter.Code, send func() (*gomilter.Action, error)) (string, bool) {
		if err := s.sendMacrosCode(c, stage, code); err != nil {
			s.warn("milter %s: can't send SMFIC_MACRO: %s", c.m.Name, errText(err))
			c.fail(false)
			return c.defReply, true
		}
		act, err := send()
		if err != nil {
			s.warn("milter %s: %s", c.m.Name, describe(eventNames[code], err))
			c.fail(isProtocolError(err))
			return c.defReply, true
		}
		if act.Code == gomilter.ActContinue {
			return "", false
		}
		return s.reply(c, StageEOH, act), true
	}
	// As Postfix, the end-of-header macros go with each header, the
	// end-of-data ones with each body chunk.
	for _, f := range m.Header {
		if reply, done := step(StageEOH, gomilter.CodeHeader, func() (*gomilter.Action, error) {
			return c.s.HeaderField(f.Name, milterValue(f.Value))
		}); done {
			return reply
		}
	}
	if reply, done := step(StageEOH, gomilter.CodeEOH, c.s.HeaderEnd); done {
		return reply
	}
	body := bufio.NewReaderSize(m.Body(), gomilter.MaxBodyChunk)
	chunk := make([]byte, gomilter.MaxBodyChunk)
	for {
		n, err := io.ReadFull(body, chunk)
		if n > 0 {
			if reply, done := step(StageEOM, gomilter.CodeBody, func() (*gomilter.Action, error) {
				return c.s.BodyChunk(chunk[:n])
			}); done {
				return reply
			}
		}
		if err != nil {
			break
		}
	}
	if err := s.sendMacros(c, StageEOM); err != nil {
		s.warn("milter %s: can't send SMFIC_MACRO: %s", c.m.Name, errText(err))
		c.fail(false)
		return c.defReply
	}
	mods, act, err := c.s.End()
	if err != nil {
		s.warn("milter %s: %s", c.m.Name, describe("SMFIC_BODYEOB", err))
		c.fail(isProtocolError(err))
		return c.defReply
	}
	reply := s.reply(c, StageEOM, act)
	if reply != "" && reply != "D" {
		return reply // rejected: the changes do not matter
	}
	for _, mod := range mods {
		m.apply(c.m.Name, mod)
	}
	if m.Quarantine != "" && reply == "" {
		return "H"
	}
	return reply
}

// milterValue is a header value as Sendmail gives it to milters: the
// first space after the colon eaten, lines separated by LF.
func milterValue(v string) string {
	v = strings.TrimPrefix(v, " ")
	return strings.ReplaceAll(v, "\r\n", "\n")
}

// headerValue is a milter's header value as written: a space after the
// colon, lines separated by CRLF.
func headerValue(v string) string {
	v = strings.ReplaceAll(strings.ReplaceAll(v, "\r\n", "\n"), "\n", "\r\n")
	return " " + v
}

// apply makes one modification of a milter.
func (m *Message) apply(name string, mod gomilter.ModifyAction) {
	switch mod.Code {
	case gomilter.ActAddHeader:
		m.Header = append(m.Header, Field{Name: mod.HeaderName, Value: headerValue(mod.HeaderValue), Added: true})
		m.Changed = true
	case gomilter.ActInsertHeader:
		// Postfix counts its own Received: as header 0; postgate inserts
		// at index 0 and 1 alike, right below it.
		i := int(mod.HeaderIndex)
		if i > 0 {
			i--
		}
		i = min(i, len(m.Header))
		f := Field{Name: mod.HeaderName, Value: headerValue(mod.HeaderValue), Added: true}
		m.Header = append(m.Header[:i], append([]Field{f}, m.Header[i:]...)...)
		m.Changed = true
	case gomilter.ActChangeHeader:
		m.changeHeader(mod.HeaderName, int(mod.HeaderIndex), mod.HeaderValue)
	case gomilter.ActReplBody:
		if !m.bodyReplaced {
			m.newBody, m.bodyReplaced = nil, true
		}
		m.newBody = appendCRLF(m.newBody, mod.Body)
		m.Changed = true
	case gomilter.ActChangeFrom:
		m.Sender = stripAngle(mod.From)
		if len(mod.FromArgs) > 0 && !(len(mod.FromArgs) == 1 && mod.FromArgs[0] == "") {
			m.Warnings = append(m.Warnings, "milter "+name+": ignoring ESMTP arguments of the sender change: "+strings.Join(mod.FromArgs, " "))
		}
	case gomilter.ActAddRcpt:
		m.Recipients = append(m.Recipients, stripAngle(mod.Rcpt))
	case gomilter.ActDelRcpt:
		addr := stripAngle(mod.Rcpt)
		kept := m.Recipients[:0]
		for _, r := range m.Recipients {
			if !strings.EqualFold(r, addr) {
				kept = append(kept, r)
			}
		}
		m.Recipients = kept
	case gomilter.ActQuarantine:
		m.Quarantine = mod.Reason
	}
}

// changeHeader is SMFIR_CHGHEADER: the index-th header called name
// (1-based; 0 counts as 1) gets value; an empty value deletes it. A
// header that is not there is added, as Sendmail does.
func (m *Message) changeHeader(name string, index int, value string) {
	index = max(index, 1)
	for i, f := range m.Header {
		if !strings.EqualFold(f.Name, name) {
			continue
		}
		if index--; index > 0 {
			continue
		}
		if value == "" {
			m.Header = append(m.Header[:i], m.Header[i+1:]...)
		} else {
			m.Header[i].Value, m.Header[i].Added = headerValue(value), true
		}
		m.Changed = true
		return
	}
	if value != "" {
		m.Header = append(m.Header, Field{Name: name, Value: headerValue(value), Added: true})
		m.Changed = true
	}
}

func stripAngle(a string) string {
	if len(a) >= 2 && a[0] == '<' && a[len(a)-1] == '>' {
		return a[1 : len(a)-1]
	}
	return a
}

// appendCRLF appends p with every bare LF made CRLF.
func appendCRLF(dst, p []byte) []byte {
	for i, c := range p {
		if c == '\n' && (i == 0 || p[i-1] != '\r') {
			dst = append(dst, '\r')
		}
		dst = append(dst, c)
	}
	return dst
}
