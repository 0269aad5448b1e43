package gateway

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"postgate/gateway/config"
	"postgate/rules"
	"postgate/rules/route"
)

// Canonical rewriting, as Postfix's cleanup does it when a message is
// queued (cleanup_map11): the envelope sender goes through
// sender_canonical_maps then canonical_maps, each recipient through
// recipient_canonical_maps then canonical_maps, each one-to-one, before
// virtual aliasing. The *_canonical_classes parameters say which of the
// envelope and header addresses each table rewrites. Header addresses are
// rewritten only in a header rewriting context (headers.go).

// canonClass is a set of address classes of *_canonical_classes.
type canonClass uint8

const (
	envelopeSender canonClass = 1 << iota
	envelopeRecipient
	headerSender
	headerRecipient
)

var canonClassNames = map[string]canonClass{
	"envelope_sender": envelopeSender, "envelope_recipient": envelopeRecipient,
	"header_sender": headerSender, "header_recipient": headerRecipient,
}

// canonMaps is one canonical parameter's tables and the classes they apply to.
type canonMaps struct {
	param   string // for warnings
	tables  []rules.Table
	classes canonClass
}

// canonical is one service's canonical rewriting.
type canonical struct {
	sender, recipient, common canonMaps
	delims, myorigin          string
	propagateExt              bool
	route                     *route.Resolver

	// Header rewriting context (smtpd_check_rewrite).
	localClients []rewriteClient // local_header_rewrite_clients
	remoteDomain string          // remote_header_rewrite_domain

	// Cleanup's header work (cleanupheaders.go).
	dropHeaders      map[string]bool // message_drop_headers, lowercase
	alwaysAddHeaders bool            // always_add_missing_headers
	undisclosed      string          // undisclosed_recipients_header
	longQueueIDs     bool            // enable_long_queue_ids: the Message-Id form
}

// maxCanonRecursion is Postfix's MAX_RECURSION of cleanup_map11.
const maxCanonRecursion = 10

func newCanonical(cfg *config.Config, tables *tableCache, rt *route.Resolver, mynetworks *rules.AddrList, ours []netip.Addr) (*canonical, error) {
	c := &canonical{delims: cfg.Get("recipient_delimiter"), myorigin: cfg.Get("myorigin"), route: rt,
		remoteDomain: cfg.Get("remote_header_rewrite_domain"), alwaysAddHeaders: cfg.Bool("always_add_missing_headers"),
		undisclosed: cfg.Get("undisclosed_recipients_header"), longQueueIDs: cfg.Bool("enable_long_queue_ids")}
	c.dropHeaders = map[string]bool{}
	for _, h := range cfg.List("message_drop_headers") {
		c.dropHeaders[strings.ToLower(h)] = true
	}
	for _, f := range cfg.List("propagate_unmatched_extensions") {
		c.propagateExt = c.propagateExt || strings.EqualFold(f, "canonical")
	}
	for _, m := range []struct {
		dst           *canonMaps
		param, prefix string
	}{{&c.sender, "sender_canonical_maps", "sender_"}, {&c.recipient, "recipient_canonical_maps", "recipient_"}, {&c.common, "canonical_maps", ""}} {
		var err error
		m.dst.param = m.param
		if m.dst.tables, err = openMaps(cfg, m.param, tables); err != nil {
			return nil, err
		}
		classParam := m.prefix + "canonical_classes"
		for _, name := range cfg.List(classParam) {
			cl, ok := canonClassNames[strings.ToLower(name)]
			if !ok {
				return nil, paramError(cfg, classParam, fmt.Errorf("unknown class %q (envelope_sender, envelope_recipient, header_sender, header_recipient)", name))
			}
			m.dst.classes |= cl
		}
	}
	var err error
	if c.localClients, err = newRewriteClients(cfg, "local_header_rewrite_clients", tables, mynetworks, ours); err != nil {
		return nil, err
	}
	return c, nil
}

// rewriteSender rewrites the envelope sender; "" stays "".
func (c *canonical) rewriteSender(ctx context.Context, addr string, warn func(string, ...any)) (string, error) {
	if addr == "" {
		return addr, nil
	}
	return c.rewrite(ctx, addr, envelopeSender, warn, &c.sender, &c.common)
}

// rewriteRecipient rewrites an envelope recipient.
func (c *canonical) rewriteRecipient(ctx context.Context, addr string, warn func(string, ...any)) (string, error) {
	return c.rewrite(ctx, addr, envelopeRecipient, warn, &c.recipient, &c.common)
}

