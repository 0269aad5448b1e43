package queue

import (
	"cmp"
	"container/heap"
	"iter"
	"slices"
)

// The schedule: while a queue manager runs, every message waiting for it
// (new, deferred until some time, released from hold) is either in one
// heap ordered by the time it is due, then by log position, so arrival
// order breaks ties; or, when it is due after the horizon, parked: it
// waits in the index alone (hpos == parked), its due time being its next
// try, until the next queue run moves it to disk (park.go). Each queue
// run (every queue_run_delay) moves the horizon on and brings into the
// heap the parked messages due before it, from memory and disk, as
// Postfix's queue runs bring deferred messages whose time has come into
// the active queue. So the heap holds what is due before the next queue
// run or soon after, not a backlog of a million deferred messages: 16
// bytes a message it holds. Removing a message (delivered, deleted) takes
// it out of the schedule in the same step.

// parked is the hpos of a message waiting for its due time after the
// horizon.
const parked = -1

// dueItem is a scheduled message and when it is due (Unix ns).
type dueItem struct {
	due int64
	e   *entry
}

type dueHeap []dueItem

func (h dueHeap) Len() int { return len(h) }

func (h dueHeap) Less(i, j int) bool { return compareDue(h[i], h[j]) < 0 }

// compareDue orders scheduled messages by when they are due, then by log
// position.
func compareDue(a, b dueItem) int {
	return cmp.Or(cmp.Compare(a.due, b.due), cmp.Compare(a.e.seg, b.e.seg), cmp.Compare(a.e.off, b.e.off))
}

func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].e.hpos = int32(i + 1)
	h[j].e.hpos = int32(j + 1)
}

func (h *dueHeap) Push(v any) {
	it := v.(dueItem)
	it.e.hpos = int32(len(*h) + 1)
	*h = append(*h, it)
}

func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = dueItem{}
	*h = old[:len(old)-1]
	it.e.hpos = 0
	return it
}

// schedule makes e due at due (Unix ns), whether or not it was scheduled.
// A message due at its next try after the horizon is parked.
func (x *index) schedule(e *entry, due int64) {
	switch {
	case e.hpos > 0:
		x.sched[e.hpos-1].due = due
		heap.Fix(&x.sched, int(e.hpos-1))
	case x.horizon != 0 && due >= x.horizon && due == e.nextTry:
		e.hpos = parked
	default:
		heap.Push(&x.sched, dueItem{due, e})
	}
}

// scheduleAll starts a schedule with horizon: every entry for which due
// says when is scheduled, in one heapify, or parked.
func (x *index) scheduleAll(horizon int64, due func(*entry) (int64, bool)) {
	x.horizon = horizon
	for e := range x.m.all() {
		if d, ok := due(e); ok && e.hpos == 0 {
			if d >= horizon && d == e.nextTry {
				e.hpos = parked
				continue
			}
			x.sched = append(x.sched, dueItem{d, e})
			e.hpos = int32(len(x.sched))
		}
	}
	heap.Init(&x.sched)
}

// advance moves the horizon on to horizon (a queue run): the parked
// messages due before it join the heap, and the held or corrupt ones
// among them leave the schedule, as the heap drops them when they come
// due (manager.take).
func (x *index) advance(horizon int64) {
	x.horizon = horizon
	for e := range x.m.all() {
		if e.hpos != parked || e.nextTry >= horizon {
			continue
		}
		e.hpos = 0
		if e.state == Active || e.state == Deferred {
			heap.Push(&x.sched, dueItem{e.nextTry, e})
		}
	}
}

// trimSchedule leaves in the heap the room messages due first, and parks
// (hpos = parked) those due after them at their next try. An
// outage defers the whole inflow to a backoff from now, before the
// horizon: without this the heap, and memory, would hold all of it until
// delivery resumes. They come back, earliest first, as the heap runs low
// (Store.bringIn).
func (x *index) trimSchedule(room int) {
	if len(x.sched) <= room {
		return
	}
	// Sorted, the heap is still a heap; kept in order, so is what stays.
	slices.SortFunc(x.sched, compareDue)
	kept := x.sched[:0]
	for i, it := range x.sched {
		e := it.e
		if i >= room && it.due == e.nextTry && (e.state == Active || e.state == Deferred) {
			e.hpos = parked
			continue
		}
		kept = append(kept, it)
		e.hpos = int32(len(kept))
	}
	clear(x.sched[len(kept):])
	x.sched = kept
}

func (x *index) unschedule(e *entry) {
	if e.hpos > 0 {
		heap.Remove(&x.sched, int(e.hpos-1))
	}
	e.hpos = 0
}

// takeSlot gives old's place in the schedule to e, a newer record of the
// same message.
func (x *index) takeSlot(old, e *entry) {
	if old.hpos == 0 {
		return
	}
	e.hpos, old.hpos = old.hpos, 0
	if e.hpos == parked {
		return
	}
	i := int(e.hpos - 1)
	x.sched[i].e = e
	heap.Fix(&x.sched, i)
}

// nextDue returns when the earliest scheduled message is due; ok is
// false when none is.
func (x *index) nextDue() (due int64, ok bool) {
	if len(x.sched) == 0 {
		return 0, false
	}
	return x.sched[0].due, true
}

// popDue takes the earliest entry out of the schedule if it is due at now.
func (x *index) popDue(now int64) *entry {
	if len(x.sched) == 0 || x.sched[0].due > now {
		return nil
	}
	return heap.Pop(&x.sched).(dueItem).e
}

// waiting yields every scheduled message, parked ones included.
func (x *index) waiting() iter.Seq[*entry] {
	return func(yield func(*entry) bool) {
		for _, it := range x.sched {
			if !yield(it.e) {
				return
			}
		}
		for e := range x.m.all() {
			if e.hpos == parked && !yield(e) {
				return
			}
		}
	}
}

// dueAll makes every scheduled message due at due (postqueue -f).
func (x *index) dueAll(due int64) {
	x.dueWhere(due, func(*entry) bool { return true })
}

// dueWhere makes the scheduled messages for which match says so, parked
// ones included, due at due (ETRN: one domain's mail).
func (x *index) dueWhere(due int64, match func(*entry) bool) {
	for i := range x.sched {
		if match(x.sched[i].e) {
			x.sched[i].due = min(x.sched[i].due, due)
		}
	}
	for e := range x.m.all() {
		if e.hpos == parked && match(e) {
			x.sched = append(x.sched, dueItem{due, e})
			e.hpos = int32(len(x.sched))
		}
	}
	heap.Init(&x.sched)
}

// clearSchedule empties the schedule when the queue manager stops.
func (x *index) clearSchedule() {
	for e := range x.waiting() {
		e.hpos = 0
	}
	x.sched, x.horizon = nil, 0
}
