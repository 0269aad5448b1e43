package config

import (
	"fmt"
	"maps"
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
	// In-process for a postscreen listener: its pass service and helpers.
	inProcess := f.postscreenParts(main, ds)
	for i := range f.entries {
		e := &f.entries[i]
		if e.postscreenService() {
			if s, ok := f.postscreenListener(e, main, ds); ok {
				s.MaxProc = maxProcOf(f.passEntry(main, e).maxProc, limit)
				f.services = append(f.services, s)
			}
			continue
		}
		if inProcess[e] {
			continue
		}
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

// postscreenHelpers are the services postscreen uses that postgate does
// in-process, so a postscreen master.cf need not say they were skipped.
var postscreenHelpers = map[string]bool{"dnsblog": true, "tlsproxy": true}

// postscreenParts returns the entries that postscreen listeners make
// redundant: the pass services they hand clients to, and dnsblog and
// tlsproxy.
func (f *files) postscreenParts(main *Config, ds *diags) map[*masterEntry]bool {
	out := map[*masterEntry]bool{}
	for i := range f.entries {
		if e := &f.entries[i]; e.postscreenService() {
			if p := f.passEntry(main, e); p != nil {
				out[p] = true
			}
		}
	}
	if len(out) == 0 {
		return out
	}
	for i := range f.entries {
		if e := &f.entries[i]; e.svc.Type == "unix" && postscreenHelpers[e.svc.Command] {
			out[e] = true
		}
	}
	return out
}

// passName is the pass service a postscreen line hands clients to:
// smtpd_service_name, from the line's -o or main.cf.
func passName(main *Config, ps *masterEntry) string {
	if v, ok := ps.svc.Overrides["smtpd_service_name"]; ok {
		return v
	}
	return main.Get("smtpd_service_name")
}

// passEntry finds the "pass" service named smtpd_service_name that runs
// smtpd; nil when there is none.
func (f *files) passEntry(main *Config, ps *masterEntry) *masterEntry {
	name := passName(main, ps)
	for i := range f.entries {
		e := &f.entries[i]
		if e.svc.Type == "pass" && e.svc.Name == name && e.svc.Command == "smtpd" {
			return e
		}
	}
	return nil
}

// postscreenListener makes one listener of a postscreen line: smtpd as
// its pass service runs it (fields, arguments, -o overrides), on the
// postscreen line's address, with the postscreen line's postscreen_*
// overrides added. Other overrides on the postscreen line are Postfix's
// postscreen settings that postgate's smtpd would not honour the same way,
// so they are reported rather than applied to smtpd.
func (f *files) postscreenListener(ps *masterEntry, main *Config, ds *diags) (Service, bool) {
	pass := f.passEntry(main, ps)
	if pass == nil {
		ds.errorf(ps.svc.Pos, "", "service %s runs postscreen, but master.cf has no %q service of type pass running smtpd (smtpd_service_name) to hand clients to",
			ps.svc.Name, passName(main, ps))
		return Service{}, false
	}
	s := pass.svc
	s.Name, s.Type, s.Pos, s.Postscreen = ps.svc.Name, ps.svc.Type, ps.svc.Pos, true
	s.Overrides = maps.Clone(pass.svc.Overrides)
	s.overridePos = maps.Clone(pass.svc.overridePos)
	for _, o := range ps.overrides {
		switch {
		case strings.HasPrefix(o.name, "postscreen_"):
			s.Overrides[o.name], s.overridePos[o.name] = o.value, o.pos
		case o.name != "smtpd_service_name":
			ds.warnf(o.pos, o.name, "-o %s on the postscreen line is not applied: postgate applies only postscreen_* settings there; set it on the %s pass line for smtpd", o.name, pass.svc.Name)
		}
	}
	return s, true
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