// rewrite applies each of maps that covers class, in order.
func (c *canonical) rewrite(ctx context.Context, addr string, class canonClass, warn func(string, ...any), maps ...*canonMaps) (string, error) {
	for _, m := range maps {
		if len(m.tables) == 0 || m.classes&class == 0 {
			continue
		}
		var err error
		if addr, err = c.map11(ctx, m, addr, warn); err != nil {
			return "", err
		}
	}
	return addr, nil
}

// map11 is cleanup_map11_external: the address is looked up again after
// each rewrite, until it is not found or rewrites to itself; a chain past
// maxCanonRecursion is logged and its last address kept, as Postfix does.
// A lookup failure is an error (the message is not accepted).
func (c *canonical) map11(ctx context.Context, m *canonMaps, addr string, warn func(string, ...any)) (string, error) {
	for range maxCanonRecursion {
		res, err := c.route.Resolve(ctx, addr)
		if err != nil {
			return "", fmt.Errorf("%s map lookup problem for %s: %w", m.param, addr, err)
		}
		out, found, err := rules.MapAddress(ctx, m.tables, addr, res.Class == route.Local, c.delims, c.myorigin, c.propagateExt)
		if err != nil {
			return "", fmt.Errorf("%s map lookup problem for %s: %w", m.param, addr, err)
		}
		if !found {
			return addr, nil
		}
		if len(out) > 1 {
			warn("multi-valued %s entry for %s", m.param, addr)
		}
		self := strings.EqualFold(out[0], addr)
		addr = out[0]
		if self {
			return addr, nil
		}
	}
	warn("unreasonable %s map nesting for %s", m.param, addr)
	return addr, nil
}

// rewriteClient is one element of local_header_rewrite_clients (or of a
// list in its grammar); client is the client's address (XCLIENT's, if it
// gave one), peer the connection's own.
type rewriteClient func(ctx context.Context, client, peer netip.Addr) (bool, error)

// newRewriteClients compiles param, a list in local_header_rewrite_clients'
// grammar.
func newRewriteClients(cfg *config.Config, param string, tables *tableCache, mynetworks *rules.AddrList, ours []netip.Addr) ([]rewriteClient, error) {
	words := cfg.List(param)
	var out []rewriteClient
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch lw := strings.ToLower(w); {
		case lw == "check_address_map" || strings.Contains(w, ":"):
			if lw == "check_address_map" {
				if i+1 >= len(words) {
					return nil, paramError(cfg, param, fmt.Errorf("check_address_map needs a type:table argument"))
				}
				i++
				w = words[i]
			}
			t, err := tables.open(w)
			if err != nil {
				return nil, paramError(cfg, param, err)
			}
			out = append(out, func(ctx context.Context, client, _ netip.Addr) (bool, error) {
				_, found, err := t.Lookup(ctx, client.String())
				return found, err
			})
		case lw == "permit_inet_interfaces":
			out = append(out, func(_ context.Context, _, peer netip.Addr) (bool, error) {
				return slices.Contains(ours, peer.Unmap()), nil // the socket's, as Postfix's
			})
		case lw == "permit_mynetworks":
			out = append(out, func(ctx context.Context, client, _ netip.Addr) (bool, error) {
				return mynetworks.Match(ctx, client)
			})
		case lw == "permit_sasl_authenticated", lw == "permit_tls_clientcerts", lw == "permit_tls_all_clientcerts":
			// No AUTH or client certificates yet: these never match.
		default:
			return nil, paramError(cfg, param, fmt.Errorf("invalid request: %s", w))
		}
	}
	return out, nil
}

// rewriteContext is smtpd_check_rewrite: whether the client's headers are
// rewritten, and the domain an unqualified header address gets
// ($myorigin for a local client, remote_header_rewrite_domain for
// others; none when that is empty: headers of remote clients are left
// alone).
func (c *canonical) rewriteContext(ctx context.Context, client, peer netip.Addr) (domain string, err error) {
	local, err := matchClients(ctx, c.localClients, client, peer)
	switch {
	case err != nil:
		return "", err
	case local:
		return c.myorigin, nil
	}
	return c.remoteDomain, nil
}

// matchClients says whether an element of list matches the client.
func matchClients(ctx context.Context, list []rewriteClient, client, peer netip.Addr) (bool, error) {
	for _, match := range list {
		if ok, err := match(ctx, client, peer); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}
