package relay

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"slices"
	"time"
)

// delivery is the state of one Deliver call.
type delivery struct {
	t     *SMTP
	m     *Message
	ctx   context.Context
	start time.Time
	setup time.Time // when the current session was ready for MAIL; zero before
	res   []Result
	done  []bool // the recipient's result is final
	noted []bool // res holds a soft reason to report if nothing better comes
	left  int    // recipients not done
	stop  bool   // a local problem: try no other server

	content      io.Reader
	contentUsed  bool
	contentStart int64
	contentSeek  error
}

// Deliver sends one message to one next hop and returns one Result per
// recipient, in order. It tries a cached session first, then the next
// hop's servers in turn, as Postfix's smtp(8) does.
func (t *SMTP) Deliver(ctx context.Context, m *Message) []Result {
	d := &delivery{
		t: t, m: m, ctx: ctx, start: time.Now(),
		res:     make([]Result, len(m.Recipients)),
		done:    make([]bool, len(m.Recipients)),
		noted:   make([]bool, len(m.Recipients)),
		left:    len(m.Recipients),
		content: m.Content,
	}
	if d.content == nil {
		d.content = eofReader{}
	}
	if d.left == 0 {
		return d.res
	}
	dests, err := parseNexthop(m.Nexthop, t.opts.Port)
	if err != nil {
		d.failOpen(softFail("4.3.5", "%s", err.Error()), "none", 0, true)
		return d.res
	}
	if t.opts.Generic != nil {
		out, f := d.genericEnvelope(m)
		if f != nil {
			d.failOpen(f, "none", 0, true)
			return d.res
		}
		d.m = out
	}

	var used []netip.AddrPort // servers a cached session already tried
	sessions := 0
	if t.opts.ConnectionReuse {
		for d.left > 0 && !d.stop && ctx.Err() == nil {
			s := t.cache.take(m.Nexthop)
			if s == nil {
				break
			}
			d.setup = time.Time{}
			stop := context.AfterFunc(ctx, s.c.cancel)
			// A server that pipelines gets the RSET probe in the flight
			// with MAIL, RCPT and DATA (transact): the same check, without
			// a round trip of its own per message.
			if !s.pipelining && !s.probe() {
				stop()
				s.broken = true
				s.quit()
				continue
			}
			retry := d.transact(s, s.pipelining, false)
			if !stop() {
				s.broken = true
			}
			t.release(m.Nexthop, s)
			if retry {
				continue
			}
			used = append(used, s.addr)
			sessions++
			break
		}
	}

	if d.left > 0 && !d.stop && ctx.Err() == nil {
		d.tryServers(dests, used, sessions, len(t.fallback) == 0, false)
	}
	// smtp_fallback_relay: tried when recipients are left after the next
	// hop's servers answered no better than a soft error, or it could
	// not be found (smtp_connect.c). Its sessions are not cached under
	// the next hop, so the next message tries the next hop first.
	if len(t.fallback) > 0 && d.left > 0 && !d.stop && ctx.Err() == nil {
		d.tryServers(t.fallback, nil, 0, true, true)
	}
	d.finishRest()
	return d.res
}

// tryServers delivers to the servers of dests in turn, less those a
// cached session already tried, after sessions such sessions. final says
// no fallback relay follows: a soft failure at the last server is final.
// fallback says dests is smtp_fallback_relay.
func (d *delivery) tryServers(dests []destination, used []netip.AddrPort, sessions int, final, fallback bool) {
	t, ctx, m := d.t, d.ctx, d.m
	servers, f := t.resolve(ctx, dests)
	if f != nil {
		switch {
		case !final:
			d.keep(f)
		case fallback && f.status == Bounced:
			// A fallback relay that cannot be found is a configuration
			// problem: the mail waits (smtp_connect.c).
			t.logf("", "warning: smtp_fallback_relay configuration problem")
			d.failOpen(softFail("4.3.5", "%s", f.reason), "none", 0, true)
		default:
			d.failOpen(f, "none", 0, true)
		}
		return
	}
	servers = slices.DeleteFunc(servers, func(s server) bool { return slices.Contains(used, s.addr) })
	limit := t.opts.MXSessionLimit
	for i, srv := range servers {
		if d.left == 0 || d.stop || ctx.Err() != nil || limit > 0 && sessions >= limit {
			break
		}
		last := final && i == len(servers)-1
		d.setup = time.Time{}
		pol, f := t.tlsPolicyFor(ctx, srv.dest)
		if f != nil {
			d.failOpen(f, "none", 0, last)
			continue
		}
		s, stop, relay, f := d.open(srv, pol)
		if f == errTLSHandshake && pol.level == TLSMay && d.plaintextRetryOK(srv) {
			// As Postfix: an opportunistic session whose handshake
			// failed is tried again in clear text, unless it was to
			// log in.
			plain := *pol
			plain.level = TLSNone
			s, stop, relay, f = d.open(srv, &plain)
		}
		if f != nil {
			d.failOpen(f, relay, 0, last)
			continue
		}
		sessions++
		d.transact(s, false, last || limit > 0 && sessions >= limit && final)
		if !stop() {
			s.broken = true
		}
		if fallback {
			s.quit()
		} else {
			t.release(m.Nexthop, s)
		}
	}
}

