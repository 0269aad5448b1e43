package gateway

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postgate/gateway/config"
	"postgate/rules"
)

// screenFor builds the postscreen of a main.cf and a session of a client
// at addr, logging into the returned builder.
func screenFor(t *testing.T, mainCf string, addr string) (*session, *strings.Builder) {
	t.Helper()
	cfg, err := config.Parse("main.cf", []byte("mynetworks = 127.0.0.1/32\n"+mainCf), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	log, err := OpenMailLog("", &out, "postgate", "h")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	svc := cfg.Services()[0]
	mynetworks, err := rules.NewAddrList(cfg.List("mynetworks"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPostscreen(cfg.ForService(svc), cfg.Stressed(svc), newTableCache(nil, rules.CacheOptions{}), nil, mynetworks, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &session{svc: &service{postscreen: p, log: log}, ctx: context.Background(), peer: netip.MustParseAddr(addr)}
	return s, &out
}

// TestPostscreenAccessList: postscreen_access_list as Postfix's
// server_acl_eval: the first permit or reject wins, a table's value is a
// list of words, and what a table may not say ends the list, with a warning.
func TestPostscreenAccessList(t *testing.T) {
	cidr := filepath.Join(t.TempDir(), "acl.cidr")
	os.WriteFile(cidr, []byte("127.0.0.5 reject\n127.0.0.6 dunno\n127.0.0.1 permit_mynetworks\n127.0.0.8 cidr:/x, reject\n127.0.0.10 bogus\n127.0.0.0/8 permit\n"), 0o644)
	for _, tc := range []struct {
		name, list, addr string
		want             aclResult
		warning          string
	}{
		{"mynetworks", "permit_mynetworks", "127.0.0.1", aclPermit, ""},
		{"not mynetworks", "permit_mynetworks", "127.0.0.2", aclDunno, ""},
		{"table reject", "cidr:" + cidr, "127.0.0.5", aclReject, ""},
		{"table dunno ends the table only", "cidr:" + cidr + ", reject", "127.0.0.6", aclReject, ""},
		{"table dunno", "cidr:" + cidr, "127.0.0.6", aclDunno, ""},
		{"permit_mynetworks in a table", "cidr:" + cidr, "127.0.0.1", aclPermit, ""},
		{"a table in a table ends the table", "cidr:" + cidr + ", reject", "127.0.0.8", aclReject, `warning: table cidr:` + cidr + `: lookup result "cidr:/x" is not allowed -- ignoring remainder of access list`},
		{"an unknown word ends the list", "cidr:" + cidr + ", reject", "127.0.0.10", aclError, `warning: cidr:` + cidr + `: unknown command: bogus -- ignoring the remainder of this access list`},
		{"table permit", "cidr:" + cidr, "127.0.0.9", aclPermit, ""},
		{"mynetworks first", "permit_mynetworks, reject", "127.0.0.1", aclPermit, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, out := screenFor(t, "postscreen_access_list = "+tc.list+"\n", tc.addr)
			if got := s.evalACL(s.svc.postscreen.access, "postscreen_access_list"); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			s.svc.log.Close()
			if tc.warning != "" && !strings.Contains(out.String(), tc.warning) {
				t.Errorf("log %q lacks %q", out.String(), tc.warning)
			}
		})
	}
}

// A word postscreen_access_list does not know is a load error.
func TestPostscreenAccessListWord(t *testing.T) {
	cfg, err := config.Parse("main.cf", []byte("postscreen_access_list = permit_mynetworks, permit_sasl\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := cfg.Services()[0]
	_, err = newPostscreen(cfg.ForService(svc), cfg.Stressed(svc), newTableCache(nil, rules.CacheOptions{}), nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "main.cf:1: parameter postscreen_access_list: unknown command: permit_sasl") {
		t.Errorf("got %v", err)
	}
}

// The cache keeps what it can: when full, expired clients make room, and
// a new client is not kept while none has expired.
func TestPostscreenCacheBound(t *testing.T) {
	c := &psCache{m: map[netip.Addr]psEntry{}}
	now := time.Now()
	base := netip.MustParseAddr("10.0.0.0")
	a := base
	for i := 0; i < psCacheSize; i++ {
		until := now.Add(time.Hour)
		if i == 7 {
			until = now.Add(-time.Second)
		}
		c.put(a, psEntry{pregreet: until}, now)
		a = a.Next()
	}
	c.put(a, psEntry{pregreet: now.Add(time.Hour)}, now)
	if _, ok := c.get(a); !ok {
		t.Errorf("no room made from the expired client")
	}
	b := a.Next()
	c.put(b, psEntry{pregreet: now.Add(time.Hour)}, now)
	if _, ok := c.get(b); ok || len(c.m) != psCacheSize {
		t.Errorf("cache grew past its bound: %d", len(c.m))
	}
}
