package config

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"postgate/rules"
)

// Config is a loaded configuration, or the view of it that one master.cf service
// sees. It is immutable and safe for concurrent use.
type Config struct {
	f      *files
	svc    *Service           // nil for the main.cf view
	over   map[string]setting // the service's -o overrides
	values map[string]string  // expanded values: explicit settings and typed parameters
}

// files is what all views of one load share.
type files struct {
	dir        string
	mainFile   string
	main       map[string]setting
	mainOrder  []string          // explicit names in file order
	defaults   map[string]string // built-in defaults that replace Postfix's (Embedded)
	env        env
	masterFile string
	entries    []masterEntry // every master.cf entry
	services   []Service     // the smtpd listeners
	views      map[serviceKey]*Config
	diags      []Diagnostic
	nonDefault []string
}

type serviceKey struct {
	pos  Position
	name string
}

// input is one load request.
type input struct {
	dir                string
	mainFile           string
	main               []byte
	masterFile         string
	master             []byte  // nil: no master.cf
	defaultListener    Service // what runs when there is no master.cf
	defaults           map[string]string
	env                env
	skipQueueDirectory bool
}

// Load reads DIR/main.cf (required) and DIR/master.cf (optional: when absent,
// postgate runs one "smtp inet n - y - - smtpd" service, i.e. port 25 on
// inet_interfaces). It fails with *Error when a diagnostic is not a warning, and
// with the file system's error when main.cf cannot be read.
func Load(dir string) (*Config, error) {
	in := input{dir: dir, mainFile: filepath.Join(dir, "main.cf"),
		masterFile: filepath.Join(dir, "master.cf"), defaultListener: defaultSMTP, env: systemEnv()}
	var err error
	if in.main, err = os.ReadFile(in.mainFile); err != nil {
		return nil, err
	}
	if in.master, err = os.ReadFile(in.masterFile); errors.Is(err, fs.ErrNotExist) {
		in.master = nil
	} else if err != nil {
		return nil, err
	} else if in.master == nil {
		in.master = []byte{}
	}
	return build(in)
}

// Parse is Load from memory; masterData nil means there is no master.cf. When
// mainName ends in "/main.cf", the directory before it is the configuration
// directory (Dir, $config_directory).
func Parse(mainName string, mainData []byte, masterName string, masterData []byte) (*Config, error) {
	dir, _ := strings.CutSuffix(mainName, "/main.cf")
	if dir == mainName {
		dir = ""
	}
	return build(input{dir: dir, mainFile: mainName, main: mainData, masterFile: masterName,
		master: masterData, defaultListener: defaultSMTP, env: systemEnv()})
}

// defaultSMTP is the service postgate runs without a master.cf, as Postfix's
// "smtp inet n - y - - smtpd".
var defaultSMTP = Service{Name: "smtp", Type: "inet", Private: "n", Unpriv: "-", Chroot: "y",
	Wakeup: "-", Command: "smtpd"}

// embeddedDefaults are the built-in defaults that differ from Postfix's when
// postgate runs with no configuration directory: loopback only, no open relay,
// a queue in the working directory.
var embeddedDefaults = map[string]string{
	"inet_interfaces":  "loopback-only",
	"mynetworks_style": "host",
	"relay_domains":    "",
	"queue_directory":  "./postgate-queue",
}

// Embedded returns the configuration used when there is no configuration
// directory: listen on 127.0.0.1:2525 only, queue_directory "./postgate-queue",
// mynetworks the loopback addresses, relay_domains empty, everything else
// Postfix's defaults.
func Embedded() *Config {
	listener := defaultSMTP
	listener.Name, listener.Chroot = "127.0.0.1:2525", "n"
	c, err := build(input{defaultListener: listener, defaults: embeddedDefaults,
		env: systemEnv(), skipQueueDirectory: true})
	if err != nil {
		panic("config: embedded defaults do not load: " + err.Error())
	}
	return c
}

func build(in input) (*Config, error) {
	var ds diags
	f := &files{dir: in.dir, mainFile: in.mainFile, defaults: in.defaults, env: in.env,
		masterFile: in.masterFile, views: map[serviceKey]*Config{}}
	f.main, f.mainOrder = parseMain(in.mainFile, in.main, &ds)
	if in.master != nil {
		f.entries = parseMaster(in.masterFile, in.master, &ds)
	}

	mainView := newView(f, nil)
	c := &Config{f: f, values: mainView.check(f.mainOrder, &ds, func(n string) Position { return f.main[n].pos })}
	used := f.usedParams(mainView)
	for _, name := range f.mainOrder {
		s := f.main[name]
		f.classify(name, s.pos, used, &ds)
		if !isRaw(name) {
			f.warnUndefined(name, s.value, s.pos, nil, &ds)
		}
	}
	if !in.skipQueueDirectory {
		if dir := c.Get("queue_directory"); dir != "" {
			if err := CheckQueueDirectory(dir); err != nil {
				ds.errorf(c.Pos("queue_directory"), "queue_directory", "%v", err)
			}
		}
	}

	f.buildServices(c, in, used, &ds)
	f.nonDefault = f.computeNonDefault(used)
	sortDiags(ds, in.mainFile, in.masterFile)
	f.diags = ds
	if ds.failed() {
		return nil, &Error{Diags: ds}
	}
	return c, nil
}

