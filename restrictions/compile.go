package restrictions

import (
	"fmt"
	"sort"
	"strings"

	"postgate/dnsbl"
	"postgate/policyd"
	"postgate/rules"
)

// Lists holds the compiled restriction lists of one runtime. It is safe
// for concurrent use by many sessions.
type Lists struct {
	opts         Options
	registry     map[string]spec // the package registry (a field: table values compile at run time, and a package-level reference would be an initialization cycle)
	lists        []*list         // indexed like listParams
	classes      map[string]*list
	tables       map[string]*tableRef
	accessParent bool // smtpd_access_maps in parent_domain_matches_subdomains
	permitLog    permitLog
	notImpl      []string
	warnings     []string
	values       valueCache
	dnsxl        *dnsbl.Client // the DNS list restrictions ask through it
	rblReplyMaps []*tableRef   // rbl_reply_maps
	policy       policyClients // check_policy_service servers
	greylist     *greylister   // what check_greylist steps share
	rates        rateState     // what the rate checks share
	verify       *verifier     // what the reject_unverified_* steps share
}

// list is a compiled restriction list: steps in the admin's order.
type list struct {
	param string
	steps []step
}

// step is one restriction of a list.
type step struct {
	name         string // restriction name (lowercase), class name, or a bare table
	arg          string
	warnIfReject bool   // the warn_if_reject pseudo restriction
	class        string // set for a restriction class reference
	run          runFunc
}

// Compile compiles every smtpd_*_restrictions list found in params
// (parameter name -> expanded value; a missing list is empty) and the
// restriction classes in opts. Tables are opened once, shared by spec.
// Errors name the parameter and the bad item.
func Compile(params map[string]string, opts Options) (*Lists, error) {
	l := &Lists{
		opts:     opts.withDefaults(),
		registry: registry,
		lists:    make([]*list, len(listParams)),
		classes:  map[string]*list{},
		tables:   map[string]*tableRef{},
	}
	l.accessParent = l.opts.ParentDomainMatchesSubdomains("smtpd_access_maps")
	c := &compiler{l: l, seen: map[string]bool{}}
	if err := c.dnsLists(); err != nil {
		return nil, err
	}
	if err := c.greylistTables(); err != nil {
		return nil, err
	}

	names := make([]string, 0, len(l.opts.Classes))
	for name := range l.opts.Classes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.TrimSpace(l.opts.Classes[name]) == "" {
			return nil, fmt.Errorf("restriction class `%s' needs a definition", name)
		}
		l.classes[name] = &list{param: name}
	}
	for _, name := range names {
		lst, err := c.compile(name, l.opts.Classes[name])
		if err != nil {
			return nil, err
		}
		l.classes[name].steps = lst.steps
	}
	for i, p := range listParams {
		lst, err := c.compile(p.name, params[p.name])
		if err != nil {
			return nil, err
		}
		if p.acl == accessNone {
			for _, s := range lst.steps {
				if isBareTable(s.name) {
					return nil, &ParamError{Param: p.name, Err: fmt.Errorf("specify one of (%s) before %q", accessNames, s.name)}
				}
			}
		}
		l.lists[i] = lst
	}
	pl, err := c.permitLog(l.opts.LogAccessPermitActions)
	if err != nil {
		return nil, err
	}
	l.permitLog = pl
	return l, nil
}

// ParamError is a compile error in one list parameter (or restriction
// class), so the caller can say where the admin set it.
type ParamError struct {
	Param string
	Err   error
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Err.Error() }
func (e *ParamError) Unwrap() error { return e.Err }

// NotImplemented lists the restrictions the configuration uses that
// postgate knows but does not implement yet, as "parameter: name". They
// answer 451 4.3.5 Server configuration error when reached.
func (l *Lists) NotImplemented() []string { return append([]string(nil), l.notImpl...) }

// Warnings lists problems found at Compile that Postfix also only warns
// about (restrictions after permit/reject/defer, removed restrictions).
func (l *Lists) Warnings() []string { return append([]string(nil), l.warnings...) }

const accessNames = "check_client_access, check_reverse_client_hostname_access, check_helo_access, check_sender_access, check_recipient_access, check_etrn_access"

func isBareTable(name string) bool { return strings.Contains(name, ":") }

// compiler turns list text into steps.
type compiler struct {
	l       *Lists
	lenient bool            // access table values: a bad item becomes a step that fails when reached
	seen    map[string]bool // NotImplemented entries already listed
}

