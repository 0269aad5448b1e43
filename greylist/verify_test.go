package greylist

import (
	"context"
	"strings"
	"testing"
	"time"
)

// verifySuite is what every VerifyCache must do: verify(8)'s state
// machine. Times are given, not waited for, so the suite is quick; each
// case has its own addresses.
func verifySuite(t *testing.T, c VerifyCache) {
	ctx := context.Background()
	p := VerifyPolicy{PositiveExpire: 31 * 24 * time.Hour, PositiveRefresh: 7 * 24 * time.Hour,
		NegativeExpire: 3 * 24 * time.Hour, NegativeRefresh: 3 * time.Hour}
	addr := func(t *testing.T, user string) string {
		return user + "@" + strings.ReplaceAll(t.Name(), "/", ".") + ".test"
	}
	query := func(t *testing.T, a string, now time.Time, want VerifyRecord, wantProbe bool) {
		t.Helper()
		r, probe, err := c.VerifyQuery(ctx, a, now, p)
		if err != nil {
			t.Fatal(err)
		}
		if r != want || probe != wantProbe {
			t.Fatalf("%s at %v: %+v probe=%v, want %+v probe=%v", a, now, r, probe, want, wantProbe)
		}
	}
	update := func(t *testing.T, a string, now time.Time, r VerifyRecord) {
		t.Helper()
		if err := c.VerifyUpdate(ctx, a, r, now, p); err != nil {
			t.Fatal(err)
		}
	}
	todo := VerifyRecord{Status: VerifyTodo, Text: "Address verification in progress"}
	t0 := time.Now().Truncate(time.Millisecond)

	t.Run("first query probes once", func(t *testing.T) {
		a := addr(t, "u")
		query(t, a, t0, todo, true)
		// The probe is out: no second one within the probe TTL.
		query(t, a, t0.Add(time.Second), todo, false)
		query(t, strings.ToUpper(a), t0.Add(2*time.Second), todo, false)
		// A probe with no answer after 1000 s is taken as lost.
		query(t, a, t0.Add(DefaultProbeTTL+time.Second), todo, true)
	})
	t.Run("answers", func(t *testing.T) {
		ok, bad := addr(t, "known"), addr(t, "unknown")
		query(t, ok, t0, todo, true)
		query(t, bad, t0, todo, true)
		okRec := VerifyRecord{Status: VerifyOK, Text: "250 2.1.5 Ok"}
		badRec := VerifyRecord{Status: VerifyBounce, Text: "host x said: 550 5.1.1 no such user: with: colons"}
		update(t, ok, t0.Add(time.Second), okRec)
		update(t, bad, t0.Add(time.Second), badRec)
		query(t, ok, t0.Add(2*time.Second), okRec, false)
		query(t, bad, t0.Add(2*time.Second), badRec, false)
		// After the refresh time the old answer is still given while a
		// new probe goes out, once.
		query(t, bad, t0.Add(3*time.Hour+2*time.Second), badRec, true)
		query(t, bad, t0.Add(3*time.Hour+3*time.Second), badRec, false)
		query(t, ok, t0.Add(7*24*time.Hour+2*time.Second), okRec, true)
		// A failed probe does not replace a deliverable answer.
		update(t, ok, t0.Add(7*24*time.Hour+3*time.Second), VerifyRecord{Status: VerifyDefer, Text: "connect to x: Connection refused"})
		query(t, ok, t0.Add(7*24*time.Hour+4*time.Second), okRec, false)
	})
	t.Run("expiry", func(t *testing.T) {
		a := addr(t, "u")
		query(t, a, t0, todo, true)
		update(t, a, t0, VerifyRecord{Status: VerifyDefer, Text: "try later"})
		// Past the negative expire time (the memory store still holds
		// it; Redis dropped it): unknown again, and probed.
		query(t, a, t0.Add(3*24*time.Hour+time.Second), todo, true)
	})
}
