package restrictions

import (
	"fmt"
	"strings"
)

// permitLog is smtpd_log_access_permit_actions: which permit actions are
// logged with a "permit:" line.
type permitLog struct {
	names  map[string]bool
	tables []*tableRef
}

func (c *compiler) permitLog(items []string) (permitLog, error) {
	pl := permitLog{names: map[string]bool{}}
	for _, it := range items {
		if isBareTable(it) {
			tr, err := c.table(it)
			if err != nil {
				return pl, fmt.Errorf("smtpd_log_access_permit_actions: %w", err)
			}
			pl.tables = append(pl.tables, tr)
			continue
		}
		pl.names[strings.ToLower(it)] = true
	}
	return pl, nil
}

func (e *eval) permitLogged(action string) bool {
	pl := &e.l.permitLog
	if pl.names[strings.ToLower(action)] {
		return true
	}
	for _, tr := range pl.tables {
		_, found, err := e.find(tr, action, false)
		if err != nil {
			e.warning("smtpd_log_access_permit_actions: %s: %v", tr.spec, err)
			continue
		}
		if found {
			return true
		}
	}
	return false
}

// aclPermit is Postfix's smtpd_acl_permit: OK, logged when the action is
// in smtpd_log_access_permit_actions and no defer_if_permit overrules it.
func (e *eval) aclPermit(action, class, name, extra string) status {
	if !e.txn.dip.active && e.permitLogged(action) {
		text := fmt.Sprintf("action=%s for %s=%s", action, class, name)
		if extra != "" {
			text += " " + extra
		}
		e.logAction("permit", text)
	}
	return permit
}
