// Package greylist keeps the state postgate shares about who it has seen:
// greylisting triplets and the clients they allowlist, the counters of
// rate and connection limits (limit.go) and the address verification cache
// (verify.go), in a Store that is embedded in memory (one node) or Redis
// (single server, Sentinel or Cluster, shared by every node behind one MX).
//
// A check is one atomic operation on the store, so a Redis store answers
// it in one round trip (a Lua script) and two nodes racing on the same
// triplet see one consistent history.
package greylist

import (
	"context"
	"net/netip"
	"strings"
	"time"
)

// Store keeps greylisting state and rate counters with expiry.
// Implementations are safe for concurrent use.
type Store interface {
	Limiter
	VerifyCache
	// Greylist records one attempt of the triplet k at now under policy p,
	// atomically, and says what the attempt is (see Status). Records
	// expire by themselves: a pending triplet after p.Delay+p.RetryWindow,
	// a passed triplet and a client's pass count p.Lifetime after they
	// were last seen.
	Greylist(ctx context.Context, k Key, now time.Time, p Policy) (Result, error)
	// Close releases connections; the store is unusable afterwards.
	Close() error
}

// Policy is how long triplets wait and are kept (postgrey's --delay,
// --retry-window, --max-age, --auto-whitelist-clients).
type Policy struct {
	Delay       time.Duration // a retry is accepted no sooner than this after the first attempt
	RetryWindow time.Duration // ... and no later than Delay+RetryWindow, else it starts over
	Lifetime    time.Duration // a passed triplet and a client's pass count live this long unseen
	// AutoAllowClients: a client network that passed this many triplets
	// is no longer greylisted (0: never).
	AutoAllowClients int
}

// Key names one triplet: the client network and the envelope addresses.
type Key struct {
	Client    string // client network, "198.51.100.0/24"
	Sender    string // lowercased, "" for the null sender
	Recipient string // lowercased
}

// NewKey makes the key of an attempt: the client address masked to
// ipv4Prefix or ipv6Prefix bits (IPv4-mapped IPv6 counts as IPv4), and the
// addresses lowercased as postgrey does.
func NewKey(client netip.Addr, ipv4Prefix, ipv6Prefix int, sender, recipient string) Key {
	client = client.Unmap().WithZone("")
	bits := ipv6Prefix
	if client.Is4() {
		bits = ipv4Prefix
	}
	net, err := client.Prefix(bits)
	name := net.String()
	if err != nil {
		name = client.String()
	}
	return Key{Client: name, Sender: strings.ToLower(sender), Recipient: strings.ToLower(recipient)}
}

// tripletKey and clientKey are the store keys of a check. The client
// network is their Redis Cluster hash tag, so both live in one slot and
// one script can touch them.
func (k Key) tripletKey() string {
	return "postgate:gl:{" + k.Client + "}:" + k.Sender + "\x00" + k.Recipient
}

func (k Key) clientKey() string { return "postgate:gl-client:{" + k.Client + "}" }

// Status is what an attempt is.
type Status int

const (
	// New: the triplet was not known (or its retry came too late); it is
	// recorded and greylisted.
	New Status = iota
	// TooEarly: a retry before the delay; greylisted again, the first
	// attempt's time is kept.
	TooEarly
	// Passed: the first retry after the delay, within the retry window.
	Passed
	// Known: the triplet passed before; its record is refreshed.
	Known
	// AllowedClient: the client network passed AutoAllowClients triplets.
	AllowedClient
)

func (s Status) String() string {
	switch s {
	case New:
		return "new"
	case TooEarly:
		return "early-retry"
	case Passed:
		return "pass"
	case Known:
		return "known"
	case AllowedClient:
		return "client-allowlisted"
	}
	return "unknown"
}

// Result is the answer to one attempt.
type Result struct {
	Status Status
	// FirstSeen is the time of the triplet's first attempt (not set for
	// AllowedClient).
	FirstSeen time.Time
	// ClientPasses is the client network's pass count after a Passed
	// attempt, or its count when AllowedClient.
	ClientPasses int
}

// Greylisted reports whether the attempt must be deferred.
func (r Result) Greylisted() bool { return r.Status == New || r.Status == TooEarly }
