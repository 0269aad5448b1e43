package gateway

import (
	"context"
	"fmt"

	"postgate/gateway/config"
	"postgate/relay"
	"postgate/relay/tlsfacts"
	"postgate/rules"
)

// clientTLSOptions reads the TLS parameters of the SMTP client, or of the
// LMTP client with their lmtp_ twins (client "smtp" or "lmtp"). Check
// calls it too, so a level postgate cannot honour (dane) is refused before
// the daemon runs.
func clientTLSOptions(cfg *config.Config, client string, tables *tableCache) (relay.TLSOptions, error) {
	var o relay.TLSOptions
	var err error
	param := func(name string) string { return client + "_" + name }
	switch level := cfg.Get(param("tls_security_level")); level {
	case "":
		// The legacy parameters, as Postfix reads them when the level is empty.
		switch {
		case cfg.Bool(param("enforce_tls")):
			o.Level = relay.TLSEncrypt
		case cfg.Bool(param("use_tls")):
			o.Level = relay.TLSMay
		}
	default:
		if o.Level, err = relay.ParseTLSLevel(level); err != nil {
			return o, paramError(cfg, param("tls_security_level"), err)
		}
	}
	maps, err := openMaps(cfg, param("tls_policy_maps"), tables)
	if err != nil {
		return o, err
	}
	if len(maps) > 0 {
		o.Policy = func(ctx context.Context, key string) (string, bool, error) {
			for _, t := range maps {
				if v, ok, err := t.Lookup(ctx, key); err != nil || ok {
					return v, ok, err
				}
			}
			return "", false, nil
		}
		// A policy naming a level postgate does not have is refused now
		// when the table can be listed, not at the first delivery.
		for i, t := range maps {
			if err := checkPolicyTable(t); err != nil {
				return o, paramError(cfg, param("tls_policy_maps"), fmt.Errorf("%s: %w", cfg.List(param("tls_policy_maps"))[i], err))
			}
		}
	}
	if o.RootCAs, err = loadCAs(cfg, client); err != nil {
		return o, err
	}
	// A client certificate, sent when a server asks for one. A file that
	// does not load is a configuration error here, where Postfix's smtp
	// would run without TLS.
	if cs := newCertStore(cfg, client); len(cs.files) > 0 {
		if err := cs.load(); err != nil {
			return o, paramError(cfg, cs.param, err)
		}
		o.ClientCertificate = cs.chooseClient
	}
	o.LogLevel = int(cfg.Int(param("tls_loglevel")))
	if o.MinVersion, o.MaxVersion, err = tlsfacts.Protocols(cfg.Get(param("tls_protocols"))); err != nil {
		return o, paramError(cfg, param("tls_protocols"), err)
	}
	if o.MandatoryMinVersion, o.MandatoryMaxVersion, err = tlsfacts.Protocols(cfg.Get(param("tls_mandatory_protocols"))); err != nil {
		return o, paramError(cfg, param("tls_mandatory_protocols"), err)
	}
	o.VerifyMatch, o.SecureMatch = cfg.List(param("tls_verify_cert_match")), cfg.List(param("tls_secure_cert_match"))
	return o, nil
}

// checkPolicyTable parses the entries of a policy table that can list
// them (file tables); others are checked at delivery.
func checkPolicyTable(t rules.Table) error {
	l, ok := t.(rules.Lister)
	if !ok {
		return nil
	}
	for _, e := range l.List() {
		if err := relay.CheckTLSPolicy(e[1]); err != nil {
			return fmt.Errorf("entry %q: %w", e[0], err)
		}
	}
	return nil
}
