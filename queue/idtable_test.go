package queue

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestIDTable: random puts, replacements and deletions leave the table
// holding exactly what a map would, through growth, shrinking and the
// backward shifts of deletion.
func TestIDTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tab idTable
	want := make(map[string]*entry)
	check := func(step int) {
		t.Helper()
		if tab.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", step, tab.len(), len(want))
		}
		for id, e := range want {
			if got := tab.get(id); got != e {
				t.Fatalf("step %d: get(%s) = %p, want %p", step, id, got, e)
			}
		}
		n := 0
		for e := range tab.all() {
			if want[e.id] != e {
				t.Fatalf("step %d: all yields %s, not in the table", step, e.id)
			}
			n++
		}
		if n != len(want) {
			t.Fatalf("step %d: all yields %d entries, want %d", step, n, len(want))
		}
	}
	for step := range 20000 {
		id := fmt.Sprintf("%010X", rng.IntN(3000))
		// Grow to a few thousand, then drain to nothing, so both resizes run.
		if step < 12000 && rng.IntN(3) > 0 || step >= 12000 && rng.IntN(4) == 0 {
			e := &entry{id: id}
			tab.put(e)
			want[id] = e
		} else {
			tab.del(id)
			delete(want, id)
		}
		if step%997 == 0 {
			check(step)
		}
	}
	for id := range want {
		tab.del(id)
		delete(want, id)
	}
	check(-1)
	if tab.get("0000000001") != nil || len(tab.slots) != idTableMin {
		t.Fatalf("drained table: %d slots", len(tab.slots))
	}
}
