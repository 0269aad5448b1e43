package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"postgate/dnsbl"
	"postgate/gateway/config"
	"postgate/queue"
	"postgate/rules"
)

// postscreen runs Postfix's postscreen tests in front of a service's smtpd,
// for a master.cf that runs "smtp inet ... postscreen" with "smtpd pass ...
// smtpd": the permanent access list, the pregreet test and the DNS list
// score, at connect, before the smtpd session greets. A client that passes
// is remembered for the tests' TTLs and then skips them. What Postfix does
// in separate processes (dnsblog, the hand-off to smtpd) happens in the
// session's goroutine here; the "after 220" tests (pipelining, non-SMTP
// command, bare newline) are not run.
type postscreen struct {
	access         []aclItem
	mynetworks     *rules.AddrList
	denylistAction psAction
	banner         string // postscreen_greet_banner: "" sends no teaser
	// greetWait is postscreen_greet_wait, normal and under stress.
	greetWait, greetWaitStressed time.Duration
	greetAction                  psAction
	greetTTL                     time.Duration
	scorer                       *dnsbl.Scorer // nil without postscreen_dnsbl_sites
	dnsblAction                  psAction
	replyMap                     []rules.Table
	cache                        *psCache
}

// adopt keeps old's per-client results across a reload, so clients that
// passed stay passed.
func (p *postscreen) adopt(old *postscreen) { p.cache = old.cache }

type psAction int

const (
	psIgnore psAction = iota
	psEnforce
	psDrop
)

func parseAction(v string) psAction {
	switch v {
	case "enforce":
		return psEnforce
	case "drop":
		return psDrop
	}
	return psIgnore
}

// aclItem is one element of postscreen_access_list: permit_mynetworks,
// permit, reject, dunno, or a table (spec) whose values are such words.
type aclItem struct {
	word  string
	spec  string
	table rules.Table
}

type aclResult int

const (
	aclDunno aclResult = iota
	aclPermit
	aclReject
	aclError // the rest of the list was not evaluated: no decision
)

// newPostscreen builds the screen from the service's view; logf writes
// the DNS lists' log lines (the service's log is set later).
func newPostscreen(cfg, stressed *config.Config, tables *tableCache, dns dnsResolver, mynetworks *rules.AddrList,
	logf func(prog, format string, args ...any)) (*postscreen, error) {
	p := &postscreen{
		mynetworks:        mynetworks,
		denylistAction:    parseAction(cfg.Get("postscreen_denylist_action")),
		banner:            cfg.Get("postscreen_greet_banner"),
		greetWait:         cfg.Duration("postscreen_greet_wait"),
		greetWaitStressed: stressed.Duration("postscreen_greet_wait"),
		greetAction:       parseAction(cfg.Get("postscreen_greet_action")),
		greetTTL:          cfg.Duration("postscreen_greet_ttl"),
		dnsblAction:       parseAction(cfg.Get("postscreen_dnsbl_action")),
		cache:             &psCache{m: map[netip.Addr]psEntry{}},
	}
	for _, w := range cfg.List("postscreen_access_list") {
		switch {
		case strings.Contains(w, ":"):
			t, err := tables.open(w)
			if err != nil {
				return nil, paramError(cfg, "postscreen_access_list", err)
			}
			p.access = append(p.access, aclItem{spec: w, table: t})
		case isACLWord(w):
			p.access = append(p.access, aclItem{word: strings.ToLower(w)})
		default:
			return nil, paramError(cfg, "postscreen_access_list", fmt.Errorf("unknown command: %s (use permit_mynetworks, permit, reject, dunno or type:table)", w))
		}
	}
	var err error
	if p.replyMap, err = openMaps(cfg, "postscreen_dnsbl_reply_map", tables); err != nil {
		return nil, err
	}
	sites, err := dnsbl.ParseWeightedSites(cfg.List("postscreen_dnsbl_sites"))
	if err != nil {
		return nil, paramError(cfg, "postscreen_dnsbl_sites", err)
	}
	if len(sites) > 0 {
		// The process's resolver; nil in check, which runs no session.
		r, _ := dns.(dnsbl.Resolver)
		p.scorer = dnsbl.NewScorer(dnsbl.ScoreOptions{
			Resolver:           r,
			Sites:              sites,
			Threshold:          int(cfg.Int("postscreen_dnsbl_threshold")),
			AllowlistThreshold: int(cfg.Int("postscreen_dnsbl_allowlist_threshold")),
			Timeout:            cfg.Duration("postscreen_dnsbl_timeout"),
			MinTTL:             cfg.Duration("postscreen_dnsbl_min_ttl"),
			MaxTTL:             cfg.Duration("postscreen_dnsbl_max_ttl"),
			// What dnsblog logs in Postfix, under its name; the timeout
			// is postscreen's own warning.
			Logf: func(format string, args ...any) {
				prog := "dnsblog"
				if strings.HasPrefix(format, "warning: dnsblog reply timeout") {
					prog = "postscreen"
				}
				logf(prog, format, args...)
			},
		})
	}
	return p, nil
}