// sortDiags orders diagnostics by file (main.cf first) and line; those about a
// whole file come after its lines.
func sortDiags(ds diags, mainFile, masterFile string) {
	rank := func(d Diagnostic) (int, int) {
		r := 2
		switch d.Pos.File {
		case mainFile:
			r = 0
		case masterFile:
			r = 1
		}
		line := d.Pos.Line
		if line == 0 {
			line = int(^uint(0) >> 1)
		}
		return r, line
	}
	sort.SliceStable(ds, func(i, j int) bool {
		ri, li := rank(ds[i])
		rj, lj := rank(ds[j])
		if ri != rj {
			return ri < rj
		}
		return li < lj
	})
}

// Dir returns the configuration directory, "" for Embedded.
func (c *Config) Dir() string { return c.f.dir }

// Get returns the fully $-expanded value of name: its setting (a -o override in
// a service view, else main.cf), else its built-in default, else "". Parameters
// that Postfix expands per request (default_rbl_reply, smtpd_reject_footer, ...)
// are returned raw; expand them with Expand. smtpd_forbid_bare_newline is
// returned as its mode: "yes" and "no" read "normalize".
func (c *Config) Get(name string) string {
	v := c.values[name]
	if p := lookupParam(name); p != nil && p.canon != nil {
		v = p.canon(v)
	}
	return v
}

// Raw returns the unexpanded setting of name (a -o override in a service view,
// else main.cf); set is false when name is not set explicitly.
func (c *Config) Raw(name string) (value string, set bool) {
	if s, ok := c.over[name]; ok {
		return s.value, true
	}
	s, ok := c.f.main[name]
	return s.value, ok
}

// Pos returns where name is set: the master.cf line of its -o override in a
// service view, else its main.cf line; zero when it is a default.
func (c *Config) Pos(name string) Position {
	if s, ok := c.over[name]; ok {
		return s.pos
	}
	return c.f.main[name].pos
}

// Bool returns a boolean parameter; values were checked at load.
func (c *Config) Bool(name string) bool {
	b, _ := parseBool(c.Get(name))
	return b
}

// Int returns an integer parameter; values were checked at load.
func (c *Config) Int(name string) int64 {
	n, _ := parseInt(c.Get(name))
	return n
}

// Duration returns a time parameter. A bare number is in the parameter's
// default unit: seconds for most, days for maximal_queue_lifetime and
// bounce_queue_lifetime, hours for delay_warning_time.
func (c *Config) Duration(name string) time.Duration {
	unit := byte('s')
	if p := lookupParam(name); p != nil && p.kind == kindTime {
		unit = p.unit
	}
	d, _ := parseTime(c.Get(name), unit)
	return d
}

// List splits the expanded value as Postfix splits lists: at commas and/or
// whitespace, keeping a { ... } group as one item with its braces, dropping
// empty items.
func (c *Config) List(name string) []string { return rules.SplitList(c.Get(name)) }

// Diagnostics returns every warning found while loading: unknown parameters,
// parameters postgate does not implement, ignored lines, skipped master.cf
// services, and so on.
func (c *Config) Diagnostics() []Diagnostic { return append([]Diagnostic(nil), c.f.diags...) }

// NonDefault returns "name = value" lines as `postconf -n -c DIR` prints them
// for the same main.cf and master.cf, with postgate's own parameters counted as
// built in.
func (c *Config) NonDefault() []string { return append([]string(nil), c.f.nonDefault...) }

// Services returns the master.cf inet services that run smtpd, in file order.
func (c *Config) Services() []Service { return append([]Service(nil), c.f.services...) }

// ForService returns the view of the configuration that service s sees: main.cf
// with the service's -o overrides, which also take part in $name expansion.
func (c *Config) ForService(s Service) *Config {
	if v, ok := c.f.views[serviceKey{s.Pos, s.Name}]; ok {
		return v
	}
	var ds diags // a service not from this load: it was never checked
	return c.f.serviceView(&s, &ds)
}

// Stressed returns the view of service s under stress: Postfix's master
// starts smtpd with -o stress=yes once a service has reached its process
// limit, so the ${stress?...} defaults (and an admin's own) apply.
func (c *Config) Stressed(s Service) *Config {
	s.Overrides = maps.Clone(s.Overrides)
	if s.Overrides == nil {
		s.Overrides = map[string]string{}
	}
	s.Overrides["stress"] = "yes"
	var ds diags // the service's own view was checked already
	return c.f.serviceView(&s, &ds)
}

// Expand expands value as main.cf values are expanded, for templates filled in
// at run time. extra is consulted first; its values are used as they are, never
// expanded again, since they may carry text from the network.
func (c *Config) Expand(value string, extra func(name string) (string, bool)) (string, error) {
	return expandString(value, frozen{c, extra})
}

// frozen resolves names against a loaded Config.
type frozen struct {
	c     *Config
	extra func(string) (string, bool)
}

func (r frozen) test(name string) bool {
	if r.extra != nil {
		if v, ok := r.extra(name); ok {
			return v != ""
		}
	}
	if s, ok := r.c.Raw(name); ok {
		return s != ""
	}
	if r.c.svc != nil && (name == "service_name" || name == "process_name") {
		return true
	}
	if s, ok := r.c.f.defaults[name]; ok {
		return s != ""
	}
	if p := lookupParam(name); p != nil && !p.computed {
		return p.def != ""
	}
	return r.c.values[name] != ""
}

func (r frozen) value(name string) (string, error) {
	if r.extra != nil {
		if v, ok := r.extra(name); ok {
			return v, nil
		}
	}
	return r.c.values[name], nil
}
