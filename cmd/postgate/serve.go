package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"postgate/gateway"
)

func serve(args []string) int {
	cfg, ok := daemonConfig("serve", args)
	if !ok {
		return 1
	}
	printDiagnostics(cfg)
	g, err := gateway.New(cfg, gateway.Options{})
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
	if err := g.Serve(ctx, 30*time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "postgate: fatal: %v\n", err)
		return 1
	}
	return 0
}
