package relay

import "strings"

// Reply is a server's reply that a result quotes, as data: a delivery
// status notice reports it as "Remote-MTA: dns; Host" and
// "Diagnostic-Code: smtp; Text" (with the lines joined by spaces), where
// the log line has the same reply inside Postfix's wording.
type Reply struct {
	Host string // the server's host name (for a unix socket, MyHostname)
	Code int    // the reply code, 550
	// DSN is the enhanced status code the reply stands for: the server's,
	// else X.0.0 from the code (a 5xx greeting counts as 4.x.x).
	DSN string
	// Text is the reply as the server sent it, every line with its code,
	// "\n" between lines ("550-5.1.1 first\n550 5.1.1 last"), made
	// printable and at most 2048 bytes.
	Text string
	// Command is what the reply answered, in Postfix's words: "MAIL
	// FROM", "RCPT TO", "DATA", "end of DATA", "EHLO", "LHLO", "HELO",
	// "STARTTLS"; "" for the greeting.
	Command string
}

// export is the reply as a result carries it.
func (r *reply) export() *Reply {
	return &Reply{Host: r.host, Code: r.code, DSN: r.dsn, Text: r.text, Command: r.command}
}

// commandName names the command line a reply answers, as Postfix's
// "(in reply to ... command)" does.
func commandName(line string) string {
	if line == "." {
		return "end of DATA"
	}
	if verb, _, ok := strings.Cut(line, ":"); ok && (strings.EqualFold(verb, "MAIL FROM") || strings.EqualFold(verb, "RCPT TO")) {
		return strings.ToUpper(verb)
	}
	verb, _, _ := strings.Cut(line, " ")
	return strings.ToUpper(verb)
}
