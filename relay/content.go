package relay

import (
	"bufio"
	"bytes"
)

// dataWriter writes message content in SMTP DATA form: every CRLF, bare LF
// and bare CR ends a line with CRLF; a line that starts with '.' gets one
// more; a line longer than limit is broken with CRLF SPACE (Postfix's
// smtp_line_length_limit); Close ends the last line if it is open and
// writes the one "." that ends the data. Whatever the input, the output
// holds no bare CR or LF and no "CRLF . CRLF" before the end.
type dataWriter struct {
	w     *bufio.Writer
	limit int  // longest line without its CRLF, 0: no limit
	col   int  // bytes on the current output line, not counting an added '.'
	cr    bool // the last byte written was a CR whose LF may follow
}

// newDataWriter returns a writer for content; limit is 0 (no limit) or at
// least 2.
func newDataWriter(w *bufio.Writer, limit int) *dataWriter {
	return &dataWriter{w: w, limit: limit}
}

func (d *dataWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if d.cr {
			d.cr = false
			d.endLine()
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		i := bytes.IndexAny(p, "\r\n")
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		d.text(seg)
		if i < 0 {
			break
		}
		if p[i] == '\n' {
			d.endLine()
		} else {
			d.cr = true
		}
		p = p[i+1:]
	}
	// bufio.Writer keeps the first write error; an empty Write returns it.
	if _, err := d.w.Write(nil); err != nil {
		return 0, err
	}
	return n, nil
}

// text writes line content that holds no CR or LF.
func (d *dataWriter) text(seg []byte) {
	for len(seg) > 0 {
		if d.limit > 0 && d.col >= d.limit {
			d.w.WriteString("\r\n ")
			d.col = 1
		}
		if d.col == 0 && seg[0] == '.' {
			d.w.WriteByte('.')
		}
		n := len(seg)
		if d.limit > 0 {
			n = min(n, max(d.limit-d.col, 1))
		}
		d.w.Write(seg[:n])
		d.col += n
		seg = seg[n:]
	}
}

func (d *dataWriter) endLine() {
	d.w.WriteString("\r\n")
	d.col = 0
}

// Close ends the open line, if any, and the data.
func (d *dataWriter) Close() error {
	if d.cr {
		d.cr = false
		d.endLine()
	}
	if d.col > 0 {
		d.endLine()
	}
	_, err := d.w.WriteString(".\r\n")
	return err
}
