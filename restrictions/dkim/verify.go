// Package dkim verifies DKIM signatures (RFC 6376) through the process's
// resolver and signs outbound messages with keys from files, on
// go-msgauth's dkim package.
package dkim

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"postgate/restrictions/internal/authdns"
)

// Resolver is what DKIM asks of the process's resolver (gateway/resolver
// answers it): TXT records, with *net.DNSError errors (IsNotFound for
// NXDOMAIN and NODATA, IsTemporary otherwise).
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Timeout bounds the verification of one message, all its key lookups
// together; each query is bounded by the resolver's own timeout.
const Timeout = 20 * time.Second

// MaxSignatures is how many signatures of one message are verified; the
// rest are ignored, so a message cannot make us do unbounded lookups.
const MaxSignatures = 5

// The results of RFC 8601 section 2.7.1.
const (
	Pass      = "pass"
	Fail      = "fail"
	TempError = "temperror"
	PermError = "permerror"
)

// Result is the verification of one DKIM-Signature.
type Result struct {
	Value      string // Pass, Fail, TempError or PermError
	Domain     string // d=
	Identifier string // i=
	Selector   string // s=
	Algorithm  string // a=
	B          string // the first 8 characters of b=, telling signatures apart (RFC 6008)
	// Reason says why the result is not pass.
	Reason string
}

// Verify checks every DKIM-Signature of msg (up to MaxSignatures, in
// header order), looking keys up through r. An error is a message whose
// header cannot be read.
func Verify(ctx context.Context, r Resolver, msg io.Reader) ([]Result, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	br := bufio.NewReaderSize(msg, 16<<10)
	head, err := readHead(br)
	if err != nil {
		return nil, err
	}
	sigs := signatureTags(head)
	if len(sigs) == 0 {
		return nil, nil
	}
	verifs, err := dkim.VerifyWithOptions(io.MultiReader(bytes.NewReader(head), br), &dkim.VerifyOptions{
		LookupTXT:        authdns.TXT(ctx, r),
		MaxVerifications: MaxSignatures,
	})
	if err != nil && err != dkim.ErrTooManySignatures {
		return nil, err
	}
	out := make([]Result, 0, len(verifs))
	for i, v := range verifs {
		res := Result{Value: Pass, Domain: v.Domain, Identifier: v.Identifier}
		if i < len(sigs) {
			tags := sigs[i]
			res.Selector, res.Algorithm, res.B = tags["s"], tags["a"], tags["b"]
			if len(res.B) > 8 {
				res.B = res.B[:8]
			}
			if res.Domain == "" {
				res.Domain = tags["d"]
			}
		}
		switch err := v.Err; {
		case err == nil:
		case dkim.IsTempFail(err):
			res.Value, res.Reason = TempError, reason(err)
		case dkim.IsPermFail(err):
			res.Value, res.Reason = PermError, reason(err)
		default:
			res.Value, res.Reason = Fail, reason(err)
		}
		out = append(out, res)
	}
	return out, nil
}

// reason is the library's error text without its package prefix.
func reason(err error) string { return strings.TrimPrefix(err.Error(), "dkim: ") }

// readHead reads the message's header block, up to and including the empty
// line that ends it (or the end of the message).
func readHead(br *bufio.Reader) ([]byte, error) {
	var head []byte
	start := 0 // where the line being read begins in head
	for {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			return head, nil
		case err != nil:
			return nil, err
		}
		if l := head[start:]; len(l) <= 2 && strings.TrimRight(string(l), "\r\n") == "" {
			return head, nil
		}
		start = len(head)
	}
}

// signatureTags gives the tags of each DKIM-Signature field of head, in
// order, whitespace removed from the values.
func signatureTags(head []byte) []map[string]string {
	var out []map[string]string
	for _, f := range fields(head) {
		name, value, _ := strings.Cut(f, ":")
		if !strings.EqualFold(strings.TrimSpace(name), "DKIM-Signature") {
			continue
		}
		tags := map[string]string{}
		for _, t := range strings.Split(value, ";") {
			k, v, ok := strings.Cut(t, "=")
			if !ok {
				continue
			}
			tags[strings.TrimSpace(k)] = strings.Join(strings.Fields(v), "")
		}
		out = append(out, tags)
	}
	return out
}

// fields splits a header block into its fields, each unfolded (line ends
// removed, continuation lines joined), up to the empty line.
func fields(head []byte) []string {
	var out []string
	for _, line := range strings.SplitAfter(string(head), "\n") {
		l := strings.TrimRight(line, "\r\n")
		switch {
		case l == "":
			return out
		case (l[0] == ' ' || l[0] == '\t') && len(out) > 0:
			out[len(out)-1] += l
		default:
			out = append(out, l)
		}
	}
	return out
}
