package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"postgate/rules"
)

// mapCmd queries or lists lookup tables as postmap(1) -q and -s do, so an
// admin can check a table before the daemon uses it:
//
//	postgate map -q KEY TABLE...   the first table that has KEY prints its value
//	postgate map -q - TABLE...     each key read from stdin: "key<TAB>value" when found
//	postgate map -s TABLE...       every entry, "key<TAB>value", keys sorted
//
// One exact lookup per key and table (no parent domains or address
// prefixes), as postmap does. Exit status: 0 when something was found or
// listed, 1 when nothing was, or on an error.
func mapCmd(args []string) int {
	return runMap(args, os.Stdin, os.Stdout, os.Stderr)
}

func runMap(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("map", flag.ContinueOnError)
	fs.SetOutput(stderr)
	query := fs.String("q", "", "look KEY up (- reads keys from stdin)")
	list := fs.Bool("s", false, "list every entry")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*query == "") == !*list || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: postgate map -q KEY|- TABLE... | postgate map -s TABLE...")
		return 2
	}
	var tables []rules.Table
	for _, spec := range fs.Args() {
		t, err := rules.OpenWith(spec, rules.OpenOptions{Warn: func(m string) { fmt.Fprintln(stderr, "postgate: warning: "+m) }})
		if err != nil {
			fmt.Fprintf(stderr, "postgate: fatal: %v\n", err)
			return 1
		}
		tables = append(tables, t)
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	found := false
	switch {
	case *list:
		for i, t := range tables {
			l, ok := t.(rules.Lister)
			if !ok {
				fmt.Fprintf(stderr, "postgate: fatal: table %s: sequence operation is not supported\n", fs.Arg(i))
				return 1
			}
			for _, e := range l.List() {
				fmt.Fprintf(out, "%s\t%s\n", e[0], e[1])
				found = true
			}
		}
	case *query == "-":
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			key := strings.TrimSpace(sc.Text())
			if key == "" {
				continue
			}
			v, ok, err := lookupFirst(tables, fs.Args(), key)
			if err != nil {
				fmt.Fprintf(stderr, "postgate: fatal: %v\n", err)
				return 1
			}
			if ok {
				fmt.Fprintf(out, "%s\t%s\n", key, v)
				found = true
			}
		}
	default:
		v, ok, err := lookupFirst(tables, fs.Args(), *query)
		if err != nil {
			fmt.Fprintf(stderr, "postgate: fatal: %v\n", err)
			return 1
		}
		if ok {
			fmt.Fprintln(out, v)
			found = true
		}
	}
	if !found {
		return 1
	}
	return 0
}

// lookupFirst asks each table in turn, with a bound on each lookup (a
// table may be a network service).
func lookupFirst(tables []rules.Table, specs []string, key string) (string, bool, error) {
	for i, t := range tables {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		v, ok, err := t.Lookup(ctx, key)
		cancel()
		if err != nil {
			return "", false, fmt.Errorf("table %s: lookup of %q: %w", specs[i], key, err)
		}
		if ok {
			return v, true, nil
		}
	}
	return "", false, nil
}
