package queue

import (
	"cmp"
	"container/heap"
)

// The schedule: while a queue manager runs, every message waiting for it
// (new, deferred until some time, released from hold) sits in one heap
// ordered by the time it is due, then by log position, so arrival order
// breaks ties. The heap lives in the index, its position in each entry: a
// backlog of a million messages costs 8 bytes a message, and removing a
// message (delivered, deleted) takes it out of the schedule in the same
// step.

type dueHeap []*entry

func (h dueHeap) Len() int { return len(h) }

func (h dueHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	return cmp.Or(cmp.Compare(a.due, b.due), cmp.Compare(a.seg, b.seg), cmp.Compare(a.off, b.off)) < 0
}

func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hpos = int32(i + 1)
	h[j].hpos = int32(j + 1)
}

func (h *dueHeap) Push(v any) {
	e := v.(*entry)
	e.hpos = int32(len(*h) + 1)
	*h = append(*h, e)
}

func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.hpos = 0
	return e
}

// schedule makes e due at due (Unix ns), whether or not it was scheduled.
func (x *index) schedule(e *entry, due int64) {
	e.due = due
	if e.hpos > 0 {
		heap.Fix(&x.sched, int(e.hpos-1))
		return
	}
	heap.Push(&x.sched, e)
}

// scheduleAll schedules, in one heapify, every entry for which due says
// when.
func (x *index) scheduleAll(due func(*entry) (int64, bool)) {
	for e := range x.m.all() {
		if d, ok := due(e); ok && e.hpos == 0 {
			e.due = d
			x.sched = append(x.sched, e)
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
	e.due, e.hpos = old.due, old.hpos
	old.hpos = 0
	x.sched[i] = e
	heap.Fix(&x.sched, i)
}

// nextDue returns the earliest scheduled entry, or nil.
func (x *index) nextDue() *entry {
	if len(x.sched) == 0 {
		return nil
	}
	return x.sched[0]
}

// popDue takes the earliest entry out of the schedule if it is due at now.
func (x *index) popDue(now int64) *entry {
	if len(x.sched) == 0 || x.sched[0].due > now {
		return nil
	}
	return heap.Pop(&x.sched).(*entry)
}

// dueAll makes every scheduled message due at due (postqueue -f).
func (x *index) dueAll(due int64) {
	for _, e := range x.sched {
		e.due = min(e.due, due)
	}
	heap.Init(&x.sched)
}

// dueWhere makes the scheduled messages for which match says so due at
// due (ETRN: one domain's mail).
func (x *index) dueWhere(due int64, match func(*entry) bool) {
	for _, e := range x.sched {
		if match(e) {
			e.due = min(e.due, due)
		}
	}
	heap.Init(&x.sched)
}

// clearSchedule empties the schedule when the queue manager stops.
func (x *index) clearSchedule() {
	for _, e := range x.sched {
		e.hpos = 0
	}
	x.sched = nil
}
