package policyd

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"postgate/rules"
)

// DefaultAction is smtpd_policy_service_default_action's default, what a
// request that fails every attempt is answered with.
const DefaultAction = "451 4.3.5 Server configuration problem"

// Options are the smtpd_policy_service_* parameters. The braced form of
// check_policy_service overrides them per service; a zero field means
// Postfix's default.
type Options struct {
	Timeout       time.Duration // smtpd_policy_service_timeout (100s): connect, and each request's send and receive
	MaxIdle       time.Duration // smtpd_policy_service_max_idle (300s): an unused connection is closed after it
	MaxTTL        time.Duration // smtpd_policy_service_max_ttl (1000s): a connection is not reused past this age
	RetryDelay    time.Duration // smtpd_policy_service_retry_delay (1s): the pause between attempts
	RequestLimit  int           // smtpd_policy_service_request_limit: requests per connection (0: no limit)
	TryLimit      int           // smtpd_policy_service_try_limit (2): attempts per request
	DefaultAction string        // smtpd_policy_service_default_action (DefaultAction)
	PolicyContext string        // smtpd_policy_service_policy_context: sent as policy_context

	// QueueDirectory is where a relative unix: path starts
	// (unix:private/policy), as for Postfix's smtpd, which runs there.
	QueueDirectory string
	// SMTPUTF8 is smtputf8_enable: an action that is not valid UTF-8 then
	// counts as a failed request.
	SMTPUTF8 bool
	// Observe, when set, is told each query's server, time taken and
	// whether it got an answer (for metrics).
	Observe func(server string, took time.Duration, ok bool)
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Timeout, 100*time.Second)
	def(&o.MaxIdle, 300*time.Second)
	def(&o.MaxTTL, 1000*time.Second)
	def(&o.RetryDelay, time.Second)
	if o.TryLimit <= 0 {
		o.TryLimit = 2
	}
	if o.DefaultAction == "" {
		o.DefaultAction = DefaultAction
	}
	return o
}

// endpoint is where a policy server listens.
type endpoint struct {
	network string // "tcp" or "unix"
	address string // what to dial
	name    string // as Postfix names it in warnings: the text after "inet:" or "unix:"
}

// parseService reads a check_policy_service argument: "inet:host:port",
// "unix:/path", "unix:private/name", or the braced form
// "{ inet:host:port, timeout=10s, default_action=DUNNO, ... }" whose
// name=value items (the parameter names without "smtpd_policy_service_")
// override o. Errors are worded as Postfix's fatal ones.
func parseService(spec string, o Options) (endpoint, Options, error) {
	server := spec
	var overrides []string
	if strings.HasPrefix(spec, "{") {
		inner, ok := rules.StripBraces(spec)
		if !ok {
			return endpoint{}, o, fmt.Errorf("policy service syntax error: %s", spec)
		}
		items := rules.SplitList(inner)
		if len(items) == 0 {
			return endpoint{}, o, fmt.Errorf("empty policy service: %q", spec)
		}
		server, overrides = items[0], items[1:]
	}
	for _, item := range overrides {
		if err := override(&o, item); err != nil {
			return endpoint{}, o, err
		}
	}
	ep, err := parseEndpoint(server, o.QueueDirectory)
	return ep, o, err
}

// Endpoint reads where a policy server listens, as check_policy_service
// names it: "inet:host:port", "unix:/path", or "unix:name" relative to
// queueDir. network and address are for net.Dial and net.Listen.
func Endpoint(server, queueDir string) (network, address string, err error) {
	ep, err := parseEndpoint(server, queueDir)
	return ep.network, ep.address, err
}

func parseEndpoint(server, queueDir string) (endpoint, error) {
	transport, addr, _ := strings.Cut(server, ":")
	if transport == "" || addr == "" {
		return endpoint{}, fmt.Errorf("need service transport:endpoint instead of %q", server)
	}
	ep := endpoint{address: addr, name: addr}
	switch transport {
	case "inet":
		ep.network = "tcp"
	case "unix", "local":
		ep.network = "unix"
		if !filepath.IsAbs(addr) {
			ep.address = filepath.Join(queueDir, addr)
		}
	default:
		return endpoint{}, fmt.Errorf("invalid transport name: %s in service: %s", transport, server)
	}
	return ep, nil
}

// override applies one name=value item of the braced form (Postfix's
// attr_override); "{ name = value }" is accepted too.
func override(o *Options, item string) error {
	key, value, err := rules.SplitOverride(item)
	if err != nil {
		return err
	}
	seconds := func(d *time.Duration) error {
		v, err := rules.OverrideSeconds(key, value)
		if err == nil {
			*d = v
		}
		return err
	}
	number := func(n *int, min int) error {
		v, err := strconv.Atoi(value)
		if err != nil || value[0] == '+' {
			return fmt.Errorf("bad numerical configuration: %s = %s", key, value)
		}
		if v < min {
			return fmt.Errorf("invalid %s parameter value %d < %d", key, v, min)
		}
		*n = v
		return nil
	}
	text := func(s *string) error {
		if value == "" {
			return fmt.Errorf("bad string length 0 < 1: %s = %s", key, value)
		}
		*s = value
		return nil
	}
	switch key {
	case "timeout":
		return seconds(&o.Timeout)
	case "max_idle":
		return seconds(&o.MaxIdle)
	case "max_ttl":
		return seconds(&o.MaxTTL)
	case "retry_delay":
		return seconds(&o.RetryDelay)
	case "request_limit":
		return number(&o.RequestLimit, 0)
	case "try_limit":
		return number(&o.TryLimit, 1)
	case "default_action":
		return text(&o.DefaultAction)
	case "policy_context":
		return text(&o.PolicyContext)
	}
	return fmt.Errorf("unknown option: \"%s = %s\"", key, value)
}
