package restrictions

// RelayGuardError is Postfix's fatal startup message when neither
// smtpd_relay_restrictions nor smtpd_recipient_restrictions can refuse
// relaying.
const RelayGuardError = "in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify at least one working instance of: reject_unauth_destination, defer_unauth_destination, reject, defer, defer_if_permit or check_relay_domains"

// relayRequired are the restrictions that make a relay list safe.
var relayRequired = map[string]bool{
	"reject_unauth_destination": true,
	"defer_unauth_destination":  true,
	"reject":                    true,
	"defer":                     true,
	"defer_if_permit":           true,
	"check_relay_domains":       true,
}

// RelayGuarded reports whether the relay or recipient list contains (itself
// or through a restriction class, and not after a permit) a restriction that
// can refuse relaying (§2.3). The gateway refuses to start otherwise, with
// RelayGuardError.
func (l *Lists) RelayGuarded() bool {
	return l.hasRequired(l.lists[idxRecipient], map[*list]bool{}) ||
		l.hasRequired(l.lists[idxRelay], map[*list]bool{})
}

// hasRequired is Postfix's has_required: a step after warn_if_reject does
// not count, and permit ends the search.
func (l *Lists) hasRequired(lst *list, seen map[*list]bool) bool {
	if lst == nil || seen[lst] {
		return false
	}
	seen[lst] = true
	for i := 0; i < len(lst.steps); i++ {
		s := lst.steps[i]
		if s.warnIfReject && i+1 < len(lst.steps) {
			i++
			continue
		}
		if s.name == "permit" {
			return false
		}
		if relayRequired[s.name] {
			return true
		}
		if s.class != "" && l.hasRequired(l.classes[s.class], seen) {
			return true
		}
	}
	return false
}
