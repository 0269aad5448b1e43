package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// The admin's commands on messages, Postfix's postsuper: hold, release,
// delete, requeue, expire. They are changes in the log like the queue
// manager's own, so they are safe while it delivers the same message: a
// message deleted during its delivery is simply gone when the delivery
// ends (its records find nothing), one held stays held whatever the
// delivery records.

// AdminOps are the admin commands, by name.
var AdminOps = []string{"hold", "release", "delete", "requeue", "expire"}

// Admin applies op to the messages ids names; "ALL" stands for every
// message op applies to. A message op does not apply to (hold of a held
// message, release of one not held) is skipped without error, as
// postsuper does; an unknown ID is an error. It returns how many messages
// it changed, and the errors, one per message.
func (s *Store) Admin(ctx context.Context, op string, ids []string) (int, []error) {
	if !slices.Contains(AdminOps, op) {
		return 0, []error{fmt.Errorf("queue: unknown command %q (%v)", op, AdminOps)}
	}
	if slices.Contains(ids, "ALL") {
		ids = ids[:0:0]
		for _, m := range s.List() {
			ids = append(ids, m.ID)
		}
	}
	var n int
	var errs []error
	var due []string // requeued: made due now
	for _, id := range ids {
		st, ok := s.adminState(id)
		if !ok {
			errs = append(errs, fmt.Errorf("%w: %s", ErrNotFound, id))
			continue
		}
		var c Change
		switch {
		case op == "hold" && (st == Active || st == Deferred):
			c.Kind = ChangeHold
		case (op == "release" || op == "requeue") && st == Hold:
			c.Kind = ChangeRelease // scheduled at once when it becomes deferred
		case op == "requeue" && st == Deferred:
			due = append(due, id)
			n++
			continue
		case op == "delete":
			c.Kind = ChangeDelete
		case op == "expire" && st != Corrupt:
			c.Kind = ChangeExpire
		default:
			continue
		}
		if err := s.Change(ctx, id, c); err != nil {
			if !errors.Is(err, ErrNotFound) { // gone meanwhile: delivered, or deleted
				errs = append(errs, err)
			}
			continue
		}
		n++
	}
	if len(due) > 0 {
		want := make(map[string]bool, len(due))
		for _, id := range due {
			want[id] = true
		}
		s.flushWhere(want, nil)
	}
	return n, errs
}

// adminState returns the state of a message as admins see it. A message
// parked on disk comes back into memory with its segment's (park.go), for
// the change that follows: "ALL" reads each state file once, not once a
// message.
func (s *Store) adminState(id string) (State, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.find(id)
	if e == nil {
		return 0, false
	}
	c := s.shown(e)
	return c.state, true
}
