package config

// clientParams are the time limits of the SMTP client and the lmtp_ twins
// of the SMTP client's parameters (gateway/clientopts.go): an lmtp
// transport reads lmtp_*, an smtp one smtp_*, as Postfix's lmtp and smtp
// do. Parameters that no test through the binary shows yet are typed,
// read all the same, and reported not implemented. smtp_quit_timeout
// and lmtp_quit_timeout stay unimplemented: postgate does not wait for the
// reply to QUIT.
func clientParams() []param {
	ps := []param{
		str("lmtp_lhlo_name", "$myhostname"),
		later(str("lmtp_bind_address", "")),
		str("lmtp_tcp_port", "24"),
		later(integer("lmtp_line_length_limit", "998", 0)),
		{name: "lmtp_tls_security_level", kind: kindString, impl: true, canon: lower,
			check: oneOf("", "none", "may", "encrypt", "verify", "secure", "dane", "dane-only", "fingerprint")},
		boolean("lmtp_use_tls", "no"),
		boolean("lmtp_enforce_tls", "no"),
		later(list("lmtp_tls_policy_maps", "")),
		later(str("lmtp_tls_cert_file", "")),
		later(str("lmtp_tls_key_file", "$lmtp_tls_cert_file")),
		later(list("lmtp_tls_chain_files", "")),
		str("lmtp_tls_CAfile", ""),
		str("lmtp_tls_CApath", ""),
		{name: "lmtp_tls_loglevel", kind: kindInt, def: "0", impl: true, max: 4},
		later(str("lmtp_tls_protocols", ">=TLSv1")),
		str("lmtp_tls_mandatory_protocols", ">=TLSv1"),
		list("lmtp_tls_verify_cert_match", "hostname"),
		list("lmtp_tls_secure_cert_match", "nexthop"),
	}
	// Postfix's defaults; lmtp_connect_timeout's 0 is the system's connect
	// timeout, and lmtp_lhlo_timeout is smtp_helo_timeout's twin.
	for _, t := range []struct{ smtp, lmtp, def string }{
		{"smtp_connect_timeout", "lmtp_connect_timeout", "30s"},
		{"smtp_helo_timeout", "lmtp_lhlo_timeout", "300s"},
		{"smtp_mail_timeout", "lmtp_mail_timeout", "300s"},
		{"smtp_rcpt_timeout", "lmtp_rcpt_timeout", "300s"},
		{"smtp_data_init_timeout", "lmtp_data_init_timeout", "120s"},
		{"smtp_data_xfer_timeout", "lmtp_data_xfer_timeout", "180s"},
		{"smtp_data_done_timeout", "lmtp_data_done_timeout", "600s"},
		{"smtp_rset_timeout", "lmtp_rset_timeout", "20s"},
	} {
		smtp, lmtp := seconds(t.smtp, t.def, 's', 1), seconds(t.lmtp, t.def, 's', 1)
		switch t.lmtp {
		case "lmtp_connect_timeout":
			smtp.min, lmtp.min, lmtp.def = 0, 0, "0s"
		case "lmtp_rset_timeout":
			// Read, but no test through the binary shows them yet.
			smtp, lmtp = later(smtp), later(lmtp)
		}
		ps = append(ps, smtp, lmtp)
	}
	return ps
}
