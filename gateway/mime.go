package gateway

import (
	"bytes"
	"strings"
)

// The MIME structure of a message as Postfix's cleanup sees it (its
// mime_state engine): a streaming state machine fed one line at a time,
// that tells its handler each logical header, with the header block it
// belongs to, and each body line, with its offset in its body segment. It
// keeps only the header being collected and the stack of multipart
// boundaries, never the message.
//
// Like Postfix it is kept simple for robustness: a header block ends at an
// empty line or at a line that is not a header; after the block of a
// multipart entity comes its prolog, after the block of a message/rfc822
// (or message/global) entity come the headers of the attached message; a
// line "--boundary" of any open multipart starts a body part's header
// block, "--boundary--" closes that multipart (and any inside it).

// mimeBlock is where the parser is: in a header block (Postfix's header
// class: of the message, of a multipart body part, of an attached
// message) or in a body.
type mimeBlock uint8

const (
	mimePrimary mimeBlock = iota
	mimeMultipart
	mimeNested
	mimeBody
)

// mimeType is what a Content-Type says about the body that follows.
type mimeType uint8

const (
	mimeText          mimeType = iota // text/*, and the default
	mimeOther                         // a multipart prolog, or no type token
	mimeMultipartType                 // multipart/*: a boundary was pushed
	mimeMessage                       // message/partial, external-body, others: body
	mimeAttached                      // message/rfc822, message/global: headers follow
)

// mimeHandler receives what the parser finds. raw is the input as it came
// (a header's physical lines with their line ends), off its offset in the
// content; text is a body line without its line end, bodyOff Postfix's
// body_offset (what body_checks_size_limit is compared with).
type mimeHandler interface {
	mimeHeader(block mimeBlock, key string, raw []byte, off int64) error
	mimeBody(text, raw []byte, off, bodyOff int64) error
	// mimeNesting: the multipart of this Content-Type header would go
	// past mime_nesting_limit; its boundary is not recognized.
	mimeNesting(header string)
}

// mimeLimits are the parser's settings.
type mimeLimits struct {
	disabled      bool // disable_mime_input_processing: after the primary header all is body
	nestingLimit  int  // mime_nesting_limit
	boundaryLimit int  // mime_boundary_length_limit
	headerLimit   int  // header_size_limit
	lineLimit     int  // line_length_limit: the size of the records of a long line
}

type mimeBoundary struct {
	boundary []byte
	digest   bool // multipart/digest: parts default to message/rfc822
}

type mimeParser struct {
	mimeLimits
	h       mimeHandler
	block   mimeBlock
	ctype   mimeType
	stack   []mimeBoundary // innermost last
	bodyOff int64
	// continued: the record being parsed continues the line of the
	// previous one (Postfix's REC_TYPE_CONT before it).
	continued bool

	pending bool   // a header is being collected
	hdr     []byte // its raw lines
	hdrOff  int64
	key     []byte // what the tables are asked: name, ':', value, LF between lines

	// nestingSeen: a Content-Type went past mime_nesting_limit (told once,
	// as Postfix reports each MIME error once).
	nestingSeen bool
}

func newMIMEParser(l mimeLimits, h mimeHandler) *mimeParser {
	return &mimeParser{mimeLimits: l, h: h}
}

// line takes one line of the content, line end included (the last line
// may have none). A line of line_length_limit bytes or more is, as
// Postfix's smtpd stores it, pieces of that many bytes and the rest (empty
// when the line fills its last piece); each piece is a record of its own.
func (p *mimeParser) line(raw []byte, off int64) error {
	text := trimEOL(raw)
	p.continued = false
	for p.lineLimit > 0 && len(text) >= p.lineLimit {
		if err := p.record(raw[:p.lineLimit], text[:p.lineLimit], off); err != nil {
			return err
		}
		p.continued = true
		raw, text, off = raw[p.lineLimit:], text[p.lineLimit:], off+int64(p.lineLimit)
	}
	return p.record(raw, text, off)
}

