package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"postgate/gateway"
	"postgate/rules/addrheader"
)

// Exit codes from sysexits.h, as sendmail programs use them.
const (
	exUsage    = 64
	exTempFail = 75
)

// sendmailOpts are the sendmail(1) flags postgate takes.
type sendmailOpts struct {
	configDir  string
	sender     string
	fullName   string
	extract    bool // -t
	ignoreDots bool // -i, -oi
	mode       string
	rcpts      []string
}

// sendmailCmd is `postgate sendmail` (also run as "sendmail" through a
// link): it reads a message on standard input and leaves it in the
// maildrop for the daemon, which it then nudges; with the daemon down the
// message waits there, and nothing is lost.
func sendmailCmd(args []string) int {
	o, err := parseSendmail(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sendmail: fatal: %v\n", err)
		return exUsage
	}
	switch o.mode {
	case "bp": // mailq
		return queueCmd(append(configArgs(o.configDir), "list"))
	case "q": // sendmail -q: deliver the deferred mail now
		return queueCmd(append(configArgs(o.configDir), "flush"))
	}
	cfg, err := loadConfig(o.configDir, false)
	if err != nil {
		printError("fatal: ", err)
		return exTempFail
	}
	qdir := cfg.Get("queue_directory")
	if o.sender == "" {
		if u, err := user.Current(); err == nil {
			o.sender = u.Username
		}
	}
	if o.mode == "bs" {
		return sendmailSMTP(qdir, o, os.Stdin, os.Stdout)
	}
	content, err := readMessage(bufio.NewReader(os.Stdin), o.ignoreDots)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sendmail: fatal: reading the message: %v\n", err)
		return exTempFail
	}
	rcpts := o.rcpts
	if o.extract {
		var found []string
		content, found = extractRecipients(content)
		rcpts = append(rcpts, found...)
	}
	if len(rcpts) == 0 {
		if o.extract {
			fmt.Fprintln(os.Stderr, "sendmail: fatal: No recipient addresses found in message header")
		} else {
			fmt.Fprintln(os.Stderr, "sendmail: fatal: Recipient addresses must be specified on the command line or via the -t option")
		}
		return exUsage
	}
	if err := drop(qdir, gateway.Drop{Sender: o.sender, Recipients: rcpts, UID: os.Getuid(), FullName: o.fullName}, content); err != nil {
		fmt.Fprintf(os.Stderr, "sendmail: fatal: %v\n", err)
		return exTempFail
	}
	return 0
}

func configArgs(dir string) []string {
	if dir == "" {
		return nil
	}
	return []string{"-c", dir}
}

// drop writes the message to the maildrop and tells a running daemon.
func drop(qdir string, d gateway.Drop, content []byte) error {
	if _, err := gateway.WriteMaildrop(qdir, d, bytes.NewReader(content)); err != nil {
		return err
	}
	// A user other than root may not use the control socket: the daemon's
	// scan finds the message within a minute.
	if _, err := controlDaemon(qdir, gateway.ControlRequest{Op: "pickup"}); err != nil && !errors.Is(err, errNoDaemon) && !errors.Is(err, os.ErrPermission) {
		// Queued all the same: the daemon scans the maildrop every minute.
		fmt.Fprintf(os.Stderr, "sendmail: warning: %v\n", err)
	}
	return nil
}

// parseSendmail reads sendmail's flags: the ones that matter to postgate,
// and the rest of the common ones accepted and ignored, as Postfix's
// sendmail ignores most Sendmail options.
func parseSendmail(args []string) (sendmailOpts, error) {
	var o sendmailOpts
	o.mode = "bm"
	// value returns a flag's argument: attached ("-fuser") or the next one.
	value := func(i *int, a string) (string, error) {
		if len(a) > 2 {
			return a[2:], nil
		}
		if *i+1 >= len(args) {
			return "", fmt.Errorf("option %s requires an argument", a)
		}
		*i++
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.rcpts = append(o.rcpts, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			o.rcpts = append(o.rcpts, args[i:]...)
			break
		}
		var err error
		switch a[1] {
		case 'c', 'C':
			o.configDir, err = value(&i, a)
		case 'f', 'r':
			o.sender, err = value(&i, a)
			o.sender = strings.TrimSuffix(strings.TrimPrefix(o.sender, "<"), ">")
		case 'F':
			o.fullName, err = value(&i, a)
		case 't':
			o.extract = true
		case 'i':
			o.ignoreDots = true
		case 'o':
			if a == "-oi" {
				o.ignoreDots = true
			} else if a == "-o" {
				_, err = value(&i, a)
			} // -oem, -odb, -om, ...: ignored
		case 'b':
			switch a {
			case "-bm", "-bp", "-bs":
				o.mode = a[1:]
			default:
				err = fmt.Errorf("unsupported mode %s", a)
			}
		case 'q':
			o.mode = "q"
		case 'N', 'R', 'V', 'B', 'L', 'O', 'X', 'h':
			_, err = value(&i, a) // DSN and other options with an argument: ignored
		case 'v', 'G', 'U', 'n', 'm', 'e', 'd', 'x', 'A':
			// ignored, as Postfix's sendmail ignores them
		default:
			err = fmt.Errorf("unknown option %s", a)
		}
		if err != nil {
			return o, err
		}
	}
	return o, nil
}

