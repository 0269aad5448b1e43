package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"unicode/utf8"

	"postgate/rules"
	"postgate/rules/tok822"
)

// failure is why a recipient was not delivered, as Postfix words it.
type failure struct {
	status Status // Deferred or Bounced
	dsn    string
	reason string
	remote *Reply // the server's reply the reason quotes, if any
}

func softFail(dsn, format string, args ...any) *failure {
	return &failure{status: Deferred, dsn: dsn, reason: fmt.Sprintf(format, args...)}
}

func hardFail(dsn, format string, args ...any) *failure {
	return &failure{status: Bounced, dsn: dsn, reason: fmt.Sprintf(format, args...)}
}

// byStatus is a failure whose status follows the class of dsn.
func byStatus(dsn, format string, args ...any) *failure {
	if dsn[0] == '5' {
		return hardFail(dsn, format, args...)
	}
	return softFail(dsn, format, args...)
}

// replyFailure is a failure that quotes the server's reply, with the
// reply's status; a status that is neither 4 nor 5 where an error was
// expected is a protocol error (smtp_trouble.c vsmtp_fill_dsn).
func replyFailure(r *reply, format string, args ...any) *failure {
	dsn, prefix := r.dsn, ""
	if dsn[0] != '4' && dsn[0] != '5' {
		dsn, prefix = "5.5.0", "Protocol error: "
	}
	f := byStatus(dsn, "%s%s", prefix, fmt.Sprintf(format, args...))
	f.remote = r.export()
	return f
}

// connectFailure is a failed TCP connection (smtp_connect.c).
func connectFailure(host string, addr string, port uint16, err error, ctxErr error) *failure {
	return softFail("4.4.1", "connect to %s[%s]:%d: %s", host, addr, port, connectErrorText(err, ctxErr))
}

// connectErrorText is strerror() of the connect error, as %m prints it.
func connectErrorText(err, ctxErr error) string {
	switch {
	case errors.Is(ctxErr, context.Canceled):
		return "Operation canceled"
	case ctxErr != nil:
		return "Connection timed out"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return strerror(errno)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "Connection timed out"
	}
	return capitalize(err.Error())
}

// strerror gives glibc's texts for the errors a connect commonly ends with.
func strerror(e syscall.Errno) string {
	switch e {
	case syscall.ECONNREFUSED:
		return "Connection refused"
	case syscall.ETIMEDOUT:
		return "Connection timed out"
	case syscall.EHOSTUNREACH:
		return "No route to host"
	case syscall.ENETUNREACH:
		return "Network is unreachable"
	case syscall.ECONNRESET:
		return "Connection reset by peer"
	case syscall.EADDRNOTAVAIL:
		return "Cannot assign requested address"
	case syscall.EADDRINUSE:
		return "Address already in use"
	case syscall.EACCES:
		return "Permission denied"
	case syscall.EPERM:
		return "Operation not permitted"
	case syscall.EAFNOSUPPORT:
		return "Address family not supported by protocol"
	}
	return capitalize(e.Error())
}

func capitalize(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

// printable replaces what should not reach a log line: control
// characters and invalid UTF-8 become '?' (Postfix's printable()).
func printable(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 || r < 0x20 || r >= 0x7f && r < 0xa0 {
			b.WriteByte('?')
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// dsnValid returns the length of the RFC 3463 status code that s starts
// with ("5.1.1 ..."), or 0 (Postfix's dsn_valid).
func dsnValid(s string) int {
	if len(s) < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.' {
		return 0
	}
	i := 2
	for part := 0; part < 2; part++ {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		if n == 0 || n > 3 {
			return 0
		}
		if part == 0 {
			if i >= len(s) || s[i] != '.' {
				return 0
			}
			i++
		}
	}
	if i < len(s) && s[i] != ' ' && s[i] != '\t' {
		return 0
	}
	return i
}

// utf8AddrText encodes an address for ORCPT=utf-8; (RFC 6533):
// utf-8-addr-unitext when the server speaks SMTPUTF8, else
// utf-8-addr-xtext; '+', '=', '\', controls and space become \x{HEX}.
func utf8AddrText(s string, unitext bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r <= ' ' || r == '+' || r == '=' || r == '\\' || r == 0x7f || (r > 0x7f && !unitext) || r == utf8.RuneError:
			fmt.Fprintf(&b, `\x{%X}`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// quote821 is an envelope address (internal form) as smtp_quote_821_address
// writes it in MAIL and RCPT: the local part quoted unless it is a
// dot-string (quote_821_local quotes as quote_822_local for any address
// that passes safeCommandArg); the null address stays empty.
func quote821(addr string) string {
	if addr == "" {
		return ""
	}
	return tok822.QuotedLocal(addr)
}

// orcpt is the "type;address" of the ORCPT= r is sent with: the one it
// was received with, else "rfc822;" and its original address with the
// local part quoted (quote_822_local), as smtp_proto.c makes it; "" with
// neither.
func (r *Recipient) orcpt() string {
	if r.ORCPT != "" || r.Orig == "" {
		return r.ORCPT
	}
	return "rfc822;" + tok822.QuotedLocal(r.Orig)
}

// orcptParam is the ORCPT= value for a recipient's "type;address", or ""
// when it cannot be sent.
func orcptParam(orcpt string, unitext bool) string {
	typ, addr, ok := strings.Cut(orcpt, ";")
	if !ok || addr == "" {
		return ""
	}
	switch strings.ToLower(typ) {
	case "utf-8":
		return "utf-8;" + utf8AddrText(addr, unitext)
	case "rfc822":
		if !isASCII(addr) {
			return "utf-8;" + utf8AddrText(addr, unitext)
		}
		return "rfc822;" + rules.Xtext(addr)
	}
	if !isAtom(typ) || !isASCII(addr) {
		return ""
	}
	return typ + ";" + rules.Xtext(addr)
}

// notifyParam is the NOTIFY= value, or "" when notify is not well formed.
func notifyParam(notify string) string {
	if notify == "" {
		return ""
	}
	for _, v := range strings.Split(notify, ",") {
		switch strings.ToUpper(v) {
		case "NEVER", "SUCCESS", "FAILURE", "DELAY":
		default:
			return ""
		}
	}
	return strings.ToUpper(notify)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// safeCommandArg reports whether s can be written inside an SMTP command
// without breaking the command line.
func safeCommandArg(s string) bool {
	return !strings.ContainsAny(s, "\r\n\x00")
}
