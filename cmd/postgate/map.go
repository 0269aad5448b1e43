package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"postgate/rules"
)

// mapQuery is postmap -q: one lookup of KEY in each table in turn, as the
// daemon would open it; the first table that has the key prints its
// value. It exits 0 when found, 1 when no table has the key, 2 when a
// table cannot be opened or a lookup fails.
func mapQuery(args []string) int {
	fs := flag.NewFlagSet("map", flag.ExitOnError)
	key := fs.String("q", "", "the key to look up")
	fs.Parse(args)
	if fs.NArg() == 0 || !flagSet(fs, "q") {
		fmt.Fprintln(os.Stderr, "usage: postgate map -q KEY type:name...")
		return 2
	}
	warn := rules.OpenOptions{Warn: func(m string) { fmt.Fprintf(os.Stderr, "postgate: warning: %s\n", m) }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, spec := range fs.Args() {
		tb, err := rules.OpenWith(spec, warn)
		if err != nil {
			fmt.Fprintf(os.Stderr, "postgate: fatal: %s: %v\n", spec, err)
			return 2
		}
		v, found, err := tb.Lookup(ctx, *key)
		if err != nil {
			fmt.Fprintf(os.Stderr, "postgate: fatal: table %s: query error: %v\n", spec, err)
			return 2
		}
		if found {
			fmt.Println(v)
			return 0
		}
	}
	return 1
}

// flagSet reports whether the flag was given, even as "".
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
