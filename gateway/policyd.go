package gateway

import (
	"maps"

	"postgate/gateway/config"
	"postgate/restrictions"
)

// PolicydClass is the restriction list postgate policyd checks requests
// with. It is compiled as a restriction class under the parameter's name,
// so a compile error names the parameter.
const PolicydClass = "postgate_policyd_restrictions"

// Policyd is the runtime of `postgate policyd`: postgate_policyd_restrictions
// compiled with what postgate's own smtpd compiles its lists with (main.cf:
// the same tables, DNS resolver, state store, reply codes and classes),
// and the mail log its lines go to, as program "policyd".
type Policyd struct {
	Lists  *restrictions.Lists
	log    *MailLog
	tables *tableCache
}

// NewPolicyd builds the policy server's runtime from main.cf and opens the
// mail log.
func NewPolicyd(cfg *config.Config, opts Options) (*Policyd, error) {
	log, err := openMailLog(cfg, opts)
	if err != nil {
		return nil, err
	}
	p := &Policyd{log: log, tables: newTableCache(func(msg string) { log.Logf("policyd", "warning: %s", msg) }, tableCacheOptions(cfg))}
	dns, err := newResolver(cfg)
	if err == nil {
		p.Lists, err = policydLists(cfg, p.tables, dns)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// policydLists compiles postgate_policyd_restrictions with the options of
// an smtpd service that has main.cf's settings alone (no master.cf -o
// overrides; its listener is never opened). Each request stands alone:
// delayed evaluation and recipient validation are the calling Postfix's.
func policydLists(cfg *config.Config, tables *tableCache, dns dnsResolver) (*restrictions.Lists, error) {
	svc := config.Service{Name: "127.0.0.1:0", Type: "inet", Command: "smtpd"}
	s, _, err := buildService(cfg, cfg.Stressed(svc), svc, tables, dns)
	if err != nil {
		return nil, err
	}
	o := s.restrictionOpts
	o.Classes = maps.Clone(o.Classes)
	if o.Classes == nil {
		o.Classes = map[string]string{}
	}
	o.Classes[PolicydClass] = cfg.Get(PolicydClass)
	o.DelayReject, o.RejectUnlistedRecipient, o.RejectUnlistedSender = false, false, false
	l, err := restrictions.Compile(nil, o)
	if err != nil {
		return nil, restrictionError(cfg, err)
	}
	return l, nil
}

// Logf writes one mail log line of program policyd.
func (p *Policyd) Logf(format string, args ...any) { p.log.Logf("policyd", format, args...) }

// Close closes the state stores and the mail log, once the server has
// stopped.
func (p *Policyd) Close() error {
	p.tables.closeStates()
	return p.log.Close()
}
