// Package relay is postgate's outbound SMTP transport: it delivers one
// message to one next hop as Postfix's smtp(8) client does, and reports per
// recipient sent, deferred or bounced, with the reason in Postfix's words.
//
// # Next hops
//
// Message.Nexthop takes Postfix's destination forms: "[host]:port" and
// "[host]" (no MX lookup; host may be an IP address), "host:port" and
// "host" (MX lookup, port 25 by default), and a list of these separated by
// commas or white space (Postfix 3.5+), tried in order. MX hosts are tried in
// preference order, equal preferences in random order
// (smtp_randomize_addresses), at most Options.MXAddressLimit addresses and
// Options.MXSessionLimit completed handshakes per delivery
// (smtp_mx_address_limit 5, smtp_mx_session_limit 2). A soft failure at one
// server (connection refused, 4xx greeting or reply, lost connection) moves
// the recipients it concerns to the next server; the last server's reason is
// the one reported. A 5xx greeting is treated as 4xx (smtp_skip_5xx_greeting
// = yes). Postfix's self-detection by local interface address is not done;
// when Options.MyHostname is set, a server that answers EHLO with it is a
// mail loop (5.4.6, or 4.4.6 when it is not a best MX host), as in Postfix.
//
// # Protocol
//
// The client is written here, on bufio, rather than on go-smtp's client,
// which cannot pipeline, sends EHLO again after every RSET, falls back to
// HELO only after 500/502 and passes bare CR into the data. Like Postfix it
// sends EHLO and
// falls back to HELO after any non-2xx reply but 421; uses PIPELINING when
// offered (MAIL, RCPT and DATA go in one flight, at most 4 KiB unanswered);
// adds SIZE, BODY=8BITMIME, SMTPUTF8, ENVID/RET and NOTIFY/ORCPT only when
// the server offers the extension; bounces before MAIL when the message is
// larger than the server's SIZE; and reads multi-line and malformed replies
// as smtp_chat_resp does (enhanced status code only when its class matches
// the reply code, else X.0.0; at most 2048 bytes of reply text kept). Each
// stage has its own time limit (smtp_*_timeout) and the whole conversation
// stops when the context ends.
//
// # Content
//
// The stored message is sent in canonical form: every CRLF, bare LF and bare
// CR ends a line with CRLF, a line starting with '.' gets another '.', a
// missing final line end is added, and exactly one "." line ends the data,
// so no end-of-data sequence can be smuggled onto the wire. Lines longer
// than Options.LineLengthLimit (smtp_line_length_limit, 998) are broken with
// CRLF SPACE, as Postfix does. Content that is an io.Seeker is rewound when
// the message must be sent again to the next server.
//
// # Connection reuse
//
// With Options.ConnectionReuse a session that ended its transaction cleanly
// is kept under the next hop's name, as in Postfix's connection cache, for
// Options.MaxIdle (smtp_connection_cache_time_limit, 2 s), at
// most Options.ReuseTimeLimit after it was opened
// (smtp_connection_reuse_time_limit, 300 s) and Options.MaxReuse reuses
// (smtp_connection_reuse_count_limit: a limit of N allows N+1 messages). A
// cached session is checked with an RSET probe before use; one that fails
// the probe, loses the connection before the MAIL reply or answers MAIL
// with 421 is dropped and the delivery goes on with another session, unseen
// in the results. Postfix waits for the probe's reply before MAIL; relay
// sends RSET in the same flight as MAIL, RCPT and DATA when the server
// offers PIPELINING (RSET may open a group, RFC 2920), which saves a round
// trip per message. A failed probe's flight never gets the content: the
// connection is closed.
//
// SMTPUTF8 is required of the server when the client asked for it and the
// envelope has a non-ASCII address; Postfix also looks at the headers,
// which relay does not read, so such a message goes without SMTPUTF8.
//
// # Login, fallback relay, generic mapping
//
// With Options.SASL a server that offers AUTH is logged in to when a
// login exists for it (sasl.go); Options.FallbackRelay is tried after
// the next hop (smtp_fallback_relay); Options.Generic rewrites the
// envelope and the address headers on the way out (generic.go).
//
// # Texts (Postfix 3.x source file in parentheses)
//
//	connect to H[IP]:PORT: Connection refused                     4.4.1 (smtp_connect.c)
//	host H[IP] refused to talk to me: REPLY                       reply's (smtp_proto.c, greeting/EHLO/HELO)
//	host H[IP] said: REPLY (in reply to RCPT TO command)          reply's (smtp_proto.c; also MAIL FROM, DATA, end of DATA)
//	lost connection with H[IP] while sending RCPT TO              4.4.2 (smtp_trouble.c, stages from smtp_proto.c)
//	conversation with H[IP] timed out while sending message body  4.4.2 (smtp_trouble.c)
//	local data error while talking to H[IP]                       4.3.0 (smtp_trouble.c)
//	message size N exceeds size limit M of server H[IP]           5.3.4 (smtp_proto.c)
//	SMTPUTF8 is required, but was not offered by host H[IP]       5.6.7 (smtp_proto.c)
//	mail for NEXTHOP loops back to myself                         5.4.6 / 4.4.6 (smtp_proto.c)
//	Domain D does not accept mail (nullMX)                        5.1.0 (dns_lookup.c, smtp_addr.c)
//	Host or domain name not found. Name service error for name=N type=MX: Host not found             5.4.4
//	Host or domain name not found. Name service error for name=N type=MX: Host not found, try again  4.4.3 (dns_lookup.c)
//
//	SASL authentication failed; server H[IP] said: REPLY           reply's, 5xx as 4xx with SASLOptions.SoftBounce (smtp_sasl_glue.c)
//	SASL authentication failed; cannot authenticate to server H[IP]: no mechanism available  4.7.0 (smtp_sasl_glue.c, Cyrus's words)
//	SASL authentication failed: server H[IP] offered no compatible authentication mechanisms for this type of connection security  4.7.0 (smtp_sasl_proto.c)
//	local data error while talking to H[IP]                       4.3.0 (a smtp_sasl_password_maps lookup error)
//	(any hard failure to find a fallback relay)                   4.3.5, "warning: smtp_fallback_relay configuration problem" (smtp_connect.c)
//
// postgate's own texts, where Postfix has no equivalent:
//
//	smtp_generic_maps map lookup problem for ADDR                 4.3.0 (Postfix's smtp exits fatally)
//	conversation with H[IP] interrupted while sending RCPT TO     4.4.2 (the context was cancelled)
//	delivery to NEXTHOP interrupted / timed out                   4.4.2 (the context ended before any attempt)
//	bad network port in destination "[h]:x"                       4.3.5 (Postfix's smtp exits fatally)
//
// For an NXDOMAIN answer to the MX query Postfix goes on to an A/AAAA query
// of the same name and reports that one (type=A or type=AAAA); the name
// does not exist, so relay skips the second query and names type=MX. A
// failed address lookup of an MX host is reported as type=A (Postfix names
// the last type it asked: AAAA with inet_protocols = all). A
// reply whose status class is not 4 or 5 where an error was expected is
// reported as "Protocol error: host H[IP] said: ..." with 5.5.0, as Postfix
// does.
package relay
