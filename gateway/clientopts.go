package gateway

import (
	"net/netip"
	"strings"

	"postgate/gateway/config"
	"postgate/relay"
)

// clientOptions reads the parameters of Postfix's smtp(8) client in one of
// its two personalities: client "smtp" reads smtp_*, client "lmtp" their
// lmtp_* twins, as Postfix's smtp and lmtp do (lmtp_lhlo_name and
// lmtp_lhlo_timeout for the HELO ones). The queue directory is where
// relative lmtp:unix: sockets are.
func clientOptions(cfg *config.Config, client string, resolver relay.Resolver, tables *tableCache, logf func(prog, line string)) (relay.Options, error) {
	param := func(name string) string {
		if client == "lmtp" {
			name = strings.ReplaceAll(name, "helo", "lhlo")
		}
		return client + "_" + name
	}
	o := relay.Options{
		HeloName:        cfg.Get(param("helo_name")),
		MyHostname:      cfg.Get("myhostname"),
		Resolver:        resolver,
		ConnectionReuse: true,
		LMTP:            client == "lmtp",
		QueueDirectory:  cfg.Get("queue_directory"),
		Log:             func(line string) { logf(client, line) },

		ConnectTimeout:  cfg.Duration(param("connect_timeout")),
		HeloTimeout:     cfg.Duration(param("helo_timeout")),
		MailTimeout:     cfg.Duration(param("mail_timeout")),
		RcptTimeout:     cfg.Duration(param("rcpt_timeout")),
		DataInitTimeout: cfg.Duration(param("data_init_timeout")),
		DataXferTimeout: cfg.Duration(param("data_xfer_timeout")),
		DataDoneTimeout: cfg.Duration(param("data_done_timeout")),
		RsetTimeout:     cfg.Duration(param("rset_timeout")),
	}
	if o.ConnectTimeout == 0 {
		// Postfix's 0 (lmtp_connect_timeout's default): no time limit
		// of its own, the system's connect timeout.
		o.ConnectTimeout = -1
	}
	if b := cfg.Get(param("bind_address")); b != "" {
		a, err := netip.ParseAddr(b)
		if err != nil {
			return o, paramError(cfg, param("bind_address"), err)
		}
		o.BindAddress = a
	}
	var err error
	if o.Port, err = servicePort(cfg.Get(param("tcp_port"))); err != nil {
		return o, paramError(cfg, param("tcp_port"), err)
	}
	if o.LineLengthLimit = int(cfg.Int(param("line_length_limit"))); o.LineLengthLimit == 0 {
		o.LineLengthLimit = -1 // Postfix's 0 is "no limit"; relay's 0 is its default
	}
	if o.TLS, err = clientTLSOptions(cfg, client, tables); err != nil {
		return o, err
	}
	return o, nil
}
