package restrictions

import (
	"context"
	"net"
	"strings"
	"testing"

	"postgate/policyd"
	"postgate/policyd/policydtest"
	"postgate/rules"
)

// attrs is a policy request as a map.
func attrs(req []string) map[string]string {
	m := map[string]string{}
	for _, a := range req {
		k, v, _ := strings.Cut(a, "=")
		m[k] = v
	}
	return m
}

// lastRequest is the last request srv received, as a map.
func lastRequest(srv *policydtest.Server) map[string]string {
	reqs := srv.Requests()
	return attrs(reqs[len(reqs)-1])
}

// A closed port: every request fails at connect.
func downServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestPolicyActions(t *testing.T) {
	srv := policydtest.Start(t, "tcp", "", func(r []string) string {
		req := attrs(r)
		if req["recipient"] >= "e" {
			return "action=DUNNO\n\n"
		}
		return "action=" + map[string]string{
			"a@x.test": "550 5.7.1 Go away",
			"b@x.test": "defer_if_permit Service temporarily unavailable",
			"c@x.test": "OK",
			"d@x.test": "PREPEND X-Policy: seen",
		}[req["recipient"]] + "\n\n"
	})
	down := downServer(t)
	l := mustCompile(t, map[string]string{
		"smtpd_recipient_restrictions": "check_policy_service " + srv.Spec() + ", check_recipient_access inline:{ {e@x.test = failing} }, " +
			"check_policy_service { inet:" + down + ", default_action=DUNNO }, permit",
	}, Options{DelayReject: true, Classes: map[string]string{"failing": "check_policy_service { inet:" + down + ", default_action=failing }"},
		Policy: policyd.Options{RetryDelay: 1}})
	for _, tc := range []struct {
		rcpt string
		want rules.Reply
	}{
		{"a@x.test", rules.Reply{Code: 550, DSN: "5.7.1", Text: "<a@x.test>: Recipient address rejected: Go away"}},
		{"b@x.test", rules.Reply{Code: 450, DSN: "4.7.1", Text: "<b@x.test>: Recipient address rejected: Service temporarily unavailable"}},
		{"c@x.test", rules.Reply{}},
		// PREPEND; then the service that is down answers its
		// default_action, DUNNO.
		{"d@x.test", rules.Reply{}},
		// A default_action that calls a failing service again gets the
		// built-in default.
		{"e@x.test", rules.Reply{Code: 451, DSN: "4.3.5", Text: "<e@x.test>: Recipient address rejected: Server configuration problem"}},
	} {
		v := l.Check(context.Background(), Rcpt, &Request{Sender: "s@y.test", Recipient: tc.rcpt}, &Txn{})
		if v.Reply != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.rcpt, v.Reply, tc.want)
		}
		if tc.rcpt == "d@x.test" && (len(v.Effects) != 1 || v.Effects[0].Arg != "X-Policy: seen") {
			t.Errorf("PREPEND: %+v", v.Effects)
		}
		if tc.rcpt == "e@x.test" {
			var warnings []string
			for _, e := range v.Log {
				if e.Kind == LogWarning {
					warnings = append(warnings, e.Text)
				}
			}
			// Two attempts of the service, and two of its default action.
			want := "connect to " + down + ": Connection refused"
			if len(warnings) != 8 || warnings[0] != want {
				t.Errorf("warnings %q", warnings)
			}
		}
	}
}

