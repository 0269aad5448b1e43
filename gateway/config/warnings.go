package config

// classify warns about a setting postgate will not act on: a parameter of
// Postfix that postgate does not implement, or a name that is neither a Postfix
// nor a postgate parameter nor used by another setting (Postfix's "unused
// parameter"). Nothing is silently ignored.
func (f *files) classify(name string, pos Position, used map[string]bool, ds *diags) {
	p := lookupParam(name)
	switch {
	case p != nil && p.impl:
	case isReadOnly(name):
		ds.warnf(pos, name, "read-only parameter, setting ignored")
	case p != nil || isKnown(name) || looksServiceDerived(name):
		ds.warnf(pos, name, "not implemented by postgate, ignored")
	case used[name]:
		// a user-defined parameter: a restriction class or a $name another setting uses
	default:
		ds.warnf(pos, name, "unknown parameter, ignored")
	}
}

// warnUndefined warns about each $name in value that nothing defines, which
// expands to empty and is most likely a typo. svc is the service whose -o
// setting value is, nil for main.cf.
func (f *files) warnUndefined(name, value string, pos Position, svc *Service, ds *diags) {
	seen := map[string]bool{}
	_ = scanNames(value, func(ref string) {
		if ref == "" || seen[ref] || f.defined(ref, svc) {
			return
		}
		seen[ref] = true
		ds.warnf(pos, name, "undefined parameter $%s, expands to empty", ref)
	})
}

// defined reports whether ref has a value somewhere. As postconf does, a -o
// setting of any service defines a name used in main.cf.
func (f *files) defined(ref string, svc *Service) bool {
	if _, ok := f.main[ref]; ok {
		return true
	}
	if _, ok := f.defaults[ref]; ok || isKnown(ref) || looksServiceDerived(ref) {
		return true
	}
	if svc != nil {
		_, ok := svc.Overrides[ref]
		return ok
	}
	for i := range f.entries {
		if _, ok := f.entries[i].svc.Overrides[ref]; ok {
			return true
		}
	}
	return false
}
