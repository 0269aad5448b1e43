package main

import (
	"flag"
	"fmt"
	"os"

	"postgate/queue"
)

// queueCmd reads the queue log read-only, so it works while the daemon runs
// (and when it does not) without a control socket.
func queueCmd(args []string) int {
	fs := flag.NewFlagSet("queue", flag.ExitOnError)
	dir := configFlag(fs)
	fs.Parse(args)
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	cfg, err := loadConfig(*dir, false)
	if err != nil {
		printError("", err)
		return 1
	}
	qdir := cfg.Get("queue_directory")
	snap, err := queue.OpenReadOnly(qdir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "postgate: queue_directory %s: %v\n", qdir, err)
		return 1
	}
	switch sub, subArgs := rest[0], rest[1:]; sub {
	case "list":
		sfs := flag.NewFlagSet("queue list", flag.ExitOnError)
		asJSON := sfs.Bool("json", false, "JSON lines, as postqueue -j")
		sfs.Parse(subArgs)
		// The JSON form stays one message a line, as postqueue -j, so the
		// damage summary (bytes that named no message) is only in the text
		// form; JSON readers count the corrupt queue's lines.
		if *asJSON {
			err = queue.WriteJSON(os.Stdout, snap.List())
		} else if err = queue.WriteMailq(os.Stdout, snap.List(), cfg.Bool("enable_long_queue_ids")); err == nil {
			err = queue.WriteDamage(os.Stdout, snap.Damage())
		}
	case "show":
		sfs := flag.NewFlagSet("queue show", flag.ExitOnError)
		raw := sfs.Bool("raw", false, "print only the stored message bytes")
		sfs.Parse(subArgs)
		if sfs.NArg() != 1 {
			fmt.Fprintln(os.Stderr, "usage: postgate queue show [--raw] ID")
			return 2
		}
		err = showMessage(snap, sfs.Arg(0), *raw)
	default:
		fmt.Fprintf(os.Stderr, "postgate: unknown queue command %q\n%s", sub, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "postgate: %v\n", err)
		return 1
	}
	return 0
}