func TestPolicyRequestAttributes(t *testing.T) {
	srv := policydtest.Start(t, "tcp", "", policydtest.Action("DUNNO"))
	l := mustCompile(t, map[string]string{
		"smtpd_client_restrictions":      "check_policy_service " + srv.Spec(),
		"smtpd_data_restrictions":        "check_policy_service " + srv.Spec(),
		"smtpd_end_of_data_restrictions": "check_policy_service " + srv.Spec(),
	}, Options{DelayReject: true})
	req := &Request{Proto: "ESMTP", Helo: "h.test", Sender: "s@y.test", Recipient: "r@x.test", Instance: "a.b.c.0", Size: 99, Stress: true}
	l.Check(context.Background(), Rcpt, req, &Txn{})
	got := lastRequest(srv)
	for k, want := range map[string]string{"protocol_state": "RCPT", "recipient": "r@x.test", "recipient_count": "0",
		"instance": "a.b.c.0", "size": "99", "stress": "yes", "client_name": "unknown", "client_port": "unknown", "helo_name": "h.test"} {
		if got[k] != want {
			t.Errorf("RCPT %s=%q, want %q", k, got[k], want)
		}
	}
	req.ProtocolState = "VRFY"
	l.Check(context.Background(), Rcpt, req, &Txn{})
	if got := lastRequest(srv); got["protocol_state"] != "VRFY" {
		t.Errorf("VRFY: protocol_state=%q", got["protocol_state"])
	}
	req.ProtocolState, req.RecipientCount = "", 2
	l.Check(context.Background(), Data, req, &Txn{})
	if got := lastRequest(srv); got["protocol_state"] != "DATA" || got["recipient"] != "" || got["recipient_count"] != "2" {
		t.Errorf("DATA with two recipients: %v", got)
	}
	req.RecipientCount = 1
	l.Check(context.Background(), EndOfData, req, &Txn{})
	if got := lastRequest(srv); got["protocol_state"] != "END-OF-MESSAGE" || got["recipient"] != "r@x.test" || got["recipient_count"] != "1" {
		t.Errorf("END-OF-MESSAGE with one recipient: %v", got)
	}
}

func TestPolicyServiceCompileErrors(t *testing.T) {
	_, err := Compile(map[string]string{"smtpd_recipient_restrictions": "check_policy_service { inet:1:2, colour=red }"}, Options{})
	if err == nil || !strings.Contains(err.Error(), `unknown option: "colour = red"`) {
		t.Errorf("%v", err)
	}
}

// The TLS attributes of a policy request, as Postfix fills them: empty and
// 0 in clear text; the certificate names (xtext) only when it is trusted,
// its fingerprints whenever there is one.
func TestPolicyRequestTLS(t *testing.T) {
	srv := policydtest.Start(t, "tcp", "", policydtest.Action("DUNNO"))
	l := mustCompile(t, map[string]string{"smtpd_client_restrictions": "check_policy_service " + srv.Spec()}, Options{DelayReject: true})
	req := &Request{Proto: "ESMTP"}
	l.Check(context.Background(), Rcpt, req, &Txn{})
	if got := lastRequest(srv); got["encryption_protocol"] != "" || got["encryption_keysize"] != "0" || got["ccert_fingerprint"] != "" {
		t.Errorf("clear text: %v", got)
	}
	req.TLS = &TLS{Protocol: "TLSv1.3", Cipher: "TLS_AES_256_GCM_SHA384", Bits: 256, CertPresent: true,
		PeerCN: "client one", IssuerCN: "CA=x", CertFingerprint: "AA:BB", PkeyFingerprint: "CC:DD"}
	l.Check(context.Background(), Rcpt, req, &Txn{})
	want := map[string]string{"encryption_protocol": "TLSv1.3", "encryption_cipher": "TLS_AES_256_GCM_SHA384", "encryption_keysize": "256",
		"ccert_fingerprint": "AA:BB", "ccert_pubkey_fingerprint": "CC:DD", "ccert_subject": "", "ccert_issuer": ""}
	got := lastRequest(srv)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("untrusted certificate: %s=%q, want %q", k, got[k], v)
		}
	}
	req.TLS.CertTrusted = true
	l.Check(context.Background(), Rcpt, req, &Txn{})
	if got := lastRequest(srv); got["ccert_subject"] != "client+20one" || got["ccert_issuer"] != "CA+3Dx" {
		t.Errorf("trusted certificate: ccert_subject=%q ccert_issuer=%q", got["ccert_subject"], got["ccert_issuer"])
	}
}
