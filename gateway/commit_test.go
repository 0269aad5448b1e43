package gateway

import (
	"context"
	"fmt"
	"io"

	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"postgate/gateway/config"
)

// blockingSyncer holds every fsync until the test releases it, and records
// in order when each sync returned.
type blockingSyncer struct {
	armed   chan struct{} // closed once the test wants syncs held
	entered chan struct{}
	release chan struct{}
	events  *eventLog
}

func (b *blockingSyncer) Sync(f *os.File) error {
	select {
	case <-b.armed:
	default:
		return f.Sync()
	}
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
	err := f.Sync()
	b.events.add("sync returned")
	return err
}

type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// startGateway runs a gateway in-process on a loopback port.
func startGateway(t testing.TB, extraMain string, opts Options) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	// The resolver asks a loopback port where nothing answers: never the
	// machine's DNS server.
	main := fmt.Sprintf("myhostname = mx.gateway.test\nmynetworks = 127.0.0.1/32\nrelay_domains = relay.test\n"+
		"postgate_dns_servers = 127.0.0.1:1\nqueue_directory = %s/queue\n%s", dir, extraMain)
	master := addr + " inet n - n - - smtpd\n"
	cfg, err := config.Parse(dir+"/main.cf", []byte(main), dir+"/master.cf", []byte(master))
	if err != nil {
		t.Fatal(err)
	}
	if opts.LogOutput == nil {
		opts.LogOutput = io.Discard
	}
	g, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := g.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return addr
}

// sendPlain sends one message over plain SMTP (smtp.SendMail insists on TLS).
func sendPlain(addr, from, to, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(from, []string{to}, strings.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

// TestNo250BeforeSync: through a real SMTP session, the 250 after DATA is
// not sent before the fsync that covers the message's record returns.
func TestNo250BeforeSync(t *testing.T) {
	events := &eventLog{}
	syncer := &blockingSyncer{armed: make(chan struct{}), entered: make(chan struct{}, 16),
		release: make(chan struct{}), events: events}
	addr := startGateway(t, "", Options{Syncer: syncer})
	close(syncer.armed)

	const n = 3
	replies := make(chan string, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			err := sendPlain(addr, "a@src.test", "u@relay.test", fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i))
			if err != nil {
				replies <- "error: " + err.Error()
				return
			}
			events.add("250 received")
			replies <- "250"
		}(i)
	}
	select {
	case <-syncer.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no fsync started after DATA")
	}
	// While the sync is held no client may see its 250.
	select {
	case r := <-replies:
		t.Fatalf("reply %q reached the client while the covering fsync was blocked", r)
	case <-time.After(300 * time.Millisecond):
	}
	close(syncer.release)
	for i := 0; i < n; i++ {
		if r := <-replies; r != "250" {
			t.Fatalf("client: %s", r)
		}
	}
	// Every 250 comes after a sync returned; with the first sync held, the
	// first 250 cannot precede it.
	ev := events.list()
	if len(ev) == 0 || ev[0] != "sync returned" {
		t.Errorf("events in order: %v", ev)
	}
}
