package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"postgate/gateway/config"
)

// defaultConfigDir is used when -c is not given and it exists.
const defaultConfigDir = "/etc/postgate"

// configFlag adds -c DIR to a command's flags.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("c", "", "configuration directory (main.cf, master.cf)")
}

// loadConfig reads -c DIR, else /etc/postgate when it exists, else the
// embedded defaults, and says which on stderr.
func loadConfig(dir string, say bool) (*config.Config, error) {
	if dir == "" {
		if st, err := os.Stat(defaultConfigDir); err == nil && st.IsDir() {
			dir = defaultConfigDir
		}
	}
	if dir == "" {
		if say {
			fmt.Fprintln(os.Stderr, "postgate: no -c DIR and no "+defaultConfigDir+": running on embedded defaults (listen 127.0.0.1:2525, queue in ./postgate-queue, relay only for 127.0.0.1)")
		}
		return config.Embedded(), nil
	}
	if say {
		fmt.Fprintf(os.Stderr, "postgate: using configuration directory %s\n", dir)
	}
	return config.Load(dir)
}

// printDiagnostics writes the config's warnings to stderr.
func printDiagnostics(cfg *config.Config) {
	for _, d := range cfg.Diagnostics() {
		fmt.Fprintf(os.Stderr, "postgate: %s\n", d)
	}
}

// printError writes an error to stderr, one line per configuration
// diagnostic, prefix is "fatal: " for the daemon and "" for check.
func printError(prefix string, err error) {
	var ce *config.Error
	if errors.As(err, &ce) {
		for _, d := range ce.Diags {
			if d.Warning {
				fmt.Fprintf(os.Stderr, "postgate: %s\n", d)
			} else {
				fmt.Fprintf(os.Stderr, "postgate: %s%s\n", prefix, d)
			}
		}
		return
	}
	fmt.Fprintf(os.Stderr, "postgate: %s%v\n", prefix, err)
}

// daemonConfig parses a daemon command's flags (-c DIR) and loads the
// configuration, saying which; ok is false after a fatal error, reported.
func daemonConfig(name string, args []string) (cfg *config.Config, ok bool) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	dir := configFlag(fs)
	fs.Parse(args)
	cfg, err := loadConfig(*dir, true)
	if err != nil {
		printError("fatal: ", err)
		return nil, false
	}
	return cfg, true
}
