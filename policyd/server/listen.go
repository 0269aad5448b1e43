package server

import (
	"context"
	"fmt"
	"net"
	"os"

	"postgate/policyd"
)

// Listen opens where the server listens, named as check_policy_service
// names a server: "inet:host:port", "unix:/path", or "unix:name" relative
// to queueDir. A socket file left by an earlier run is replaced; the new
// one is writable by all, as Postfix's own service sockets are, so that
// Postfix's smtpd, under its own user, can connect (the directory it is
// in decides who reaches it).
func Listen(ctx context.Context, spec, queueDir string) (net.Listener, error) {
	network, address, err := policyd.Endpoint(spec, queueDir)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if st, err := os.Lstat(address); err == nil && st.Mode()&os.ModeSocket != 0 {
			os.Remove(address)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, network, address)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if err := os.Chmod(address, 0o666); err != nil {
			ln.Close()
			return nil, fmt.Errorf("%s: %w", address, err)
		}
	}
	return ln, nil
}
