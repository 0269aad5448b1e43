package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"postgate/gateway"
	"postgate/gateway/config"
)

func serve(args []string) int {
	cfg, ok := daemonConfig("serve", args)
	if !ok {
		return 1
	}
	printDiagnostics(cfg)
	where := "embedded defaults"
	if cfg.Dir() != "" {
		where = cfg.Dir()
	}
	g, err := gateway.New(cfg, gateway.Options{
		Describe: fmt.Sprintf("version %s, configuration %s", version, where),
		Load: func() (*config.Config, error) {
			if cfg.Dir() == "" {
				return config.Embedded(), nil
			}
			return config.Load(cfg.Dir())
		},
	})
	if err != nil {
		printError("fatal: ", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := g.Listen(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "postgate: fatal: %v\n", err)
		return 1
	}
	for _, a := range g.Addrs() {
		fmt.Fprintf(os.Stderr, "postgate: listening on %s\n", a)
	}
	if owner := cfg.Get("mail_owner"); owner != "" && os.Geteuid() == 0 {
		if err := g.DropPrivileges(owner); err != nil {
			printError("fatal: ", err)
			return 1
		}
	}
	// SIGHUP reloads, as postgate reload does (the mail log says how it went).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			g.Reload()
		}
	}()
	if err := g.Serve(ctx, 30*time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "postgate: fatal: %v\n", err)
		return 1
	}
	return 0
}
