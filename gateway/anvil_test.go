package gateway

import (
	"testing"

	"postgate/gateway/config"
	"postgate/greylist"
)

// TestAnvilServiceName: a pool's nodes name a service alike in the state
// store: the master.cf name without its host, or
// postgate_anvil_service_name.
func TestAnvilServiceName(t *testing.T) {
	for _, c := range []struct{ main, master, want string }{
		{"", "10.0.0.1:25 inet n - n - - smtpd\n", "25"},
		{"", "[2001:db8::1]:smtp inet n - n - - smtpd\n", "smtp"},
		{"", "submission inet n - n - - smtpd\n", "submission"},
		{"postgate_anvil_service_name = mx\n", "10.0.0.1:25 inet n - n - - smtpd\n", "mx"},
		{"", "10.0.0.1:25 inet n - n - - smtpd -o postgate_anvil_service_name=in\n", "in"},
	} {
		cfg, err := config.Parse("main.cf", []byte(c.main), "master.cf", []byte(c.master))
		if err != nil {
			t.Fatal(err)
		}
		svc := cfg.Services()[0]
		if got := newAnvil(cfg.ForService(svc), svc, greylist.NewMemory()).name; got != c.want {
			t.Errorf("%q with %q: %q, want %q", c.master, c.main, got, c.want)
		}
	}
}
