package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/textproto"
	"runtime/debug"
	"sync"
	"time"
)

// Handler is an alternative to Backend for servers that decide every reply
// themselves, for instance to answer exactly as another MTA does. go-smtp
// keeps the transport: it reads command lines (bounded by
// Server.MaxLineLength), message content (DATA with its dot-unstuffing,
// BDAT chunks by their byte count), and writes replies, which wait in a
// buffer while the client has pipelined more input and go out as soon as
// the server needs to read again.
//
// When Server.Handler is set, Server.Backend is not used.
type Handler interface {
	// NewHandlerSession is called for each accepted connection.
	NewHandlerSession(c *Conn) HandlerSession
}

// HandlerSession is the dialogue of one connection, driven by go-smtp.
type HandlerSession interface {
	// Greet runs before the first command is read. It sends the greeting
	// with Conn.Reply, or refuses the client (Reply, then Conn.Close).
	Greet()
	// Command handles one command line: it answers with Conn.Reply, may
	// read message content with Conn.DataReader or Conn.ChunkReader, and
	// may end the session with Conn.Close.
	Command(line CommandLine)
	// ReadError is called when no command line could be read: err is
	// io.EOF when the client closed the connection, a net.Error for a
	// timeout, or another read error. A reply sent here is flushed before
	// the connection closes.
	ReadError(err error)
	// Close is called once, after the connection is closed.
	Close()
}

// CommandLine is one command line as the client sent it.
type CommandLine struct {
	// Text is the line without its line ending (CRLF, or a bare LF).
	Text string
	// BareLF reports that the line ended in LF without CR.
	BareLF bool
	// Truncated reports a line longer than Server.MaxLineLength: Text holds
	// its first MaxLineLength bytes and the rest of the line was skipped,
	// so the session stays in step with the client.
	Truncated bool
}

// Reply sends a reply: code, enhanced code (NoEnhancedCode for none,
// EnhancedCodeNotSet for X.0.0), and one text per line. With a Handler,
// replies are buffered until the server next reads from the client, or the
// connection is closed.
func (c *Conn) Reply(code int, enhCode EnhancedCode, text ...string) {
	c.writeResponse(code, enhCode, text...)
}

// DataReader returns a reader of the message content that follows DATA,
// up to the line ".": dot-unstuffed, lines ending as they arrived. Read
// returns io.EOF at that line and io.ErrUnexpectedEOF when the connection
// ends before it. A Handler reads it to the end, or closes the connection,
// before the next command.
func (c *Conn) DataReader() io.Reader {
	return &dataReader{r: c.text.R}
}

// ChunkReader returns a reader of the next n bytes from the client: a BDAT
// chunk. Read returns io.ErrUnexpectedEOF when the connection ends before n
// bytes arrived. A Handler reads it to the end, or closes the connection,
// before the next command.
func (c *Conn) ChunkReader(n int64) io.Reader {
	return &chunkReader{r: c.text.R, n: n}
}

// Pending returns the input already read from the client but not consumed
// yet: commands the client sent ahead of the replies. The slice is valid
// until the next read.
func (c *Conn) Pending() []byte {
	b, _ := c.text.R.Peek(c.text.R.Buffered())
	return b
}

