package restrictions

import (
	"strings"
	"testing"
)

// section26 lists the restriction names of postfix-semantics §2.6 (and
// their old aliases); every one must be known to the compiler.
var section26 = strings.Fields(`
permit reject defer defer_if_permit defer_if_reject warn_if_reject sleep
reject_unauth_pipelining reject_plaintext_session check_policy_service
permit_mynetworks permit_inet_interfaces permit_sasl_authenticated
permit_tls_clientcerts permit_tls_all_clientcerts check_client_access
check_reverse_client_hostname_access check_client_a_access check_client_mx_access
check_client_ns_access check_reverse_client_hostname_a_access
check_reverse_client_hostname_mx_access check_reverse_client_hostname_ns_access
check_ccert_access check_sasl_access reject_unknown_client_hostname reject_unknown_client
reject_unknown_reverse_client_hostname reject_rbl_client reject_rbl permit_dnswl_client
reject_rhsbl_client reject_rhsbl_reverse_client permit_rhswl_client
check_helo_access check_helo_a_access check_helo_mx_access check_helo_ns_access
reject_invalid_helo_hostname reject_invalid_hostname reject_non_fqdn_helo_hostname
reject_non_fqdn_hostname reject_unknown_helo_hostname reject_unknown_hostname reject_rhsbl_helo
check_sender_access check_sender_a_access check_sender_mx_access check_sender_ns_access
reject_non_fqdn_sender reject_unknown_sender_domain reject_unverified_sender
reject_unlisted_sender reject_sender_login_mismatch
reject_authenticated_sender_login_mismatch reject_unauthenticated_sender_login_mismatch
reject_known_sender_login_mismatch reject_rhsbl_sender
check_recipient_access permit_auth_destination reject_unauth_destination
defer_unauth_destination permit_mx_backup reject_non_fqdn_recipient
reject_unknown_recipient_domain reject_unlisted_recipient check_recipient_maps
reject_unverified_recipient reject_multi_recipient_bounce reject_rhsbl_recipient
check_recipient_a_access check_recipient_mx_access check_recipient_ns_access
check_etrn_access
`)

func TestRegistryKnowsSection26(t *testing.T) {
	for _, name := range section26 {
		if _, ok := registry[name]; !ok && name != "warn_if_reject" {
			t.Errorf("restriction %q is not in the registry", name)
		}
	}
	for name, sp := range registry {
		if name != strings.ToLower(name) {
			t.Errorf("registry name %q is not lowercase", name)
		}
		if _, removed := removedIn39[name]; removed && sp.build == nil {
			t.Errorf("removed restriction %q has no builder", name)
		}
	}
}

// Every registered name compiles, with a suitable argument.
func TestRegistryNamesCompile(t *testing.T) {
	args := map[argKind]string{tableArg: "static:DUNNO", wordArg: "zen.example.org", numberArg: "0", serverArg: "inet:127.0.0.1:9998"}
	for name, sp := range registry {
		list := name
		if sp.arg != noArg {
			list += " " + args[sp.arg]
		}
		l, err := Compile(map[string]string{"smtpd_recipient_restrictions": list}, Options{})
		if err != nil {
			t.Errorf("%s: %v", list, err)
			continue
		}
		if got := len(l.NotImplemented()) > 0; got != (sp.build == nil) {
			t.Errorf("%s: NotImplemented() = %q", name, l.NotImplemented())
		}
	}
}
