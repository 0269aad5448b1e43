package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"postgate/gateway"
	"postgate/policyd/server"
)

// policydCmd serves postgate's restrictions to an existing Postfix over
// the policy delegation protocol (check_policy_service
// inet:127.0.0.1:10040): postgate_policyd_restrictions from the same
// main.cf, at postgate_policyd_listen, until SIGTERM or SIGINT.
func policydCmd(args []string) int {
	cfg, ok := daemonConfig("policyd", args)
	if !ok {
		return 1
	}
	printDiagnostics(cfg)
	p, err := gateway.NewPolicyd(cfg, gateway.Options{})
	if err != nil {
		printError("fatal: ", err)
		return 1
	}
	defer p.Close()
	for _, n := range p.Lists.NotImplemented() {
		p.Logf("warning: restriction %q is not implemented yet: it answers 451 4.3.5 Server configuration error", n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	listen := cfg.Get("postgate_policyd_listen")
	ln, err := server.Listen(ctx, listen, cfg.Get("queue_directory"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "postgate: fatal: postgate_policyd_listen = %s: %v\n", listen, err)
		return 1
	}
	p.Logf("listening on %s", listen)
	srv := server.New(server.Options{
		Lists:       p.Lists,
		Class:       gateway.PolicydClass,
		Timeout:     cfg.Duration("postgate_policyd_timeout"),
		IdleTimeout: cfg.Duration("postgate_policyd_idle_timeout"),
		Logf:        p.Logf,
	})
	if err := srv.Serve(ctx, ln); err != nil {
		p.Logf("fatal: %v", err)
		return 1
	}
	p.Logf("stopped")
	return 0
}