// readMessage reads the message; without -i, a line of a single dot
// ends it, as sendmail's convention is.
func readMessage(r *bufio.Reader, ignoreDots bool) ([]byte, error) {
	if ignoreDots {
		return io.ReadAll(r)
	}
	var b []byte
	for {
		line, err := r.ReadBytes('\n')
		if t := bytes.TrimRight(line, "\r\n"); len(t) == 1 && t[0] == '.' {
			return b, nil
		}
		b = append(b, line...)
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// extractRecipients is -t: the addresses of the To:, Cc: and Bcc: headers
// (the Resent- ones instead, when there are any), with the Bcc: header
// removed from the message.
func extractRecipients(msg []byte) ([]byte, []string) {
	type field struct {
		name  string
		lines []byte
	}
	var fields []field
	body := msg
	for len(body) > 0 {
		line, rest, _ := bytes.Cut(body, []byte("\n"))
		if len(bytes.TrimRight(line, "\r")) == 0 {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			f := &fields[len(fields)-1]
			f.lines = append(append(f.lines, line...), '\n')
		} else {
			name, _, ok := addrheader.SplitHeader(string(line))
			if !ok {
				break
			}
			fields = append(fields, field{name: strings.ToLower(name), lines: append(append([]byte(nil), line...), '\n')})
		}
		body = rest
	}
	resent := false
	for _, f := range fields {
		resent = resent || strings.HasPrefix(f.name, "resent-")
	}
	want := map[string]bool{"to": true, "cc": true, "bcc": true}
	if resent {
		want = map[string]bool{"resent-to": true, "resent-cc": true, "resent-bcc": true}
	}
	var out []byte
	var rcpts []string
	for _, f := range fields {
		if want[f.name] {
			_, value, _ := addrheader.SplitHeader(strings.ReplaceAll(string(f.lines), "\n", ""))
			for _, e := range addrheader.Parse(strings.ReplaceAll(value, "\r", ""), 0) {
				if e.Address && e.Text != "" {
					rcpts = append(rcpts, e.Text)
				}
			}
		}
		if f.name != "bcc" && f.name != "resent-bcc" {
			out = append(out, f.lines...)
		}
	}
	return append(out, body...), rcpts
}

// sendmailSMTP is sendmail -bs: SMTP on standard input and output, each
// message dropped as with the command line form.
func sendmailSMTP(qdir string, o sendmailOpts, in io.Reader, out io.Writer) int {
	r := bufio.NewReader(in)
	w := bufio.NewWriter(out)
	reply := func(s string) { w.WriteString(s + "\r\n"); w.Flush() }
	reply("220 localhost ESMTP postgate")
	var sender string
	var rcpts []string
	mail := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "HELO", "EHLO":
			reply("250 localhost")
		case "MAIL":
			addr, ok := pathArg(arg, "FROM:")
			if !ok {
				reply("501 5.5.4 Syntax: MAIL FROM:<address>")
				continue
			}
			sender, rcpts, mail = addr, nil, true
			reply("250 2.1.0 Ok")
		case "RCPT":
			addr, ok := pathArg(arg, "TO:")
			switch {
			case !mail:
				reply("503 5.5.1 Error: need MAIL command")
			case !ok || addr == "":
				reply("501 5.5.4 Syntax: RCPT TO:<address>")
			default:
				rcpts = append(rcpts, addr)
				reply("250 2.1.5 Ok")
			}
		case "DATA":
			if len(rcpts) == 0 {
				reply("503 5.5.1 Error: need RCPT command")
				continue
			}
			reply("354 End data with <CR><LF>.<CR><LF>")
			content, err := readMessage(r, false)
			if err != nil {
				return exTempFail
			}
			// SMTP's dot-stuffing undone.
			content = bytes.ReplaceAll(content, []byte("\n.."), []byte("\n."))
			if bytes.HasPrefix(content, []byte("..")) {
				content = content[1:]
			}
			if err := drop(qdir, gateway.Drop{Sender: sender, Recipients: rcpts, UID: os.Getuid(), FullName: o.fullName}, content); err != nil {
				reply("451 4.3.0 Error: queue file write error")
			} else {
				reply("250 2.0.0 Ok: queued")
			}
			sender, rcpts, mail = "", nil, false
		case "RSET":
			sender, rcpts, mail = "", nil, false
			reply("250 2.0.0 Ok")
		case "NOOP":
			reply("250 2.0.0 Ok")
		case "QUIT":
			reply("221 2.0.0 Bye")
			return 0
		default:
			reply("502 5.5.2 Error: command not recognized")
		}
	}
}

// pathArg reads "FROM:<addr>" (parameters after it ignored).
func pathArg(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimSpace(arg[len(prefix):])
	if !strings.HasPrefix(rest, "<") {
		return "", false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", false
	}
	return rest[1:end], true
}
