package resolver

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// answer is what a server said about one question, reduced to what lookups need.
type answer struct {
	rrs    []dns.RR // records of the asked type, at the end of any CNAME chain
	server string   // who said so
	ttl    time.Duration
}

// failure is an exchange that found no answer: every server failed or timed out.
type failure struct {
	server  string
	reason  string
	timeout bool
}

func (f *failure) Error() string { return f.reason }

var errMismatch = errors.New("answer for another question")

// exchange asks the servers in turn, Attempts rounds, until one gives an authoritative
// outcome (NOERROR or NXDOMAIN). Anything else moves on to the next server.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*answer, error) {
	msg := new(dns.Msg)
	msg.SetQuestion(name, qtype)
	msg.RecursionDesired = true
	msg.SetEdns0(udpSize, false)

	last := &failure{reason: "no DNS servers"}
	for range r.attempts {
		for _, server := range r.servers {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			msg.Id = dns.Id()
			resp, err := r.ask(ctx, msg, server)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				last = &failure{server: server, reason: err.Error(), timeout: isTimeout(err)}
				if last.timeout {
					last.reason = "i/o timeout"
				}
				continue
			}
			switch resp.Rcode {
			case dns.RcodeSuccess, dns.RcodeNameError:
				return r.reduce(resp, name, qtype, server), nil
			case dns.RcodeServerFailure:
				last = &failure{server: server, reason: "server misbehaving"}
			default:
				last = &failure{server: server, reason: "server misbehaving: " + dns.RcodeToString[resp.Rcode]}
			}
		}
	}
	r.stats.errors.Add(1)
	if last.timeout {
		r.stats.timeouts.Add(1)
	}
	return nil, last
}

// ask is one try with one server: UDP, then TCP when the answer is truncated. Each transport
// gets the resolver's timeout; the caller's context can end either early.
func (r *Resolver) ask(ctx context.Context, msg *dns.Msg, server string) (*dns.Msg, error) {
	resp, err := r.roundTrip(ctx, "udp", msg, server)
	if resp != nil && resp.Truncated {
		r.stats.tcpFallbacks.Add(1)
		resp, err = r.roundTrip(ctx, "tcp", msg, server)
	}
	if err != nil {
		return nil, err
	}
	if len(resp.Question) != 1 || resp.Question[0].Qtype != msg.Question[0].Qtype ||
		!strings.EqualFold(resp.Question[0].Name, msg.Question[0].Name) {
		return nil, errMismatch
	}
	return resp, nil
}

// roundTrip sends msg and reads the answer over one new connection.
func (r *Resolver) roundTrip(ctx context.Context, network string, msg *dns.Msg, server string) (*dns.Msg, error) {
	r.stats.queries.Add(1)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	client := &dns.Client{Net: network, Timeout: r.timeout, UDPSize: udpSize}
	conn, err := client.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// miekg/dns only takes the context's deadline: make cancellation unblock the read too.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	resp, _, err := client.ExchangeWithConnContext(ctx, msg, conn)
	if resp != nil && resp.Truncated {
		return resp, nil // the caller asks again over TCP; a cut message may not unpack
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // our timeout, or the caller gave up
		}
		return nil, err
	}
	return resp, nil
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// reduce keeps the records that answer the question, following the CNAME chain the server
// gave, and decides how long the answer may be cached.
func (r *Resolver) reduce(resp *dns.Msg, name string, qtype uint16, server string) *answer {
	ans := &answer{server: server}
	ttl := ^uint32(0)
	cur := name
	for range 16 {
		next := ""
		for _, rr := range resp.Answer {
			h := rr.Header()
			if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, cur) {
				continue
			}
			switch {
			case h.Rrtype == qtype:
				ans.rrs = append(ans.rrs, rr)
				ttl = min(ttl, h.Ttl)
			case h.Rrtype == dns.TypeCNAME && next == "":
				next = rr.(*dns.CNAME).Target
				ttl = min(ttl, h.Ttl)
			}
		}
		if len(ans.rrs) > 0 || next == "" {
			break
		}
		cur = next
	}
	if len(ans.rrs) > 0 {
		ans.ttl = clamp(time.Duration(ttl)*time.Second, r.minTTL, r.maxTTL)
		return ans
	}
	// NXDOMAIN or NODATA: cached for the SOA's negative TTL, and not at all without a SOA
	// (RFC 2308 section 5).
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			neg := min(ttl, soa.Hdr.Ttl, soa.Minttl)
			ans.ttl = clamp(time.Duration(neg)*time.Second, r.minTTL, r.maxNegativeTTL)
			break
		}
	}
	return ans
}

func clamp(d, lo, hi time.Duration) time.Duration {
	return max(lo, min(d, hi))
}
