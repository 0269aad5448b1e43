package queue

import (
	"hash/maphash"
	"iter"
)

// idTable maps queue IDs to index entries: an open-addressing hash set of
// entry pointers keyed by the entry's own ID. A Go map[string]*entry
// keeps a second string header and its own slack per message (~40 bytes
// a message at a million); this keeps 8 bytes a slot at a load between
// 3/8 and 3/4, about 14 bytes a message, which a backlog of a million
// messages makes worth its few lines.
//
// Linear probing with backward-shift deletion: no tombstones, so lookups
// stay short however many messages come and go.
type idTable struct {
	slots []*entry // len is a power of two, or 0
	n     int
	seed  maphash.Seed
}

const idTableMin = 64

func (t *idTable) slot(id string) int {
	return int(maphash.String(t.seed, id) & uint64(len(t.slots)-1))
}

// get returns the entry with ID id, or nil.
func (t *idTable) get(id string) *entry {
	if t.n == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	for i := t.slot(id); ; i = (i + 1) & mask {
		e := t.slots[i]
		if e == nil || e.id == id {
			return e
		}
	}
}

// put adds e, replacing an entry with the same ID.
func (t *idTable) put(e *entry) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(max(idTableMin, 2*len(t.slots)))
	}
	mask := len(t.slots) - 1
	for i := t.slot(e.id); ; i = (i + 1) & mask {
		if t.slots[i] == nil {
			t.slots[i] = e
			t.n++
			return
		}
		if t.slots[i].id == e.id {
			t.slots[i] = e
			return
		}
	}
}

// del removes the entry with ID id, if any.
func (t *idTable) del(id string) {
	if t.n == 0 {
		return
	}
	mask := len(t.slots) - 1
	i := t.slot(id)
	for ; t.slots[i] != nil && t.slots[i].id != id; i = (i + 1) & mask {
	}
	if t.slots[i] == nil {
		return
	}
	// Shift back the entries after i whose home slot does not lie
	// (cyclically) between i and where they are, so that every entry
	// stays reachable from its home slot without a gap.
	for j := (i + 1) & mask; t.slots[j] != nil; j = (j + 1) & mask {
		home := t.slot(t.slots[j].id)
		if (j-home)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = nil
	t.n--
	// A drained backlog gives its slots back.
	if len(t.slots) > idTableMin && t.n*8 < len(t.slots) {
		t.resize(len(t.slots) / 2)
	}
}

func (t *idTable) resize(size int) {
	old := t.slots
	if t.slots == nil {
		t.seed = maphash.MakeSeed()
	}
	t.slots, t.n = make([]*entry, size), 0
	for _, e := range old {
		if e != nil {
			t.put(e)
		}
	}
}

// len is the number of entries.
func (t *idTable) len() int { return t.n }

// all yields every entry, in no particular order. The table must not
// change meanwhile.
func (t *idTable) all() iter.Seq[*entry] {
	return func(yield func(*entry) bool) {
		for _, e := range t.slots {
			if e != nil && !yield(e) {
				return
			}
		}
	}
}