// record is Postfix's mime_state_update for one record: text is raw
// without its line end; p.continued says it continues the line of the
// previous record.
func (p *mimeParser) record(raw, text []byte, off int64) error {
	if p.block == mimeBody {
		return p.bodyLine(raw, text, off)
	}
	if p.pending {
		if p.continued || len(text) > 0 && (text[0] == ' ' || text[0] == '\t') {
			p.hdr = append(p.hdr, raw...)
			// A record joins the key while the key is under
			// header_size_limit; the rest is dropped.
			if len(p.key) < p.headerLimit {
				if !p.continued {
					p.key = append(p.key, '\n')
				}
				p.key = append(p.key, text...)
			}
			return nil
		}
		if err := p.flush(); err != nil {
			return err
		}
	}
	if n := headerNameLen(text); n > 0 {
		// "Name :" is taken as "Name:", as Postfix does.
		rest := bytes.TrimLeft(text[n:], " \t")
		p.key = append(append(p.key[:0], text[:n]...), rest...)
		p.hdr = append(p.hdr[:0], raw...)
		p.hdrOff, p.pending = off, true
		return nil
	}
	// The record ends the header block.
	if len(text) == 0 {
		switch p.ctype {
		case mimeAttached:
			p.block, p.ctype = mimeNested, mimeText
		case mimeMultipartType:
			p.block, p.ctype = mimeBody, mimeOther
		default:
			p.block = mimeBody
		}
	} else {
		// Not a header, not empty: the body starts without the empty
		// line (which Postfix's output gets in the primary header only).
		p.block = mimeBody
	}
	p.bodyOff = 0
	return p.bodyLine(raw, text, off)
}

// end flushes a header still being collected at the end of the content.
func (p *mimeParser) end() error {
	if p.pending {
		return p.flush()
	}
	return nil
}

func (p *mimeParser) flush() error {
	p.pending = false
	if !p.disabled && len(p.key) > 13 && bytes.EqualFold(p.key[:13], []byte("Content-Type:")) {
		p.contentType(p.key)
	}
	return p.h.mimeHeader(p.block, string(p.key), p.hdr, p.hdrOff)
}

func (p *mimeParser) bodyLine(raw, text []byte, off int64) error {
	if len(p.stack) > 0 && !p.continued && len(text) > 2 && text[0] == '-' && text[1] == '-' {
		for i := len(p.stack) - 1; i >= 0; i-- {
			b := p.stack[i].boundary
			if !bytes.HasPrefix(text[2:], b) {
				continue
			}
			p.stack = p.stack[:i+1]
			if bytes.HasPrefix(text[2+len(b):], []byte("--")) {
				p.stack = p.stack[:i]
				p.block, p.ctype, p.bodyOff = mimeBody, mimeOther, 0
			} else {
				p.block, p.ctype = mimeMultipart, mimeText
				if p.stack[i].digest {
					p.ctype = mimeAttached
				}
			}
			break
		}
	}
	bodyOff := p.bodyOff
	p.bodyOff += int64(len(text)) + 1
	return p.h.mimeBody(text, raw, off, bodyOff)
}

