// Command postgate is a Postfix-compatible policy and content-filtering
// mail gateway: one binary for the daemon and its admin tools.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

const usage = `usage: postgate COMMAND [-c DIR] [ARGS]

commands:
  serve                 run the gateway
  check                 validate the configuration; print non-default settings (postconf -n)
  queue list [--json]   list the queue (mailq; --json as postqueue -j)
  queue show [--raw] ID print a queued message (postcat -q; --raw: the stored bytes only)
  queue hold|release|delete|requeue|expire ID...|ALL|-
                        change messages (postsuper -h, -H, -d, -r, -e); "-": IDs on stdin
  queue flush [DOMAIN]  deliver deferred mail now (postqueue -f; -s DOMAIN)
  queue shape [-s] [-p] [-l] [-b N] [-t MIN] [QUEUE...]
                        messages per domain by age (qshape); QUEUE: active, deferred, hold
  reload                re-read the configuration without dropping sessions (postfix reload, SIGHUP)
  sendmail [-t] [-i] [-f SENDER] [-F NAME] [-bs] [RCPT...]
                        submit a message from standard input (sendmail; also as a link named sendmail)
  map -q KEY|- TABLE... look a key up in tables (postmap -q)
  map -s TABLE...       list tables (postmap -s)
  version               print the version
  policyd               serve postgate's restrictions to Postfix (check_policy_service)

Without -c, postgate reads /etc/postgate when it exists, else runs on its
embedded defaults (listen on 127.0.0.1:2525, queue in ./postgate-queue).
`

// version is set at link time (-ldflags "-X main.version=...").
var version = "0.1-dev"

func main() {
	// Run through a link named sendmail or mailq, postgate is that command.
	switch filepath.Base(os.Args[0]) {
	case "sendmail":
		os.Exit(sendmailCmd(os.Args[1:]))
	case "mailq":
		os.Exit(queueCmd(append(os.Args[1:], "list")))
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var code int
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		code = serve(args)
	case "check":
		code = check(args)
	case "queue":
		code = queueCmd(args)
	case "map":
		code = mapCmd(args)
	case "reload":
		code = reloadCmd(args)
	case "sendmail":
		code = sendmailCmd(args)
	case "version":
		fmt.Println("postgate", version)
	case "policyd":
		code = policydCmd(args)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "postgate: unknown command %q\n%s", cmd, usage)
		code = 2
	}
	os.Exit(code)
}
