package greylist

import (
	"context"
	"time"
)

// Limiter counts, for rate and count limits (Postfix's anvil and
// postgate's per-sender limits), the open connections of a name and its
// events in a sliding window. A check is one atomic operation, so the
// nodes sharing a Redis store never let more through than the limit.
// Implementations are safe for concurrent use.
//
// Only what is let through counts: a refused connection or event is not
// recorded, so a client that keeps trying past its limit still gets
// Limit events through per window, as Postfix's fixed anvil windows let it
// at each window's start.
type Limiter interface {
	// Connect opens a connection of name when its open connections are
	// fewer than l.Count and the connections it opened in the last
	// l.Rate.Per fewer than l.Rate.N (a zero limit does not apply), and
	// records it; otherwise it records nothing and says which limit
	// refused it.
	Connect(ctx context.Context, name string, l ConnLimits) (Conn, error)
	// Disconnect ends a connection that Connect let through.
	Disconnect(ctx context.Context, c Conn) error
	// Event records an event of name when fewer than l.N were recorded
	// in the last l.Per.
	Event(ctx context.Context, name string, l Rate) (Count, error)
}

// Rate is a limit of N events per sliding window Per.
type Rate struct {
	N   int
	Per time.Duration
}

// ConnLimits are the limits of Connect: open connections (Postfix's
// smtpd_client_connection_count_limit) and connections opened per window
// (smtpd_client_connection_rate_limit per anvil_rate_time_unit).
type ConnLimits struct {
	Count int
	Rate  Rate
}

// Count is the answer to Event.
type Count struct {
	Allowed bool
	// N, when refused: the events in the window, this one included (the
	// number Postfix's rate warnings log).
	N int
}

// Conn is the answer to Connect, and the handle Disconnect takes.
type Conn struct {
	Allowed bool
	// Over names the limit that refused the connection, in Postfix's
	// words: "concurrency" or "rate".
	Over string
	// N, when refused: the open connections or the connections in the
	// window, this one included.
	N int

	name  string
	lease string // "" when no count limit applies: nothing to end
}

// connKey and rateKey are the Redis keys of a name: its open connections'
// leases and the times of its connections or events. The name is their
// Cluster hash tag, so the keys of one check live in one slot.
func connKey(name string) string { return "postgate:conn:{" + name + "}" }
func rateKey(name string) string { return "postgate:rate:{" + name + "}" }