func isACLWord(w string) bool {
	switch strings.ToLower(w) {
	case "permit_mynetworks", "permit", "reject", "dunno":
		return true
	}
	return false
}

// evalACL evaluates postscreen_access_list as Postfix's server_acl_eval:
// the first permit or reject wins; a table's value is a list of words,
// where a further table ends that list with no decision; an unknown word
// or a lookup error ends the whole list with no decision.
func (s *session) evalACL(items []aclItem, origin string) aclResult {
	p := s.svc.postscreen
	for _, it := range items {
		if it.table != nil {
			v, found, err := it.table.Lookup(s.ctx, s.peer.String())
			if err != nil {
				s.svc.log.Logf("postscreen", "warning: %s: %s: table lookup error -- ignoring the remainder of this access list", origin, it.spec)
				return aclError
			}
			if !found {
				continue
			}
			var sub []aclItem
			for _, w := range rules.SplitList(v) {
				if strings.Contains(w, ":") {
					s.svc.log.Logf("postscreen", "warning: table %s: lookup result \"%s\" is not allowed -- ignoring remainder of access list", it.spec, w)
					sub = append(sub, aclItem{word: "dunno"})
					break
				}
				sub = append(sub, aclItem{word: strings.ToLower(w)})
			}
			if r := s.evalACL(sub, it.spec); r != aclDunno {
				return r
			}
			continue
		}
		switch it.word {
		case "permit":
			return aclPermit
		case "reject":
			return aclReject
		case "dunno":
			return aclDunno
		case "permit_mynetworks":
			ok, err := p.mynetworks.Match(s.ctx, s.peer)
			if ok {
				return aclPermit
			}
			if err != nil {
				s.svc.log.Logf("postscreen", "warning: %s: %s: mynetworks lookup error -- ignoring the remainder of this access list", origin, it.word)
				return aclError
			}
		default:
			s.svc.log.Logf("postscreen", "warning: %s: unknown command: %s -- ignoring the remainder of this access list", origin, it.word)
			return aclError
		}
	}
	return aclDunno
}

// psCache remembers, per client address, until when each passed test
// stays passed (Postfix's postscreen_cache_map, kept in memory).
type psCache struct {
	mu sync.Mutex
	m  map[netip.Addr]psEntry
}

type psEntry struct {
	pregreet, dnsbl time.Time // a test is passed until then
}

// psCacheSize bounds the clients remembered; when full, expired ones are
// dropped first, and a new one is not kept if none had expired.
const psCacheSize = 100000

func (c *psCache) get(a netip.Addr) (psEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[a]
	return e, ok
}

