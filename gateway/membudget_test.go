package gateway

import "testing"

func TestMemBudget(t *testing.T) {
	b := newMemBudget(100)
	if !b.take(60) || !b.take(40) {
		t.Fatal("the budget refused what it has")
	}
	if b.take(1) {
		t.Error("the budget gave more than its limit")
	}
	if b.used.Load() != 100 {
		t.Errorf("a refused take changed the budget: %d used", b.used.Load())
	}
	if !b.high.Load() {
		t.Error("a budget more than half used is not marked high")
	}
	b.give(60)
	if !b.take(50) || b.used.Load() != 90 {
		t.Errorf("given back memory cannot be taken again: %d used", b.used.Load())
	}
	b.give(90)
	// Under an eighth after being high: memory is returned to the OS (once).
	if b.high.Load() {
		t.Error("a drained budget is still marked high")
	}
}
