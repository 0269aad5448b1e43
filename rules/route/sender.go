package route

import (
	"context"
	"strings"

	"postgate/rules"
)

// ResolveFrom is Resolve for a recipient of mail from sender (internal
// form, "" for the null sender), as the queue manager asks it: for an
// off-host recipient, sender_dependent_relayhost_maps gives the next hop
// ahead of relayhost, and for the default class
// sender_dependent_default_transport_maps gives the transport ahead of
// default_transport (Postfix's resolve.c). A transport_maps entry still
// overrides both.
func (r *Resolver) ResolveFrom(ctx context.Context, sender, addr string) (Result, error) {
	return r.resolve(ctx, addr, &sender)
}

// senderDependent looks sender up in tables as Postfix's mail_addr_find
// does (the address, then without its recipient_delimiter extension,
// then the local part when the domain is local, then @domain); the null
// sender as "<>". A value of DUNNO, or an empty one, is no
// answer.
func (r *Resolver) senderDependent(ctx context.Context, tables []rules.Table, sender string) (string, bool, error) {
	if len(tables) == 0 {
		return "", false, nil
	}
	key, local := sender, false
	if sender == "" {
		key = "<>"
	} else if i := strings.LastIndexByte(sender, '@'); i >= 0 {
		var err error
		if local, err = r.isLocal(ctx, sender[i+1:]); err != nil {
			return "", false, err
		}
	}
	v, _, found, err := rules.FindAddress(ctx, tables, key, local, r.opts.RecipientDelimiter)
	if err != nil || !found {
		return "", false, err
	}
	v = strings.TrimSpace(v)
	if v == "" || strings.EqualFold(v, "DUNNO") {
		return "", false, nil
	}
	return v, true, nil
}
