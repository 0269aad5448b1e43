package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"postgate/queue"
	"postgate/rules/addrheader"
)

// pickupInterval is how often the maildrop is scanned without a trigger
// (Postfix's pickup wakes every 60 s).
const pickupInterval = 60 * time.Second

// runPickup moves maildrop files into the queue until ctx ends: at start,
// every pickupInterval, and whenever trigger fires (postgate sendmail asks
// through the control socket). Messages go through the first smtpd
// service's cleanup stages (content checks, canonical and virtual
// rewriting) but not its smtpd restrictions, as Postfix's pickup feeds
// cleanup directly.
func (g *Gateway) runPickup(ctx context.Context, trigger <-chan struct{}) {
	dir, err := ensureMaildrop(g.cfg.Get("queue_directory"))
	if err != nil {
		g.log.Logf("pickup", "warning: %v", err)
		return
	}
	tick := time.NewTicker(pickupInterval)
	defer tick.Stop()
	for {
		g.pickupAll(ctx, dir)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-trigger:
		}
	}
}

func (g *Gateway) pickupAll(ctx context.Context, dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		g.log.Logf("pickup", "warning: %s: %v", dir, err)
		return
	}
	g.reloadMu.Lock()
	var svc *service
	if len(g.services) > 0 {
		svc = g.services[0]
	}
	g.reloadMu.Unlock()
	if svc == nil {
		return // no smtpd service: nothing to run cleanup's stages with
	}
	for _, e := range ents { // in name order: arrival order
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() || ctx.Err() != nil {
			continue
		}
		path := filepath.Join(dir, e.Name())
		uid := -1
		if info, err := e.Info(); err == nil {
			uid = fileUID(info)
		}
		svc.pickup(ctx, path, uid)
	}
}

// pickup queues one maildrop file and removes it. A file that cannot be
// read as a submission, or whose message cleanup refuses for good, moves
// to postdrop/rejected for the admin; one refused for now stays for the
// next scan.
func (svc *service) pickup(ctx context.Context, path string, uid int) {
	d, content, err := readDrop(path, svc.messageSizeLimit)
	if err != nil {
		svc.log.Logf("pickup", "warning: %s: %v: moved to %s", path, err, MaildropDir+"/rejected")
		setAside(path)
		return
	}
	arrival := time.Now()
	s := &session{svc: svc, ctx: ctx, cancel: func() {}, proto: "local", where: "END-OF-MESSAGE",
		client: clientInfo{name: "localhost", reverse: "localhost", addr: netip.AddrFrom4([4]byte{127, 0, 0, 1})}, local: true}
	s.peer = s.client.addr
	s.txn.id = svc.store.NewID()
	s.txn.sender = qualify(d.Sender, svc.virtual.myorigin)
	s.txn.fullName = d.FullName
	for _, r := range d.Recipients {
		// Postfix's cleanup keeps the address as submitted as the
		// original recipient (orig_to=, ORCPT).
		s.txn.rcpts = append(s.txn.rcpts, queue.Recipient{Addr: qualify(r, svc.virtual.myorigin), Orig: r})
	}
	s.txn.active = true
	if uid < 0 {
		uid = d.UID
	}
	svc.log.Logf("pickup", "%s: uid=%d from=<%s>", s.txn.id, uid, d.Sender)

	refused := s.localMilters()
	if s.milters != nil {
		defer s.milters.Close()
	}
	if refused != nil {
		s.lastReply = refused
		svc.pickupRefused(s, path)
		return
	}
	msg := newAssembly(svc.budget, svc.spoolDir)
	defer msg.release()
	msg.buf = fmt.Appendf(msg.buf, "Received: by %s (%s, from userid %d)\r\n\tid %s; ", svc.hostname, svc.mailName, uid, s.txn.id)
	msg.buf = append(arrival.AppendFormat(msg.buf, mailDateLayout), "\r\n"...)
	msg.start = len(msg.buf)
	if _, err := msg.readFrom(bytes.NewReader(localContent(content)), 0); err != nil {
		svc.log.Logf("pickup", "warning: %s: %v", s.txn.id, err)
		return
	}
	if s.finishMessage(msg, arrival) {
		if err := os.Remove(path); err != nil {
			svc.log.Logf("pickup", "warning: %s: remove %s: %v", s.txn.id, path, err)
		}
		return
	}
	svc.pickupRefused(s, path)
}

// pickupRefused handles a maildrop message cleanup refused: set aside
// when for good (5xx), left for the next scan when for now.
func (svc *service) pickupRefused(s *session, path string) {
	if r := s.lastReply; r != nil && r.Code/100 == 5 {
		svc.log.Logf("pickup", "warning: %s: %s: message rejected: %s: moved to %s", s.txn.id, path, r, MaildropDir+"/rejected")
		setAside(path)
	}
}

// setAside moves a maildrop file the daemon will not queue to
// postdrop/rejected, where only the admin sees it.
func setAside(path string) {
	dir := filepath.Join(filepath.Dir(path), "rejected")
	os.MkdirAll(dir, 0o700)
	os.Rename(path, filepath.Join(dir, filepath.Base(path)))
}

// qualify appends @origin to an address without a domain, as Postfix's
// trivial-rewrite does for locally submitted mail.
func qualify(addr, origin string) string {
	if addr == "" {
		return ""
	}
	return addrheader.Qualify(addr, addr, origin)
}

// localContent is a submitted message as cleanup queues it: CRLF line
// ends, and an empty line after the header section when a body follows
// it without one. The header section is the leading lines that are
// header fields or their continuations. (The headers cleanup adds to
// local mail that lacks them come later: missingheaders.go.)
func localContent(b []byte) []byte {
	b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	end := 0 // of the header section
	for end < len(b) {
		line, _, _ := bytes.Cut(b[end:], []byte("\r\n"))
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') && end > 0 {
			end += len(line) + 2
			continue
		}
		if _, _, ok := addrheader.SplitHeader(string(line)); !ok {
			break
		}
		end = min(end+len(line)+2, len(b))
	}
	var sep []byte
	rest := b[end:]
	if end > 0 && !bytes.HasSuffix(b[:end], []byte("\r\n")) {
		sep = []byte("\r\n") // the last header line had no line end
	}
	if len(rest) > 0 && !bytes.HasPrefix(rest, []byte("\r\n")) {
		sep = append(sep, '\r', '\n')
	}
	return slices.Concat(b[:end], sep, rest)
}

// fileUID is the owner of a maildrop file: who submitted it.
func fileUID(info os.FileInfo) int {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
