package queue

import (
	"cmp"
	"container/heap"
)

// The schedule: while a queue manager runs, every message waiting for it
// (new, deferred until some time, released from hold) sits in one heap
// ordered by the time it is due, then by log position, so arrival order
// breaks ties. The heap lives in the index, its position in each entry
// and the due time in the heap, where only scheduled messages pay for
// it: a backlog of a million messages costs 16 bytes a message, and
// removing a message (delivered, deleted) takes it out of the schedule
// in the same step.

// dueItem is a scheduled message and when it is due (Unix ns).
type dueItem struct {
	due int64
	e   *entry
}

type dueHeap []dueItem

func (h dueHeap) Len() int { return len(h) }

func (h dueHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	return cmp.Or(cmp.Compare(a.due, b.due), cmp.Compare(a.e.seg, b.e.seg), cmp.Compare(a.e.off, b.e.off)) < 0
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
func (x *index) schedule(e *entry, due int64) {
	if e.hpos > 0 {
		x.sched[e.hpos-1].due = due
		heap.Fix(&x.sched, int(e.hpos-1))
		return
	}
	heap.Push(&x.sched, dueItem{due, e})
}

// scheduleAll schedules, in one heapify, every entry for which due says
// when.
func (x *index) scheduleAll(due func(*entry) (int64, bool)) {
	for e := range x.m.all() {
		if d, ok := due(e); ok && e.hpos == 0 {
			x.sched = append(x.sched, dueItem{d, e})
			e.hpos = int32(len(x.sched))
		}
	}
	heap.Init(&x.sched)
}

func (x *index) unschedule(e *entry) {
	if e.hpos > 0 {
		heap.Remove(&x.sched, int(e.hpos-1))
	}
}

// takeSlot gives old's place in the schedule to e, a newer record of the
// same message.
func (x *index) takeSlot(old, e *entry) {
	if old.hpos == 0 {
		return
	}
	i := int(old.hpos - 1)
	e.hpos = old.hpos
	old.hpos = 0
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

// dueAll makes every scheduled message due at due (postqueue -f).
func (x *index) dueAll(due int64) {
	x.dueWhere(due, func(*entry) bool { return true })
}

// dueWhere makes the scheduled messages for which match says so due at
// due (ETRN: one domain's mail).
func (x *index) dueWhere(due int64, match func(*entry) bool) {
	for i := range x.sched {
		if match(x.sched[i].e) {
			x.sched[i].due = min(x.sched[i].due, due)
		}
	}
	heap.Init(&x.sched)
}

// clearSchedule empties the schedule when the queue manager stops.
func (x *index) clearSchedule() {
	for _, it := range x.sched {
		it.e.hpos = 0
	}
	x.sched = nil
}