func (c *psCache) put(a netip.Addr, e psEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[a]; !ok && len(c.m) >= psCacheSize {
		for k, old := range c.m {
			if !now.Before(old.pregreet) && !now.Before(old.dnsbl) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= psCacheSize {
			return
		}
	}
	c.m[a] = e
}

// screenState is one connection's progress through the tests.
type screenState struct {
	start  time.Time
	entry  psEntry
	isNew  bool // no cache entry: a pass is "PASS NEW"
	failed bool // a test failed and its action was not ignore
	// The tests due (their cached pass expired), and those passed.
	pregTodo, dnsTodo bool
	pregPass, dnsPass bool
	// rcptReply: enforce; the session goes on, but every RCPT gets it.
	rcptReply *rules.Reply
}

// screen runs postscreen's tests for the connection. It reports false when
// the client was dropped (or left): the session ends without smtpd.
func (s *session) screen() bool {
	p := s.svc.postscreen
	now := time.Now()
	st := &screenState{start: now}
	local, localPort := "unknown", "unknown"
	if la, ok := s.nc.LocalAddr().(*net.TCPAddr); ok {
		local, localPort = la.AddrPort().Addr().Unmap().String(), strconv.Itoa(la.Port)
	}
	s.svc.log.Logf("postscreen", "CONNECT from %s to [%s]:%s", s.screenClient(), local, localPort)

	// The permanent allow/denylist comes first.
	switch s.evalACL(p.access, "postscreen_access_list") {
	case aclPermit:
		s.svc.log.Logf("postscreen", "ALLOWLISTED %s", s.screenClient())
		return true
	case aclReject:
		s.svc.log.Logf("postscreen", "DENYLISTED %s", s.screenClient())
		if !s.screenFail(st, p.denylistAction, "5.3.2", "Service currently unavailable") {
			return false
		}
	}

	// Then the results of earlier sessions.
	e, cached := p.cache.get(s.peer)
	st.entry, st.isNew = e, !cached
	st.pregTodo = !now.Before(e.pregreet)
	st.dnsTodo = p.scorer != nil && !now.Before(e.dnsbl)
	if !st.failed && !st.pregTodo && !st.dnsTodo {
		s.svc.log.Logf("postscreen", "PASS OLD %s", s.screenClient())
		return true
	}
	if !s.earlyTests(st) {
		return false
	}
	if st.failed {
		// Postfix's dummy engine: the smtpd session goes on, but no
		// recipient is accepted. As in Postfix, a failure forgets the
		// tests passed in this session.
		s.screenReply = st.rcptReply
		return true
	}
	if st.pregPass || st.dnsPass {
		p.cache.put(s.peer, st.entry, time.Now())
	}
	if st.pregTodo == st.pregPass && st.dnsTodo == st.dnsPass {
		word := "OLD"
		if st.isNew {
			word = "NEW"
		}
		s.svc.log.Logf("postscreen", "PASS %s %s", word, s.screenClient())
	}
	return true
}

// earlyTests sends the teaser ("220-" and the banner), then waits
// postscreen_greet_wait for the client to talk out of turn, while the DNS
// lists are asked. It reports false when the client was dropped or left.
func (s *session) earlyTests(st *screenState) bool {
	p := s.svc.postscreen
	wait := p.greetWait
	if s.svc.load.stressed() {
		wait = p.greetWaitStressed
	}
	deadline := st.start.Add(wait)
	s.nc.Conn.SetReadDeadline(deadline)
	// The wait ends early when the lists allowlist the client (then the
	// pregreet test is skipped, as Postfix does): the scorer's goroutine
	// brings the read deadline forward, only while the wait lasts.
	var (
		mu      sync.Mutex
		waiting = true
		scored  chan dnsbl.Score
	)
	if st.dnsTodo {
		scored = make(chan dnsbl.Score, 1)
		go func() {
			sc := p.scorer.Score(s.ctx, s.peer)
			scored <- sc
			mu.Lock()
			defer mu.Unlock()
			if waiting && p.scorer.Allowlisted(sc) {
				s.nc.Conn.SetReadDeadline(time.Now())
			}
		}()
	}
	stopWaiting := func() {
		mu.Lock()
		waiting = false
		mu.Unlock()
		s.nc.Conn.SetReadDeadline(time.Time{})
	}
	var data []byte
	var err error
	if st.pregTodo {
		if p.banner != "" {
			_, err = s.nc.Write([]byte("220-" + p.banner + "\r\n"))
		}
		if err == nil {
			data, err = s.nc.waitInput()
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) || err == nil && len(data) == 0 {
			stopWaiting()
			return s.screenHangup(st)
		}
	}
	stopWaiting()
	pregreet := err == nil && len(data) > 0
	if pregreet {
		s.svc.log.Logf("postscreen", "PREGREET %d after %s from %s: %.100s", len(data),
			queue.FormatDelay(time.Since(st.start)), s.screenClient(), escape(string(data)))
		if !s.screenFail(st, p.greetAction, "5.5.1", "Protocol error") {
			return false
		}
	}
	var sc dnsbl.Score
	if scored != nil {
		// The rest of the wait is for the lists; those still asked at its
		// end count as not listing the client, as postscreen's partial
		// score (the scorer keeps their answers for the next time).
		t := time.NewTimer(time.Until(deadline))
		select {
		case sc = <-scored:
		case <-t.C:
			// An answer that came with the deadline still counts.
			select {
			case sc = <-scored:
			default:
			}
		}
		t.Stop()
	}
	now := time.Now()
	if st.pregTodo && !pregreet {
		st.pregPass = true
		st.entry.pregreet = now.Add(p.greetTTL)
	}
	if !st.dnsTodo {
		return true
	}
	if p.scorer.Allowlisted(sc) && !st.failed {
		// The lists vouch for the client: its other tests count as passed
		// for as long as the score is kept.
		st.pregPass = st.pregTodo
		st.entry.pregreet = latest(st.entry.pregreet, now.Add(sc.TTL))
	}
	if !p.scorer.Blocked(sc) {
		st.dnsPass = true
		st.entry.dnsbl = now.Add(sc.TTL)
		return true
	}
	s.svc.log.Logf("postscreen", "DNSBL rank %d for %s", sc.Total, s.screenClient())
	text := fmt.Sprintf("Service unavailable; client [%s] blocked using %s", s.peer, s.replyName(sc.List))
	return s.screenFail(st, p.dnsblAction, "5.7.1", text)
}

// screenFail applies a failed test's action: drop answers 521 and ends the
// connection (false), enforce keeps a 550 for every RCPT; ignore does
// nothing, and the test is repeated next time.
func (s *session) screenFail(st *screenState, a psAction, dsn, text string) bool {
	switch a {
	case psDrop:
		return s.screenDrop("521 " + dsn + " " + text)
	case psEnforce:
		st.failed = true
		st.rcptReply = &rules.Reply{Code: 550, DSN: dsn, Text: text}
	}
	return true
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// replyName is what the reply says of a list: its postscreen_dnsbl_reply_map
// value, so private list names need not be shown, else the list's domain.
func (s *session) replyName(domain string) string {
	for _, t := range s.svc.postscreen.replyMap {
		v, found, err := t.Lookup(s.ctx, domain)
		if err != nil {
			s.svc.log.Logf("postscreen", "warning: postscreen_dnsbl_reply_map lookup error for %s: %v", domain, err)
			break
		}
		if found {
			return v
		}
	}
	return domain
}

// screenDrop sends the final reply and ends the connection.
func (s *session) screenDrop(reply string) bool {
	s.nc.Write([]byte(reply + "\r\n"))
	s.svc.log.Logf("postscreen", "DISCONNECT %s", s.screenClient())
	return false
}

// screenHangup: the client left during the tests.
func (s *session) screenHangup(st *screenState) bool {
	s.svc.log.Logf("postscreen", "HANGUP after %s from %s in tests before SMTP handshake",
		queue.FormatDelay(time.Since(st.start)), s.screenClient())
	s.svc.log.Logf("postscreen", "DISCONNECT %s", s.screenClient())
	return false
}

// screenClient is the client as postscreen logs it: [addr]:port.
func (s *session) screenClient() string {
	return "[" + s.peer.String() + "]:" + strconv.Itoa(s.client.port)
}

// screenRcpt answers a RCPT of an enforced client as postscreen's dummy
// engine does, after the command's syntax was checked.
func (s *session) screenRcpt(to string) {
	r := *s.screenReply
	if s.svc.softBounce && r.Code/100 == 5 {
		r.Code -= 100
		r.DSN = "4" + r.DSN[1:]
	}
	s.svc.log.Logf("postscreen", "NOQUEUE: reject: RCPT from %s: %d %s %s; from=<%s>, to=<%s>, proto=%s, helo=<%s>",
		s.screenClient(), r.Code, r.DSN, r.Text, s.txn.sender, to, s.proto, s.helo)
	s.reply(*s.screenReply)
}

// waitInput waits, until the read deadline, for the client to send
// something, and returns what it sent without consuming it (Postfix's
// MSG_PEEK), so that smtpd reads it afterwards. Empty data and a nil
// error mean the client closed the connection.
func (c *conn) waitInput() ([]byte, error) {
	if c.raw == nil {
		return nil, errors.New("no socket")
	}
	buf := make([]byte, 1024)
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}
