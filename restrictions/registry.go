package restrictions

import "postgate/restrictions/spf"

// argKind says whether a restriction takes the next list item as argument.
type argKind int

const (
	noArg     argKind = iota
	tableArg          // check_*_access type:table
	wordArg           // reject_rbl_client domain[=filter] ...
	numberArg         // sleep seconds
	serverArg         // check_policy_service transport:server
)

// runFunc evaluates one compiled restriction.
type runFunc func(e *eval) status

// builder makes the step of a restriction; arg is its argument and tr the
// opened table for tableArg restrictions.
type builder func(c *compiler, name, arg string, tr *tableRef) runFunc

// spec is a registry entry. A nil build means known to Postfix but not
// implemented yet: it compiles, is listed by NotImplemented, and answers
// 451 4.3.5 when reached.
type spec struct {
	arg   argKind
	build builder
}

// registry holds every smtpd restriction name (postfix-semantics §2.6),
// lowercased. warn_if_reject is handled by the compiler itself.
var registry = map[string]spec{
	// Generic.
	"permit":                   {noArg, buildPermit},
	"reject":                   {noArg, buildReject},
	"defer":                    {noArg, buildDefer},
	"defer_if_permit":          {noArg, buildDeferIfPermit},
	"defer_if_reject":          {noArg, buildDeferIfReject},
	"sleep":                    {numberArg, buildSleep},
	"reject_unauth_pipelining": {noArg, buildRejectUnauthPipelining},
	"reject_plaintext_session": {noArg, buildRejectPlaintextSession},
	"check_policy_service":     {serverArg, buildCheckPolicyService},

	// Client.
	"permit_mynetworks":                       {noArg, buildPermitMynetworks},
	"permit_sasl_authenticated":               {noArg, buildPermitSASL},
	"permit_inet_interfaces":                  {noArg, buildPermitInetInterfaces},
	"permit_tls_clientcerts":                  {noArg, buildPermitTLSClientcerts(false)},
	"permit_tls_all_clientcerts":              {noArg, buildPermitTLSClientcerts(true)},
	"check_client_access":                     {tableArg, buildClientAccess},
	"check_reverse_client_hostname_access":    {tableArg, buildReverseClientAccess},
	"check_client_a_access":                   {tableArg, buildServerAccess("client", serverA)},
	"check_client_mx_access":                  {tableArg, buildServerAccess("client", serverMX)},
	"check_client_ns_access":                  {tableArg, buildServerAccess("client", serverNS)},
	"check_reverse_client_hostname_a_access":  {tableArg, buildServerAccess("reverse_client", serverA)},
	"check_reverse_client_hostname_mx_access": {tableArg, buildServerAccess("reverse_client", serverMX)},
	"check_reverse_client_hostname_ns_access": {tableArg, buildServerAccess("reverse_client", serverNS)},
	"check_ccert_access":                      {tableArg, buildCheckCcertAccess},
	"check_sasl_access":                       {tableArg, nil},
	"reject_unknown_client_hostname":          {noArg, buildRejectUnknownClient},
	"reject_unknown_client":                   {noArg, buildRejectUnknownClient},
	"reject_unknown_reverse_client_hostname":  {noArg, buildRejectUnknownReverseClient},
	"reject_rbl_client":                       {wordArg, buildRejectRBLClient},
	"reject_rbl":                              {wordArg, buildRejectRBLClient},
	"permit_dnswl_client":                     {wordArg, buildPermitDNSWLClient},
	"reject_rhsbl_client":                     {wordArg, buildRejectRHSBLClient},
	"reject_rhsbl_reverse_client":             {wordArg, buildRejectRHSBLReverseClient},
	"permit_rhswl_client":                     {wordArg, buildPermitRHSWLClient},
	"reject_maps_rbl":                         {noArg, nil},

	// HELO.
	"check_helo_access":             {tableArg, buildHeloAccess},
	"check_helo_a_access":           {tableArg, buildServerAccess("helo", serverA)},
	"check_helo_mx_access":          {tableArg, buildServerAccess("helo", serverMX)},
	"check_helo_ns_access":          {tableArg, buildServerAccess("helo", serverNS)},
	"reject_invalid_helo_hostname":  {noArg, buildRejectInvalidHelo},
	"reject_invalid_hostname":       {noArg, buildRejectInvalidHelo},
	"reject_non_fqdn_helo_hostname": {noArg, buildRejectNonFQDNHelo},
	"reject_non_fqdn_hostname":      {noArg, buildRejectNonFQDNHelo},
	"reject_unknown_helo_hostname":  {noArg, buildRejectUnknownHelo},
	"reject_unknown_hostname":       {noArg, buildRejectUnknownHelo},
	"reject_rhsbl_helo":             {wordArg, buildRejectRHSBLHelo},
	"permit_naked_ip_address":       {noArg, buildRemoved("permit_mynetworks\" or \"permit_sasl_authenticated")},

	// Sender.
	"check_sender_access":                          {tableArg, buildSenderAccess},
	"check_sender_a_access":                        {tableArg, buildServerAccess("sender", serverA)},
	"check_sender_mx_access":                       {tableArg, buildServerAccess("sender", serverMX)},
	"check_sender_ns_access":                       {tableArg, buildServerAccess("sender", serverNS)},
	"reject_non_fqdn_sender":                       {noArg, buildRejectNonFQDNSender},
	"reject_unknown_sender_domain":                 {noArg, buildRejectUnknownSenderDomain},
	"reject_unknown_address":                       {noArg, nil},
	"reject_unverified_sender":                     {noArg, buildRejectUnverified(true)},
	"reject_unlisted_sender":                       {noArg, buildRejectUnlistedSender},
	"reject_sender_login_mismatch":                 {noArg, buildSenderLogin(loginAuthenticated | loginUnauthenticated)},
	"reject_authenticated_sender_login_mismatch":   {noArg, buildSenderLogin(loginAuthenticated)},
	"reject_known_sender_login_mismatch":           {noArg, buildSenderLogin(loginAuthenticated | loginUnauthenticated | loginKnownOnly)},
	"reject_unauthenticated_sender_login_mismatch": {noArg, buildSenderLogin(loginUnauthenticated)},
	"reject_rhsbl_sender":                          {wordArg, buildRejectRHSBLSender},
	"check_sender_rate":                            {tableArg, buildCheckSenderRate}, // postgate's

	// Recipient.
	"check_recipient_access":          {tableArg, buildRecipientAccess},
	"check_recipient_a_access":        {tableArg, buildServerAccess("recipient", serverA)},
	"check_recipient_mx_access":       {tableArg, buildServerAccess("recipient", serverMX)},
	"check_recipient_ns_access":       {tableArg, buildServerAccess("recipient", serverNS)},
	"permit_auth_destination":         {noArg, buildPermitAuthDestination},
	"reject_unauth_destination":       {noArg, buildRejectUnauthDestination},
	"defer_unauth_destination":        {noArg, buildDeferUnauthDestination},
	"permit_mx_backup":                {noArg, nil},
	"reject_non_fqdn_recipient":       {noArg, buildRejectNonFQDNRecipient},
	"reject_unknown_recipient_domain": {noArg, buildRejectUnknownRecipientDomain},
	"reject_unlisted_recipient":       {noArg, buildRejectUnlistedRecipient},
	"check_recipient_maps":            {noArg, buildRejectUnlistedRecipient},
	"reject_unverified_recipient":     {noArg, buildRejectUnverified(false)},
	"reject_multi_recipient_bounce":   {noArg, buildRejectMultiRecipientBounce},
	"reject_rhsbl_recipient":          {wordArg, buildRejectRHSBLRecipient},
	"check_greylist":                  {noArg, buildCheckGreylist},               // postgate's
	"check_recipient_domain_rate":     {tableArg, buildCheckRecipientDomainRate}, // postgate's
	"check_relay_domains":             {noArg, buildRemoved("reject_unauth_destination")},

	// SPF (postgate's own names; restrictions/spf.go).
	"reject_spf_fail":     {noArg, buildSPFRefusal(spf.Fail, 550, "5.7.23", "rejected")},
	"defer_spf_temperror": {noArg, buildSPFRefusal(spf.TempError, 451, "4.7.24", "deferred")},
	"permit_spf_pass":     {noArg, buildPermitSPFPass},
	"warn_spf_softfail":   {noArg, buildWarnSPFSoftfail},

	// ETRN.
	"check_etrn_access": {tableArg, buildEtrnAccess},
}

// removedIn39 lists restrictions Postfix 3.9 removed: they compile with a
// warning and answer 451 4.3.5 at run time, as in Postfix.
var removedIn39 = map[string]string{
	"permit_naked_ip_address": "permit_mynetworks\" or \"permit_sasl_authenticated",
	"check_relay_domains":     "reject_unauth_destination",
}