// keep gives the recipients not done f's reason as a deferral, to report
// if nothing better comes: a next hop that could not be found, before the
// fallback relay is tried.
func (d *delivery) keep(f *failure) {
	for i := range d.res {
		if !d.done[i] {
			d.set(i, Deferred, "4"+f.dsn[1:], f.reason, f.remote, "none", 0)
			d.noted[i] = true
		}
	}
}

// open connects to srv and greets it, with TLS as pol says; stop ends the
// session's tie to the delivery's context. On failure the connection is
// closed and relay names it for the log ("none" before it was open).
func (d *delivery) open(srv server, pol *tlsPolicy) (s *session, stop func() bool, relay string, f *failure) {
	s, f = d.t.connect(d.ctx, srv)
	if f != nil {
		return nil, nil, "none", f
	}
	stop = context.AfterFunc(d.ctx, s.c.cancel)
	f = s.handshake(d.ctx, srv, pol)
	if f == nil {
		f = d.login(s, srv)
	}
	if f != nil {
		stop()
		s.quit()
		return nil, nil, s.namaddrport, f
	}
	return s, stop, s.namaddrport, nil
}

func (t *SMTP) logf(queueID, text string) {
	if t.opts.Log == nil {
		return
	}
	if queueID != "" {
		text = queueID + ": " + text
	}
	t.opts.Log(text)
}

// times splits the time so far into connection setup and transmission,
// as Postfix's delays=a/b/c/d does: before the session was ready for MAIL
// everything is setup.
func (d *delivery) times() (conn, xfer time.Duration) {
	now := time.Now()
	if d.setup.IsZero() {
		return now.Sub(d.start), 0
	}
	return d.setup.Sub(d.start), now.Sub(d.setup)
}

func (d *delivery) set(i int, st Status, dsn, reason string, remote *Reply, relay string, connUse int) {
	conn, xfer := d.times()
	d.res[i] = Result{Status: st, DSN: dsn, Reply: reason, Remote: remote, Relay: relay, Conn: conn, Xfer: xfer, ConnUse: connUse}
}

// finish gives recipient i its final result.
func (d *delivery) finish(i int, st Status, dsn, reason string, remote *Reply, relay string, connUse int) {
	if d.done[i] {
		return
	}
	d.set(i, st, dsn, reason, remote, relay, connUse)
	d.done[i] = true
	d.left--
}

// fail applies f to the recipients ids: a hard failure, or a soft one at
// the final server, is final; a soft one elsewhere keeps the recipients
// for the next server, and is logged once, as Postfix's smtp logs why it
// moves on (smtp_trouble.c).
func (d *delivery) fail(ids []int, f *failure, relay string, connUse int, final bool) {
	kept := false
	for _, i := range ids {
		if d.done[i] {
			continue
		}
		if f.status == Bounced || final {
			d.finish(i, f.status, f.dsn, f.reason, f.remote, relay, connUse)
			continue
		}
		d.set(i, Deferred, f.dsn, f.reason, f.remote, relay, connUse)
		d.noted[i] = true
		kept = true
	}
	if kept {
		id := d.m.QueueID
		if relay == "none" {
			id = "" // "connect to ...", logged without a queue ID
		}
		d.t.logf(id, f.reason)
	}
}

// failOpen applies f to every recipient not done.
func (d *delivery) failOpen(f *failure, relay string, connUse int, final bool) {
	var ids []int
	for i := range d.res {
		if !d.done[i] {
			ids = append(ids, i)
		}
	}
	d.fail(ids, f, relay, connUse, final)
}

// finishRest defers what is left with the last reason it got.
func (d *delivery) finishRest() {
	for i := range d.res {
		if d.done[i] {
			continue
		}
		if !d.noted[i] {
			f := softFail("4.4.2", "delivery to %s interrupted", d.m.Nexthop)
			if errors.Is(d.ctx.Err(), context.DeadlineExceeded) {
				f = softFail("4.4.2", "delivery to %s timed out", d.m.Nexthop)
			}
			d.set(i, Deferred, f.dsn, f.reason, nil, "none", 0)
		}
		d.done[i] = true
		d.left--
	}
}

// canSend reports whether the content can be sent (again).
func (d *delivery) canSend() bool {
	if !d.contentUsed {
		return true
	}
	_, ok := d.content.(io.Seeker)
	return ok && d.contentSeek == nil
}

// rewind positions the content at its start for one more transmission.
func (d *delivery) rewind() error {
	sk, seekable := d.content.(io.Seeker)
	if !d.contentUsed {
		d.contentUsed = true
		if seekable {
			d.contentStart, d.contentSeek = sk.Seek(0, io.SeekCurrent)
		}
		return nil
	}
	if !seekable {
		return errors.New("content cannot be read twice")
	}
	if d.contentSeek != nil {
		return d.contentSeek
	}
	_, err := sk.Seek(d.contentStart, io.SeekStart)
	return err
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
