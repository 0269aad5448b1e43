// Package dnstest runs an in-process authoritative DNS server on loopback for tests.
//
// A test gives it a zone in RFC 1035 master-file syntax and points postgate's resolver
// (postgate_dns_servers) at Addr. It never forwards a query anywhere: names it does not
// hold are NXDOMAIN, so a test can never reach the machine's resolver through it.
package dnstest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Server is a running test DNS server, listening on UDP and TCP on one loopback port.
type Server struct {
	addr string
	udp  *dns.Server
	tcp  *dns.Server
	stop chan struct{} // closed at cleanup: ends injected delays

	mu       sync.Mutex
	zone     *zone
	servfail map[string]bool // canonical names
	all      bool            // SERVFAIL for every name
	delay    time.Duration
	queries  map[queryKey]int
	total    int
	tcpTotal int
}

type queryKey struct {
	name  string
	qtype uint16
}

// Start parses zone, starts a server on 127.0.0.1 with a free port (UDP and TCP) and stops it
// when the test ends. A zone that does not parse fails the test at once.
//
// The zone is master-file text: $ORIGIN and $TTL are allowed, names without $ORIGIN must be
// absolute. When it has no SOA record, one is made up for the negative answers, at the longest
// suffix common to all names, with a TTL and minimum of 60 seconds.
func Start(t testing.TB, zoneText string) *Server {
	t.Helper()
	z, err := parseZone(zoneText)
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	pc, ln, err := listenPair()
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	return serve(t, z, pc, ln)
}

// StartAt is Start on a given "ip:port", such as port 53 of a loopback address for a resolver
// that asks port 53 only (the C library's). It is an error, not a failure of the test, when
// the address cannot be bound (the caller may try another); a zone that does not parse fails
// the test.
func StartAt(t testing.TB, zoneText, addr string) (*Server, error) {
	t.Helper()
	z, err := parseZone(zoneText)
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		pc.Close()
		return nil, err
	}
	return serve(t, z, pc, ln), nil
}

// serve answers on pc and ln until the test ends.
func serve(t testing.TB, z *zone, pc net.PacketConn, ln net.Listener) *Server {
	s := &Server{
		zone:     z,
		stop:     make(chan struct{}),
		servfail: map[string]bool{},
		queries:  map[queryKey]int{},
	}
	s.addr = pc.LocalAddr().String()
	s.udp = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serveDNS)}
	s.tcp = &dns.Server{Listener: ln, Handler: dns.HandlerFunc(s.serveDNS)}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
	}
	t.Cleanup(s.close)
	return s
}

// listenPair finds a loopback port free for both UDP and TCP.
func listenPair() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		lastErr = err
		pc.Close()
	}
	return nil, nil, fmt.Errorf("no free UDP+TCP port on 127.0.0.1: %v", lastErr)
}

func (s *Server) close() {
	close(s.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.udp.ShutdownContext(ctx)
	s.tcp.ShutdownContext(ctx)
}

// Addr is the server's "IP:PORT", the form postgate_dns_servers takes.
func (s *Server) Addr() string { return s.addr }

// SetServfail makes the server answer SERVFAIL for name (any type). The name "*" means every
// name.
func (s *Server) SetServfail(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "*" {
		s.all = true
		return
	}
	s.servfail[dns.CanonicalName(name)] = true
}

// ClearServfail undoes SetServfail for name ("*" clears every name).
func (s *Server) ClearServfail(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "*" {
		s.all = false
		clear(s.servfail)
		return
	}
	delete(s.servfail, dns.CanonicalName(name))
}

// SetDelay makes the server wait d before answering each query (0: answer at once). A delay
// longer than the client's timeout looks like a server that does not answer.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// SetZone replaces the zone the server answers from. A zone that does not parse is an error
// and leaves the old zone in place.
func (s *Server) SetZone(zoneText string) error {
	z, err := parseZone(zoneText)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.zone = z
	s.mu.Unlock()
	return nil
}

// Queries is how many queries the server has received, over UDP and TCP together.
func (s *Server) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// TCPQueries is how many of those queries came over TCP.
func (s *Server) TCPQueries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tcpTotal
}

// QueryCount is how many queries the server has received for name and type (dns.TypeA, ...).
func (s *Server) QueryCount(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[queryKey{dns.CanonicalName(name), qtype}]
}

// ResetCounts sets every query counter back to zero.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.queries)
	s.total, s.tcpTotal = 0, 0
}

func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	_, isTCP := w.LocalAddr().(*net.TCPAddr)
	resp := new(dns.Msg)
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		resp.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(resp)
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)

	s.mu.Lock()
	s.total++
	if isTCP {
		s.tcpTotal++
	}
	s.queries[queryKey{name, q.Qtype}]++
	delay, servfail, z := s.delay, s.all || s.servfail[name], s.zone
	s.mu.Unlock()

	if delay > 0 {
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-s.stop:
			timer.Stop()
			return
		}
	}

	resp.SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = true
	if servfail {
		resp.Rcode = dns.RcodeServerFailure
	} else {
		z.answer(resp, name, q.Qtype)
	}

	size := dns.MaxMsgSize
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(opt.UDPSize(), false)
		if !isTCP {
			size = int(opt.UDPSize())
		}
	} else if !isTCP {
		size = dns.MinMsgSize
	}
	resp.Truncate(size)
	w.WriteMsg(resp)
}
