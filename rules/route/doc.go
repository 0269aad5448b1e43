// Package route is Postfix's trivial-rewrite address resolution as one
// component: it canonicalizes a recipient address, finds its address class
// (local, virtual alias, virtual mailbox, relay, default) and picks the
// transport and next hop, from the class's *_transport parameter,
// relayhost and transport_maps. The SMTP server's restrictions, the queue
// manager and the transports all resolve through it, so they agree on
// where mail goes.
//
// A table that fails is an error, never "not found": the caller answers
// 451 (smtpd) or defers the recipient (queue manager).
package route
