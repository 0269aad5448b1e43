package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"postgate/gateway/config"
	"postgate/relay"
	"postgate/rules"
	"postgate/rules/route"
)

// The SMTP client's routing and login parameters beyond TLS: the
// sender-dependent tables of the address resolver, smtp_sasl_*,
// smtp_generic_maps and smtp_fallback_relay. Check builds them too, so a
// bad table or option is refused before the daemon runs.

// senderRoutes opens the sender-dependent tables of the resolver.
func senderRoutes(cfg *config.Config, tables *tableCache, o *route.Options) error {
	var err error
	if o.SenderDependentRelayhostMaps, err = openMaps(cfg, "sender_dependent_relayhost_maps", tables); err != nil {
		return err
	}
	o.SenderDependentDefaultTransportMaps, err = openMaps(cfg, "sender_dependent_default_transport_maps", tables)
	return err
}

// firstFound looks key up in each table in turn (Postfix's maps_find).
func firstFound(tables []rules.Table) func(ctx context.Context, key string) (string, bool, error) {
	return func(ctx context.Context, key string) (string, bool, error) {
		for _, t := range tables {
			if v, ok, err := t.Lookup(ctx, key); err != nil || ok {
				return v, ok, err
			}
		}
		return "", false, nil
	}
}

// smtpClientOptions sets the SMTP client's SASL, generic mapping and
// fallback relay options; rt is the runtime's resolver, which says
// whether an address is in a local domain (for the user-only keys of
// Postfix's mail_addr_find).
func smtpClientOptions(cfg *config.Config, tables *tableCache, rt *atomic.Pointer[route.Resolver], o *relay.Options) error {
	delims := cfg.Get("recipient_delimiter")
	isLocal := func(ctx context.Context, addr string) (bool, error) {
		res, err := rt.Load().Resolve(ctx, addr)
		return res.Class == route.Local, err
	}

	if cfg.Bool("smtp_sasl_auth_enable") {
		maps, err := openMaps(cfg, "smtp_sasl_password_maps", tables)
		if err != nil {
			return err
		}
		if len(maps) == 0 {
			return paramError(cfg, "smtp_sasl_auth_enable", fmt.Errorf("specify a password table in smtp_sasl_password_maps"))
		}
		s := &o.SASL
		s.Password = firstFound(maps)
		if cfg.Bool("smtp_sender_dependent_authentication") {
			s.SenderPassword = func(ctx context.Context, sender string) (string, bool, error) {
				local, err := isLocal(ctx, sender)
				if err != nil {
					return "", false, err
				}
				v, _, found, err := rules.FindAddress(ctx, maps, sender, local, delims)
				return v, found, err
			}
			// As Postfix: sessions are not reused, so each sender's mail
			// goes with its own login.
			o.ConnectionReuse = false
		}
		for _, p := range []struct {
			param string
			dst   *relay.SASLSecurity
		}{{"smtp_sasl_security_options", &s.Security}, {"smtp_sasl_tls_security_options", &s.TLSSecurity},
			{"smtp_sasl_tls_verified_security_options", &s.TLSVerifiedSecurity}} {
			if *p.dst, err = relay.ParseSASLSecurity(cfg.List(p.param)); err != nil {
				return paramError(cfg, p.param, err)
			}
		}
		s.MechanismFilter = cfg.List("smtp_sasl_mechanism_filter")
		s.SoftBounce = cfg.Bool("smtp_sasl_auth_soft_bounce")
	}

	generic, err := openMaps(cfg, "smtp_generic_maps", tables)
	if err != nil {
		return err
	}
	if len(generic) > 0 {
		propagate := false
		for _, f := range cfg.List("propagate_unmatched_extensions") {
			propagate = propagate || strings.EqualFold(f, "generic")
		}
		myorigin := cfg.Get("myorigin")
		o.Generic = func(ctx context.Context, addr string) (string, error) {
			local, err := isLocal(ctx, addr)
			if err != nil {
				return "", err
			}
			out, found, err := rules.MapAddress(ctx, generic, addr, local, delims, myorigin, propagate)
			if err != nil || !found {
				return addr, err
			}
			return out[0], nil
		}
	}

	if fb := cfg.Get("smtp_fallback_relay"); fb != "" {
		if err := relay.CheckDestinations(fb); err != nil {
			param := "smtp_fallback_relay"
			if _, set := cfg.Raw(param); !set {
				param = "fallback_relay" // its default, $fallback_relay
			}
			return paramError(cfg, param, err)
		}
		o.FallbackRelay = fb
	}
	return nil
}
