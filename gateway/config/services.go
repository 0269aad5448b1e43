package config

import (
	"fmt"
	"sort"
	"strings"
)

// buildServices picks the smtpd listeners out of master.cf, checks each one's
// view of the configuration, and says what it skipped.
func (f *files) buildServices(main *Config, in input, used map[string]bool, ds *diags) {
	limit := main.Int("default_process_limit")
	if in.master == nil {
		s := in.defaultListener
		s.MaxProc, s.Overrides = int(limit), map[string]string{}
		f.services = []Service{s}
	}
	var skipped []string
	skippedTypes := map[string]bool{}
	var skippedInet []string
	for i := range f.entries {
		e := &f.entries[i]
		if !e.smtpdService() {
			if e.svc.Type == "inet" {
				skippedInet = append(skippedInet, fmt.Sprintf("%s (%s)", e.svc.Name, e.svc.Command))
			} else {
				skipped = append(skipped, e.svc.Name)
				skippedTypes[e.svc.Type] = true
			}
			continue
		}
		e.svc.MaxProc = maxProcOf(e.maxProc, limit)
		f.services = append(f.services, e.svc)
	}

	// What the main view reported need not be said again for each service.
	said := map[string]bool{}
	for _, d := range *ds {
		said[d.Param+"\x00"+d.Msg] = true
	}
	for i := range f.services {
		s := &f.services[i]
		var sds diags
		v := f.serviceView(s, &sds)
		for _, o := range overridesOf(s) {
			f.classify(o.name, o.pos, withClasses(used, v), &sds)
			if !isRaw(o.name) {
				f.warnUndefined(o.name, o.value, o.pos, s, &sds)
			}
		}
		f.views[serviceKey{s.Pos, s.Name}] = v
		if _, err := v.ListenAddrs(*s); err != nil {
			sds.errorf(s.Pos, "", "%v", err)
		}
		for _, d := range sds {
			if key := d.Param + "\x00" + d.Msg; d.Param == "" || !said[key] {
				said[key] = true
				*ds = append(*ds, d)
			}
		}
	}

	if len(skipped)+len(skippedInet) > 0 {
		var parts []string
		if len(skipped) > 0 {
			var types []string
			for _, t := range masterTypes {
				if skippedTypes[t] {
					types = append(types, t)
				}
			}
			parts = append(parts, fmt.Sprintf("skipped %s (%s): postgate runs these in-process",
				count(len(skipped), "Postfix internal service"), strings.Join(types, ", ")))
		}
		if len(skippedInet) > 0 {
			parts = append(parts, fmt.Sprintf("skipped %s not running smtpd: %s",
				count(len(skippedInet), "inet service"), strings.Join(skippedInet, ", ")))
		}
		ds.warnf(Position{File: f.masterFile}, "", "%s", strings.Join(parts, "; "))
	}
	if in.master != nil && len(f.services) == 0 && !ds.failed() {
		ds.warnf(Position{File: f.masterFile}, "", "no inet service runs smtpd: postgate will not accept SMTP connections")
	}
}

// serviceView builds and checks the view of service s.
func (f *files) serviceView(s *Service, ds *diags) *Config {
	v := newView(f, s)
	names := append([]string(nil), f.mainOrder...)
	for _, o := range overridesOf(s) {
		if _, ok := f.main[o.name]; !ok {
			names = append(names, o.name)
		}
	}
	posOf := func(name string) Position {
		if st, ok := v.over[name]; ok {
			return st.pos
		}
		return s.Pos
	}
	values := v.check(names, ds, posOf)
	for name := range v.implicit {
		v.value(name)
	}
	return &Config{f: f, svc: s, over: v.over, values: values}
}

// overridesOf returns a service's overrides in file order.
func overridesOf(s *Service) []override {
	var out []override
	for name, value := range s.Overrides {
		pos, ok := s.overridePos[name]
		if !ok {
			pos = s.Pos
		}
		out = append(out, override{name: name, value: value, pos: pos})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].pos.Line != out[j].pos.Line {
			return out[i].pos.Line < out[j].pos.Line
		}
		return out[i].name < out[j].name
	})
	return out
}

// withClasses adds the restriction classes a service names to the used set.
func withClasses(used map[string]bool, v *Config) map[string]bool {
	if _, ok := v.over["smtpd_restriction_classes"]; !ok {
		return used
	}
	out := map[string]bool{}
	for n := range used {
		out[n] = true
	}
	for _, n := range splitWords(v.Get("smtpd_restriction_classes")) {
		out[n] = true
	}
	return out
}

// count renders "1 service" or "2 services".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
