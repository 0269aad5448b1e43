package config

import "strings"

// view expands parameters in one name space: main.cf, or main.cf plus one
// master.cf service's -o overrides. It is used while loading; the results are
// frozen into a Config.
type view struct {
	f        *files
	over     map[string]setting // -o overrides
	implicit map[string]string  // service_name and process_name of a service view
	cache    map[string]string
	errs     map[string]error
	stack    []string // names being expanded, to find loops
}

func newView(f *files, svc *Service) *view {
	v := &view{f: f, cache: map[string]string{}, errs: map[string]error{}}
	if svc != nil {
		v.over = map[string]setting{}
		for name, value := range svc.Overrides {
			pos, ok := svc.overridePos[name]
			if !ok {
				pos = svc.Pos
			}
			v.over[name] = setting{value: value, pos: pos}
		}
		v.implicit = map[string]string{"service_name": svc.Name, "process_name": svc.Command}
	}
	return v
}

// syntaxError is a bad expression in the value of param.
type syntaxError struct {
	param string
	err   error
}

func (e *syntaxError) Error() string { return e.err.Error() }

// loopError is a $name reference loop; cycle starts and ends with the same name.
type loopError struct{ cycle []string }

func (e *loopError) Error() string {
	return "recursion loop: $" + strings.Join(e.cycle, " -> $")
}

func (e *loopError) has(name string) bool { return contains(e.cycle, name) }

// explicit returns an explicit setting: a -o override or a main.cf line.
func (v *view) explicit(name string) (setting, bool) {
	if s, ok := v.over[name]; ok {
		return s, true
	}
	s, ok := v.f.main[name]
	return s, ok
}

// raw returns the unexpanded value of name and whether it is defined at all.
func (v *view) raw(name string) (string, bool) {
	if s, ok := v.implicit[name]; ok {
		return s, true
	}
	if s, ok := v.explicit(name); ok {
		return s.value, true
	}
	if s, ok := v.f.defaults[name]; ok {
		return s, true
	}
	if p := lookupParam(name); p != nil {
		if p.computed {
			s, _ := v.value(name)
			return s, true
		}
		return p.def, true
	}
	return "", false
}

// test implements resolver: is the raw value non-empty?
func (v *view) test(name string) bool {
	s, _ := v.raw(name)
	return s != ""
}

// value implements resolver: the fully expanded value, "" when undefined.
func (v *view) value(name string) (string, error) {
	if s, ok := v.cache[name]; ok {
		return s, nil
	}
	if err, ok := v.errs[name]; ok {
		return "", err
	}
	for i, n := range v.stack {
		if n == name {
			cycle := append(append([]string(nil), v.stack[i:]...), name)
			return "", &loopError{cycle: cycle}
		}
	}
	v.stack = append(v.stack, name)
	s, err := v.resolve(name)
	v.stack = v.stack[:len(v.stack)-1]
	if err != nil {
		v.errs[name] = err
		return "", err
	}
	v.cache[name] = s
	return s, nil
}

func (v *view) resolve(name string) (string, error) {
	if s, ok := v.implicit[name]; ok {
		return s, nil
	}
	if s, ok := v.explicit(name); ok {
		if isRaw(name) {
			return s.value, nil // expanded per request, not at load
		}
		return v.expandOwn(name, s.value)
	}
	if s, ok := v.f.defaults[name]; ok {
		return v.expandOwn(name, s)
	}
	if p := lookupParam(name); p != nil {
		if p.computed {
			return v.computeDefault(name)
		}
		if isRaw(name) {
			return p.def, nil // default_rbl_reply's $rbl_code is expanded per request
		}
		return v.expandOwn(name, p.def)
	}
	return "", nil
}

// expandOwn expands the text of name's value. An error in a value it refers to
// is passed on unchanged, so it is reported once, where it is.
func (v *view) expandOwn(name, text string) (string, error) {
	s, err := expandString(text, v)
	switch err.(type) {
	case nil, *syntaxError, *loopError:
		return s, err
	}
	return "", &syntaxError{param: name, err: err}
}

// check expands and validates the explicit settings of the view, in file order,
// and then every typed parameter, so that the Config can answer from memory.
func (v *view) check(names []string, ds *diags, posOf func(name string) Position) map[string]string {
	loopsReported := map[string]bool{}
	for _, name := range names {
		pos := posOf(name)
		s, err := v.value(name)
		switch e := err.(type) {
		case nil:
			if p := lookupParam(name); p != nil {
				warning, err := p.validate(s)
				if err != nil {
					ds.errorf(pos, name, "%v", err)
				} else if warning != "" {
					ds.warnf(pos, name, "%s", warning)
				}
			}
		case *syntaxError:
			if e.param == name {
				ds.errorf(pos, name, "%v", e.err)
			}
		case *loopError:
			if e.has(name) && !loopsReported[e.cycle[0]] {
				for _, n := range e.cycle {
					loopsReported[n] = true
				}
				ds.errorf(pos, name, "%v", e)
			}
		default:
			ds.errorf(pos, name, "%v", err)
		}
	}
	for i := range paramTable {
		v.value(paramTable[i].name) // errors here stem from settings reported above
	}
	return v.cache
}
