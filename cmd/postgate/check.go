package main

import (
	"flag"
	"fmt"
	"os"

	"postgate/gateway"
	"postgate/gateway/config"
)

// check validates the configuration as the daemon would and prints the
// non-default settings as postconf -n does. It exits 1 on any error.
func check(args []string) int {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	dir := configFlag(fs)
	fs.Parse(args)
	cfg, err := loadConfig(*dir, false)
	if err != nil {
		printError("", err)
		return 1
	}
	printDiagnostics(cfg)
	notices, err := gateway.Check(cfg, func(msg string) { fmt.Fprintf(os.Stderr, "postgate: warning: %s\n", msg) })
	for _, n := range notices {
		fmt.Fprintf(os.Stderr, "postgate: warning: restriction %q is not implemented yet: it answers 451 4.3.5 Server configuration error\n", n)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "postgate: %v\n", err)
		return 1
	}
	if qerr := config.CheckQueueDirectory(cfg.Get("queue_directory")); qerr != nil {
		fmt.Fprintf(os.Stderr, "postgate: %v\n", qerr)
		return 1
	}
	for _, line := range cfg.NonDefault() {
		fmt.Println(line)
	}
	return 0
}
