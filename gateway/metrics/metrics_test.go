package metrics

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestActionLabels: the reply as logged becomes its code and the reason
// pflogsumm would group it under.
func TestActionLabels(t *testing.T) {
	m := New()
	for _, c := range []struct{ text, code, reason string }{
		{"554 5.7.1 <u@elsewhere.test>: Relay access denied", "554", "Relay access denied"},
		{"450 4.7.1 <client.test>: Helo command rejected: Host not found", "450", "Helo command rejected"},
		{"554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.test", "554", "Service unavailable"},
		{"421 4.3.2 All server ports are busy", "421", "All server ports are busy"},
		{"bare <LF> received", "", "bare <LF> received"},
	} {
		m.Action("reject", "RCPT", c.text)
		if got := testutil.ToFloat64(m.Actions.WithLabelValues("reject", "RCPT", c.code, c.reason)); got != 1 {
			t.Errorf("%q: series {code=%q, reason=%q} = %v, want 1", c.text, c.code, c.reason, got)
		}
	}
}

// TestBoundedReasons: past maxLabelValues distinct reasons, the rest count
// as "other".
func TestBoundedReasons(t *testing.T) {
	m := New()
	for i := range maxLabelValues + 5 {
		m.Action("reject", "RCPT", fmt.Sprintf("554 5.7.1 <a@b>: reason %d", i))
	}
	if got := testutil.ToFloat64(m.Actions.WithLabelValues("reject", "RCPT", "554", "other")); got != 5 {
		t.Errorf("other = %v, want 5", got)
	}
	if n := testutil.CollectAndCount(m.Actions); n != maxLabelValues+1 {
		t.Errorf("%d series, want %d", n, maxLabelValues+1)
	}
}
