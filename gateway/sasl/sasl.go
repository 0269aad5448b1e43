// Package sasl is the server side of SMTP AUTH (RFC 4954): the
// authentication backends smtpd_sasl_type names. "dovecot" speaks
// Dovecot's authentication protocol to a Dovecot auth service and lets it
// run the mechanisms, as Postfix's xsasl_dovecot does; "file" is
// postgate's own: PLAIN and LOGIN checked against a file of bcrypt or
// argon2id password hashes.
//
// A Server runs one session's exchanges the way Postfix's XSASL_SERVER
// does: Start with the mechanism and the initial response, then Next with
// each client response while the step asks for more. Responses and
// challenges stay in base64, as on the wire.
package sasl

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Status is where an exchange stands after a step.
type Status int

const (
	More Status = iota // send Challenge (334) and read the next response
	Done               // authenticated as Username
	Fail               // refused (535); Reason says why
	Temp               // the backend could not decide (454); Reason says why
)

// Step is the outcome of Start or Next.
type Step struct {
	Status    Status
	Challenge string // base64, for More
	Reason    string // for Fail and Temp; may be empty
	Username  string // for Done; for Fail, the name tried if known
}

// Session is what a backend knows of the SMTP session.
type Session struct {
	Service    string // smtpd_sasl_service: "smtp"
	LocalAddr  string // the server's address
	RemoteAddr string // the client's address
	Secured    bool   // TLS is on
}

// Server is one SMTP session's authentication state.
type Server interface {
	Start(ctx context.Context, mech, initial string) Step
	Next(ctx context.Context, response string) Step
	Close()
}

// Backend is an authentication service.
type Backend interface {
	// Mechanisms lists the mechanisms offered (upper case); an error
	// means the service cannot be reached (then AUTH is not offered).
	Mechanisms(ctx context.Context) ([]string, error)
	NewServer(s Session) Server
}

// Options configure Open.
type Options struct {
	Type string // smtpd_sasl_type: dovecot or file
	// Path is smtpd_sasl_path: for dovecot inet:host:port, unix:/path or
	// a path (relative ones under QueueDir, as Postfix's private/auth);
	// for file, the password file.
	Path     string
	QueueDir string
	Timeout  time.Duration // per exchange with the auth service
}

// Open returns the backend the options name.
func Open(o Options) (Backend, error) {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	switch strings.ToLower(o.Type) {
	case "dovecot":
		network, addr, err := dovecotAddress(o.Path, o.QueueDir)
		if err != nil {
			return nil, err
		}
		return &dovecot{network: network, addr: addr, timeout: o.Timeout}, nil
	case "file":
		return openFile(o.Path)
	case "cyrus":
		return nil, fmt.Errorf("smtpd_sasl_type = cyrus is not supported: use dovecot (a Dovecot auth service) or file (postgate's password file)")
	}
	return nil, fmt.Errorf("unknown smtpd_sasl_type %q: use dovecot or file", o.Type)
}

// validBase64 is Postfix's is_valid_base64: the alphabet only.
func validBase64(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}