type chunkReader struct {
	r *bufio.Reader
	n int64
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n, err := r.r.Read(p)
	r.n -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// flushReader sends the buffered replies before each read from the
// network: a pipelining client gets the replies to a whole group of
// commands in one write, and a client that waits gets its reply before the
// server waits too.
type flushReader struct {
	c *Conn
	r io.Reader
}

func (f flushReader) Read(p []byte) (int, error) {
	if err := f.c.text.W.Flush(); err != nil {
		return 0, err
	}
	return f.r.Read(p)
}

// The read and write buffers of Handler connections are reused: a server
// that takes many short connections would otherwise allocate (and collect)
// 8 KiB for each.
var (
	readerPool = sync.Pool{New: func() interface{} { return bufio.NewReader(nil) }}
	writerPool = sync.Pool{New: func() interface{} { return bufio.NewWriter(nil) }}
)

// newPooledText is textproto.NewConn with pooled buffers; releaseText gives
// them back once the connection is done. (Servers never call
// textproto.Conn's Close, which needs the fields NewConn sets.)
func newPooledText(rw io.ReadWriter) *textproto.Conn {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(rw)
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(rw)
	return &textproto.Conn{Reader: textproto.Reader{R: br}, Writer: textproto.Writer{W: bw}}
}

func (c *Conn) releaseText() {
	c.text.R.Reset(nil)
	readerPool.Put(c.text.R)
	c.text.W.Reset(nil)
	writerPool.Put(c.text.W)
}

// serveHandler runs a Handler's dialogue until the client or the handler
// ends it.
func (c *Conn) serveHandler(h Handler) {
	hs := h.NewHandlerSession(c)
	defer func() {
		c.Close()
		hs.Close()
		c.releaseText()
	}()
	if !c.runHandler(hs.Greet) {
		return
	}
	for !c.isClosed() {
		line, err := c.readCommandLine()
		if err != nil {
			if !c.isClosed() {
				c.runHandler(func() { hs.ReadError(err) })
			}
			return
		}
		if !c.runHandler(func() { hs.Command(line) }) {
			return
		}
	}
}

// runHandler calls fn; a panic is logged and answered with 421, and ends
// the connection.
func (c *Conn) runHandler(fn func()) (ok bool) {
	defer func() {
		if err := recover(); err != nil {
			c.server.ErrorLog.Printf("panic serving %v: %v\n%s", c.conn.RemoteAddr(), err, debug.Stack())
			c.writeResponse(421, EnhancedCode{4, 0, 0}, "Internal server error")
			c.Close()
			ok = false
		}
	}()
	fn()
	return !c.isClosed()
}

// readCommandLine reads one command line. A line longer than
// Server.MaxLineLength (its line ending not counted, less one byte, as
// Postfix's smtpd counts) comes back cut to MaxLineLength bytes, with the
// rest of it skipped; at most MaxLineLength+2 bytes are kept in memory.
// A partial line at the end of input is a read error.
func (c *Conn) readCommandLine() (CommandLine, error) {
	if c.server.ReadTimeout != 0 {
		if err := c.conn.SetReadDeadline(time.Now().Add(c.server.ReadTimeout)); err != nil {
			return CommandLine{}, err
		}
	}
	limit := c.server.MaxLineLength
	var buf []byte
	cut := false // bytes were dropped
	for {
		frag, err := c.text.R.ReadSlice('\n')
		if keep := limit + 2 - len(buf); limit > 0 && len(frag) > keep {
			if keep > 0 {
				buf = append(buf, frag[:keep]...)
			}
			cut = true
		} else {
			buf = append(buf, frag...)
		}
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return CommandLine{}, err
		}
	}
	if cut {
		return CommandLine{Text: string(buf[:limit]), Truncated: true}, nil
	}
	line := buf[:len(buf)-1] // without the LF
	bareLF := len(line) == 0 || line[len(line)-1] != '\r'
	if !bareLF {
		line = line[:len(line)-1]
	}
	if limit > 0 && len(line) >= limit {
		return CommandLine{Text: string(buf[:limit]), Truncated: true}, nil
	}
	return CommandLine{Text: string(line), BareLF: bareLF}, nil
}

// StartTLS turns the connection into a TLS server connection after the
// handler has answered STARTTLS with Reply: the reply is sent, input the
// client sent ahead of it is discarded (it arrived in clear text and must
// not pass for commands inside TLS), and the handshake runs within ctx.
// On success the next command is read through TLS and TLSConnectionState
// describes the session; on failure the connection is in an unknown state
// and the handler should close it.
func (c *Conn) StartTLS(ctx context.Context, config *tls.Config) error {
	if _, ok := c.conn.(*tls.Conn); ok {
		return errors.New("smtp: TLS already active")
	}
	if err := c.text.W.Flush(); err != nil {
		return err
	}
	c.text.R.Discard(c.text.R.Buffered())
	tc := tls.Server(c.conn, config)
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	c.releaseText()
	c.conn = tc
	c.init()
	return nil
}
