// Package queue is postgate's durable mail queue: a segmented, append-only,
// group-committed log of message and state-change records, the in-memory
// index rebuilt from it at start, Postfix-shaped queue IDs, and the
// mailq / postqueue -j views of it.
//
// # Memory: the queue at scale
//
// An internal server down for a day leaves a gateway a million deferred
// messages. While a queue manager runs, memory holds only what its
// schedule needs now, as Postfix's active queue holds only what
// qmgr_message_active_limit lets in: the messages being delivered, up
// to as many again due first (before the horizon: the next queue run
// plus a minimal backoff, sched.go), those deferred or held since
// parking last ran, and corrupt ones; and, for the deferred and held
// backlog, a summary per segment. Each queue run parks on disk the
// messages due after the horizon, the deferred ones the heap holds
// beyond the limit (an outage defers the whole inflow to a backoff from
// now, before the horizon), and the held ones (park.go): their state
// (ID, place, lengths, next try, recipients' done and reasons, flags) goes to a
// state file per segment of their records, DIR/log/NNN.park, and memory
// keeps per segment their count, bytes by state, earliest next try and
// a Bloom filter of their IDs (10 bits a message: 1.5 bytes a parked
// message in all, 1.5 MB for a million, where the index took 97 MB).
// Held ones stay there until released. A queue run reads back, earliest
// first, the messages due before the new horizon until the schedule's
// heap holds qmgr_message_active_limit of them, and writes back the
// rest of each file it reads; when the heap runs low, more come in, and
// when twice the limit have been deferred since parking last ran, they
// go to disk without waiting for the next queue run. In an outage, then,
// memory holds a few times the active queue's limit, however long the
// backlog and however fast it arrives, or however much of it is due when
// a manager starts (TestParkedActiveLimit, TestParkedOutageInflow,
// TestParkedDueAtStart).
//
// What finds a message by ID finds a parked one: the filters say which
// files may hold it, and reads (Get, Content, Append's check that an ID
// is new) look into those files; a change (Change, postsuper
// -d/-h/-H/-r/-e through Admin) first brings the message's whole segment
// back into memory, where changes apply, until the next queue run.
// NewID skips an ID any filter may hold. Listings (List: mailq, postqueue
// -j, qshape) and Counts read or add up the files; ETRN, requeue and
// postqueue -f bring back the files holding what they make due.
// Compaction brings back the segments it copies forward (queue runs
// leave them in memory meanwhile); a segment holding parked messages has
// live ones, so it is never deleted under them. Expiry needs nothing
// more: a parked message comes back before its next try, at most
// maximal_backoff_time away, and its attempt returns it when its
// lifetime is over; a held one comes back when it is released, and is
// returned then, as before.
//
// A state file is derived data, never the truth: a message's state
// changes only in memory, after its record is durable, and it is in
// memory before any record about it is placed in the log, so a file
// says what the log says. Files are not synced: each holds only for the
// Store that wrote it (a generation in its header), Open deletes them
// all, and a file that is damaged, stale or missing when read is not
// used: its messages' state is rebuilt from the log (the whole log
// replayed, as a snapshot does: slow, and never expected).
//
// Without a running queue manager nothing is parked: a restart reads the
// log as it did, the index holding every message (97 bytes each, 92 MB
// for a million: a 64-byte entry, index.go, its ID and an ID-table
// slot, idtable.go), until the manager's start parks the backlog again.
// Envelopes stay on disk throughout: the queue manager reads a
// message's when it takes it, and listings and ETRN read them too, a
// sealed segment's from its index file in one read (envelope.go); a
// record found damaged only then, after Open trusted its segment's
// index file, puts its message in the corrupt queue like damage found at
// Open. A restart replays the sealed segments' index files (segindex.go),
// never their bodies: 3 to 5 CPU-seconds for a million messages.
//
// Not bounded yet: a restart's peak (above), and what ETRN or postqueue
// -f make due at once, which all waits in the schedule's heap, not only
// up to qmgr_message_active_limit.
// Parking takes the Store's lock for one segment's state file at a time
// (parking a million messages takes 4 s, and appends wait 0.35 s at
// most, BenchmarkQueueAtScale), but ETRN, postqueue -f and listings read
// every file they need under it.
//
// # Why a log
//
// A message is acknowledged (250 after DATA) only once it is on disk and
// fsync'd. One file per message costs one fsync each (~1.3 ms here); one log
// shared by every session lets a single fdatasync cover every record appended
// since the last one (group commit), which is what makes thousands of
// acknowledgements per second possible on one disk. A "delivered" record
// starts no sync of its own: it waits up to 2 ms for the next message's
// (commit.go), so a steady flow costs one sync per message, not two; a
// crash of the machine in that time costs a second delivery, as Postfix's
// unsynced unlink of a delivered queue file does.
//
// # Layout
//
//	DIR/lock                     flock'd by the one Store that owns DIR
//	DIR/log/000000000001.seg     segments, numbered in append order
//	DIR/log/000000000001.idx     a sealed segment's index file (segindex.go)
//	DIR/log/000000000001.park    the state of its messages parked on disk (park.go)
//
// A segment is written until it would grow past Options.SegmentSize, or
// for five minutes (rotate.go), then the next one is created, its header
// synced and the directory synced before any record in it is
// acknowledged. Segments are never rewritten except that Open cuts a torn
// tail off the last one, and a write that fails for want of space is cut
// back off the one being written; old ones are deleted by compaction.
//
// # A full disk
//
// New messages are refused (ErrNoSpace) while the file system has no more
// free space than Postfix's smtpd demands at MAIL (space.go). A write that
// fails with ENOSPC or EDQUOT fails its records and every one placed after
// them, and the log continues from the last durable offset; any other
// write error stops the Store until it is reopened. The queue manager
// goes on delivering, and owes the changes it cannot write (owed.go).
//
// # Segment header (32 bytes, little-endian)
//
//	0  8  magic "\x89PGSEG\r\n"
//	8  4  format version (1)
//	12 4  segment number (same as the file name)
//	16 8  creation time, Unix nanoseconds
//	24 4  reserved, zero
//	28 4  CRC32C of bytes 0..27
//
// The segment header is informative: records carry their own position, so a
// damaged segment header costs nothing but a warning.
//
// # Record framing (little-endian)
//
//	0   4   magic 0x89 'P' 'G' 'Q'
//	4   1   type: 1 message, 2 change, 3 message with state (unknown types are skipped)
//	5   1   format version (1)
//	6   1   ID length, 1..24
//	7   1   flags, zero
//	8   4   segment number this record was written to
//	12  8   byte offset of this record in that segment
//	20  4   body length
//	24  4   envelope length (message records: where the content starts)
//	28  24  queue ID, zero padded
//	52  4   header checksum: CRC32C of bytes 0..51
//	56  n   body
//	56+n 4  body checksum: CRC32C of the ID bytes followed by the body
//
// The header checksum makes the length and the ID trustworthy on their own,
// so a record whose body is damaged can still be named (and moved to the
// corrupt state) and skipped precisely. The body checksum includes the ID so
// a body cannot be attached to another message's header. The position
// (segment, offset) in the header means a record is valid only where it was
// written: bytes that merely look like a record — for instance a copy of a
// queue segment mailed as an attachment, met while resynchronising after
// damage — are not mistaken for one.
//
// A message body is the encoded envelope followed by the content (already
// CRLF). The envelope: a version byte, the arrival time (varint Unix ns),
// then length-prefixed (uvarint) sender, RET, ENVID, client name, client
// address, HELO, protocol, and the recipient count followed by address,
// ORCPT and NOTIFY of each; then optional fields, each present when it or
// one after it is set: the content filter, and each recipient's original
// address (length-prefixed). A change body: kind byte, time of the change
// (varint ns), "until" (varint ns, 0 = none), reason (length-prefixed), and
// the recipient indexes (uvarint count+1, 0 meaning "all"). Decoders ignore
// bytes after the fields they know, so later versions can append fields.
//
// A message-with-state record (type 3, staterec.go) is a message record
// whose body ends with the message's state: it supersedes the earlier
// record of its ID and every change logged before it. Compaction writes
// them to copy long-lived messages forward; AppendHeld writes one so a
// message queued on hold never exists without its hold.
//
// # Recovery
//
// Open reads the segments in order: a sealed segment from its index file
// when that describes it exactly (its envelopes and changes, not its
// bodies; written in the background once the segment is sealed), else
// whole, and the newest always whole. The rest of this section is about
// reading a segment whole. A record with a bad header checksum is
// not trusted at all: the reader scans forward for the next magic whose
// header checksum and position verify, drops the bytes in between as an
// unidentifiable fragment and says so through Options.Logf. A record with a
// good header but a bad body checksum is named by its ID: a message record
// becomes a message in the corrupt state (its raw bytes stay readable), a
// change record puts the message it names into the corrupt state, since its
// true state is unknown. A segment that ends inside a record whose header
// verifies gets the same treatment: the record is named and its message
// put in the corrupt queue. In an older segment that is a segment cut after
// it was complete, and the records that followed are lost unnamed. In the
// newest it is most likely a write a crash cut short, never synced, so
// never acknowledged nor relied on: a cut change (or copy) is dropped and
// cut off, its message keeping the state it had; but nothing tells a torn
// message record from a file cut after its 250, so that one is put in the
// corrupt queue too, its bytes kept and appends moved to a fresh segment.
// Any other incomplete tail of the newest segment (no verifiable header)
// is a torn write that was never acknowledged and is cut off. Every line
// naming a damaged record starts with the queue ID and says the segment
// and offset; Store.Damage counts them, and the bytes that named nothing.
//
// State changes are applied in log order, live and at recovery alike, by
// the same code, so a restart rebuilds exactly the state the daemon had.
//
// # The queue manager
//
// RunManager is Postfix's qmgr (manager.go, deliver.go): a schedule of due
// times kept in the index takes each message when it is due (a new one at
// once), routes its recipients to (transport, next hop) destinations,
// delivers batches of at most the recipient limit with at most the
// concurrency limit in flight per destination, and records each outcome
// with a change record before it is relied on. Deferred mail waits
// clamp(age, minimal_backoff_time, maximal_backoff_time); a destination
// that fails as a whole is suspended for minimal_backoff_time; mail past
// its lifetime is returned; every failure is reported through the Bouncer
// before it is recorded, so a crash repeats a notice rather than loses
// one. Log lines are Postfix's (logline.go).
//
// # Compaction
//
// Changes follow their message's record in the log, so a prefix of the
// log with no live message record can be deleted; live messages in an old
// segment are copied forward first (compact.go). The index counts live
// records and bytes per segment, and lists each segment's live records,
// for this.
package queue