// contentType is Postfix's mime_state_content_type: the type decides what
// follows the header block; a multipart type pushes its boundary. A type
// other than text, message and multipart leaves the default as it is.
func (p *mimeParser) contentType(key []byte) {
	toks, rest, n := mimeTokens(string(key[13:]))
	switch {
	case n <= 0:
		p.ctype = mimeOther
	case isMIMEToken(toks[0], "text"):
		p.ctype = mimeText
	case isMIMEToken(toks[0], "message"):
		p.ctype = mimeMessage
		if n >= 3 && toks[1].special == '/' && (isMIMEToken(toks[2], "rfc822") || isMIMEToken(toks[2], "global")) {
			p.ctype = mimeAttached
		}
	case isMIMEToken(toks[0], "multipart"):
		p.ctype = mimeMultipartType
		digest := n >= 3 && toks[1].special == '/' && isMIMEToken(toks[2], "digest")
		for {
			toks, rest, n = mimeTokens(rest)
			if n < 0 {
				break
			}
			if n < 3 || !isMIMEToken(toks[0], "boundary") || toks[1].special != '=' {
				continue
			}
			// Postfix's nesting level starts at -1 and counts the open
			// boundaries; past the limit a boundary is not pushed.
			if len(p.stack)-1 > p.nestingLimit {
				if !p.nestingSeen {
					p.nestingSeen = true
					p.h.mimeNesting(string(key))
				}
				continue
			}
			b := toks[2].value
			if len(b) > p.boundaryLimit {
				b = b[:p.boundaryLimit]
			}
			p.stack = append(p.stack, mimeBoundary{boundary: []byte(b), digest: digest})
		}
	}
}

// mimeToken is one token of a structured header: a word or quoted
// string (special 0, quoted tells which), or one special character.
type mimeToken struct {
	value   string
	special byte
	quoted  bool
}

func isMIMEToken(t mimeToken, word string) bool {
	return t.special == 0 && !t.quoted && strings.EqualFold(t.value, word)
}

// rfc2045Specials are the characters that are tokens of their own.
const rfc2045Specials = "()<>@,;:\\\"/[]?="

// mimeTokens is Postfix's header_token with RFC 2045 specials and ';' as
// the terminator: the first three tokens up to ';' (comments skipped),
// what follows the ';', and how many tokens there were (up to 3), -1 when
// s held nothing but space and comments.
func mimeTokens(s string) (toks [3]mimeToken, rest string, n int) {
	i := 0
	for i < len(s) {
		c := s[i]
		i++
		switch {
		case c == 0:
			i = len(s)
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case c == ';':
			return toks, s[i:], n
		case c == '(':
			for level := 1; i < len(s) && level > 0; i++ {
				switch s[i] {
				case '(':
					level++
				case ')':
					level--
				case '\\':
					i++
				}
			}
		case c == '"':
			var v strings.Builder
			for i < len(s) && s[i] != '"' {
				switch s[i] {
				case '\n': // unfold
					v2 := strings.TrimRight(v.String(), " \t\r\n")
					v.Reset()
					v.WriteString(v2)
				case '\\':
					if i+1 < len(s) {
						i++
					}
					fallthrough
				default:
					v.WriteByte(s[i])
				}
				i++
			}
			i++ // the closing quote
			if n < len(toks) {
				toks[n] = mimeToken{value: v.String(), quoted: true}
				n++
			}
		case strings.IndexByte(rfc2045Specials, c) >= 0 || c < ' ' || c == 0x7f:
			if n < len(toks) {
				toks[n] = mimeToken{value: string(c), special: c}
				n++
			}
		default:
			start := i - 1
			for i < len(s) && !isTokenEnd(s[i]) {
				i++
			}
			if n < len(toks) {
				toks[n] = mimeToken{value: s[start:i]}
				n++
			}
		}
	}
	if n == 0 {
		return toks, "", -1
	}
	return toks, "", n
}

func isTokenEnd(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c < ' ' || c == 0x7f ||
		strings.IndexByte(rfc2045Specials, c) >= 0
}

// headerNameLen is Postfix's is_header: the length of the field name
// when line starts "name:" or "name :" (printable ASCII, no controls),
// else 0.
func headerNameLen(line []byte) int {
	n, space := 0, false
	for _, c := range line {
		switch {
		case c == ':':
			return n
		case c == ' ' || c == '\t':
			if n == 0 {
				return 0
			}
			space = true
		case c < ' ' || c >= 0x7f || space:
			return 0
		default:
			n++
		}
	}
	return 0
}
