package queue

import (
	"errors"
	"os"
	"time"
)

// Recipient is one envelope recipient with its DSN parameters.
type Recipient struct {
	Addr   string // as given in RCPT TO, without <>
	ORCPT  string // DSN ORCPT "rfc822;addr" raw, "" if none
	Notify string // DSN NOTIFY raw, e.g. "SUCCESS,FAILURE", "NEVER", "" if none
	// Orig is the address as the client gave it, when canonical or alias
	// rewriting changed it (Postfix's original recipient: orig_to= in the
	// log, "expanded from" in bounces); "" when unchanged.
	Orig string
}

// Envelope is what the queue keeps about a message besides its content.
type Envelope struct {
	ID         string
	Sender     string // "" for the null sender
	Recipients []Recipient
	RET        string // "FULL", "HDRS" or ""
	EnvID      string // DSN ENVID, "" if none
	Arrival    time.Time
	// For logs and Received-style reporting.
	ClientName, ClientAddr, Helo, Proto string
	// Filter is the content filter every recipient goes to instead of its
	// own route, "transport:nexthop" (content_filter, the FILTER action);
	// "" for none.
	Filter string
}

// State is the Postfix queue a message would be in.
type State uint8

// The states, named like Postfix's queue directories.
const (
	Active   State = iota // new, or being delivered
	Deferred              // waiting for its next attempt
	Hold                  // put on hold by an admin or a HOLD action
	Corrupt               // its record, or one of its changes, is damaged
)

func (s State) String() string {
	switch s {
	case Active:
		return "active"
	case Deferred:
		return "deferred"
	case Hold:
		return "hold"
	case Corrupt:
		return "corrupt"
	}
	return "unknown"
}

// ChangeKind says what a Change record does. The values are stored in the
// log: never renumber them, only add.
type ChangeKind uint8

// The change kinds. (They carry a prefix because State already owns the
// names Deferred and Hold.)
const (
	ChangeDelivered ChangeKind = 1 // Rcpts delivered
	ChangeDeferred  ChangeKind = 2 // Rcpts deferred until Until, because Reason
	ChangeHold      ChangeKind = 3 // put on hold
	ChangeRelease   ChangeKind = 4 // released from hold (to deferred, like postsuper -H)
	ChangeDelete    ChangeKind = 5 // removed from the queue
	ChangeBounced   ChangeKind = 6 // Rcpts failed for good, because Reason
	ChangeExpire    ChangeKind = 7 // force-expired (postsuper -e): bounce at the next attempt
	ChangeWarned    ChangeKind = 8 // the one delay warning (delay_warning_time) was sent
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeDelivered:
		return "delivered"
	case ChangeDeferred:
		return "deferred"
	case ChangeHold:
		return "hold"
	case ChangeRelease:
		return "release"
	case ChangeDelete:
		return "delete"
	case ChangeBounced:
		return "bounced"
	case ChangeExpire:
		return "expire"
	case ChangeWarned:
		return "warned"
	}
	return "unknown"
}

// Change is a state change for one message.
type Change struct {
	Kind   ChangeKind
	Rcpts  []int     // recipient indexes (Delivered, Deferred, Bounced); nil = all
	Until  time.Time // Deferred: next attempt
	Reason string
}

// Message is a queued message as the index knows it: envelope and state,
// never the content (see Content).
type Message struct {
	Envelope
	State   State
	Size    int64    // content bytes
	Done    []bool   // per recipient: delivered or bounced
	Reasons []string // per recipient: last delay or bounce reason
	NextTry time.Time
	Expired bool   // force-expired (postsuper -e)
	Warned  bool   // the delay warning was sent
	Damage  string // Corrupt: which record is damaged, and where
}

// Damage counts what reading the log found damaged: Records, records named
// by their queue ID (each logged, and its message put in the corrupt queue
// when it is still queued); Bytes, damaged bytes no record header vouched
// for, dropped unnamed. A segment cut inside a record names that record;
// what was written after it, if anything, cannot be named (the log says
// so). Records+Bytes > 0 is what an alert on queue damage watches.
type Damage struct {
	Records int
	Bytes   int64
}

// Syncer makes a file's written data durable. The Store calls it for
// segment files after writing and for the log directory after creating a
// segment. The default is fdatasync (fsync for the directory).
type Syncer interface {
	Sync(f *os.File) error
}

// Options configure a Store.
type Options struct {
	Syncer      Syncer                           // nil = fdatasync
	SegmentSize int64                            // roll to a new segment after this many bytes; 0 = 64 MiB
	Logf        func(format string, args ...any) // warnings (damaged records, corrupt); nil = discard
	LongIDs     bool                             // enable_long_queue_ids
	// MinFree (queue_minfree) and SizeLimit (message_size_limit, 0 = none)
	// set how much free space Append and AppendHeld leave: they fail with
	// ErrNoSpace, as Postfix's smtpd refuses MAIL, while the file system
	// has no more than MinFree bytes free, or no more than 1.5 times
	// SizeLimit. Zero for both refuses only when no block is free.
	MinFree, SizeLimit int64
}

// DefaultSegmentSize is the segment size when Options.SegmentSize is 0.
const DefaultSegmentSize = 64 << 20

// maxSegmentSize bounds Options.SegmentSize: every record then starts at
// an offset that fits the index's 32 bits (a record starts a new segment
// rather than cross the size, unless it is the first).
const maxSegmentSize = 1 << 32

// Errors returned by the Store.
var (
	ErrNotFound = errors.New("queue: no such message")
	ErrExists   = errors.New("queue: queue ID already in use")
	ErrClosed   = errors.New("queue: store is closed")
	ErrLocked   = errors.New("queue: directory is in use by another process")
	ErrCorrupt  = errors.New("queue: damaged record")
	// ErrNoSpace: the queue's file system is too full for a new message
	// (Options.MinFree), or a write failed with ENOSPC or EDQUOT. Unlike
	// other write errors it does not stop the Store: the record was not
	// written, and later ones are, once there is space again.
	ErrNoSpace = errors.New("queue: not enough free space in mail queue")
)