// compile compiles one list. In lenient mode it never fails: the first bad
// item becomes a step answering 451 4.3.5, as Postfix does at run time.
func (c *compiler) compile(param, text string) (*list, error) {
	lst := &list{param: param}
	toks := rules.SplitList(text)
	for i := 0; i < len(toks); i++ {
		s, used, err := c.step(param, toks[i:])
		if err != nil {
			if !c.lenient {
				return nil, &ParamError{Param: param, Err: err}
			}
			lst.steps = append(lst.steps, failStep(err))
			break
		}
		i += used
		lst.steps = append(lst.steps, s)
	}
	if !c.lenient {
		c.warnIgnored(lst)
	}
	return lst, nil
}

// step compiles toks[0] (with its argument); used is how many more items
// it took.
func (c *compiler) step(param string, toks []string) (s step, used int, err error) {
	tok := toks[0]
	name := strings.ToLower(tok)
	switch {
	case name == "warn_if_reject":
		return step{name: name, warnIfReject: true}, 0, nil
	case isBareTable(tok):
		tr, err := c.table(tok)
		if err != nil {
			return step{}, 0, err
		}
		return step{name: tok, arg: tok, run: defaultAccess(tr)}, 0, nil
	}
	sp, known := c.l.registry[name]
	if !known {
		if _, isClass := c.l.classes[tok]; isClass {
			return step{name: tok, class: tok, run: classStep(tok)}, 0, nil
		}
		if c.lenient {
			return step{}, 0, fmt.Errorf("unknown smtpd restriction: %q", tok)
		}
		return step{}, 0, fmt.Errorf("unknown restriction %q", tok)
	}
	s = step{name: name}
	var tr *tableRef
	if sp.arg != noArg {
		if s.arg, err = checkArg(name, sp.arg, toks[1:]); err != nil {
			return step{}, 0, err
		}
		used = 1
		if sp.arg == tableArg && sp.build != nil {
			if tr, err = c.table(s.arg); err != nil {
				return step{}, 0, fmt.Errorf("%s %w", name, err)
			}
		}
	}
	if sp.build == nil {
		s.run = notImplemented(name)
		if key := param + ": " + name; !c.lenient && !c.seen[key] {
			c.seen[key] = true
			c.l.notImpl = append(c.l.notImpl, key)
		}
		return s, used, nil
	}
	if alt, removed := removedIn39[name]; removed && !c.lenient {
		c.l.warnings = append(c.l.warnings, fmt.Sprintf("%s: support for restriction %q has been removed in Postfix 3.9; instead, specify \"%s\"", param, name, alt))
	}
	s.run = sp.build(c, name, s.arg, tr)
	return s, used, nil
}

// checkArg validates the argument a restriction needs.
func checkArg(name string, kind argKind, rest []string) (string, error) {
	arg := ""
	if len(rest) > 0 {
		arg = rest[0]
	}
	switch kind {
	case tableArg:
		if !strings.Contains(arg, ":") {
			return "", fmt.Errorf("restriction %s: bad argument %q: need maptype:mapname", name, arg)
		}
	case serverArg:
		if !strings.Contains(arg, ":") {
			return "", fmt.Errorf("restriction %s must be followed by transport:server", name)
		}
		if err := policyd.Check(arg); err != nil {
			return "", fmt.Errorf("restriction %s %s: %w", name, arg, err)
		}
	case numberArg:
		if arg == "" || strings.Trim(arg, "0123456789") != "" {
			return "", fmt.Errorf("restriction %s must be followed by number", name)
		}
	case wordArg:
		if arg == "" {
			return "", fmt.Errorf("restriction %s requires domain name argument", name)
		}
		if _, err := dnsbl.ParseSite(arg); err != nil {
			return "", fmt.Errorf("restriction %s %s: %w", name, arg, err)
		}
	}
	return arg, nil
}

// table opens a table once per spec.
func (c *compiler) table(spec string) (*tableRef, error) {
	if tr, ok := c.l.tables[spec]; ok {
		return tr, nil
	}
	if c.lenient {
		// Lists is shared once compiled: values never open tables.
		return nil, fmt.Errorf("lookup table %s not allowed here", spec)
	}
	t, err := c.l.opts.OpenTable(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	tr := &tableRef{spec: spec, t: t, fixed: rules.IsFixedString(t)}
	c.l.tables[spec] = tr
	return tr, nil
}

// warnIgnored notes restrictions that can never be reached.
func (c *compiler) warnIgnored(lst *list) {
	for i := 0; i+1 < len(lst.steps); i++ {
		switch n := lst.steps[i].name; n {
		case "permit", "reject", "defer":
			if i > 0 && lst.steps[i-1].warnIfReject && n != "permit" {
				continue
			}
			c.l.warnings = append(c.l.warnings, fmt.Sprintf("%s: restriction `%s' after `%s' is ignored", lst.param, lst.steps[i+1].name, n))
			return
		}
	}
}
