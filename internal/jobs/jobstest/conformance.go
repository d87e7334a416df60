package jobstest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/jobs"
)

// RunLedgerTests checks that the jobs.Ledger returned by open behaves as
// the interface says: one claim per (job, slot), idempotent for its own
// claimer, refused with ErrFenced to a lower token, finished runs, and a
// history newest first. open is called once per subtest; subtests use
// distinct job names, so open may return the same ledger every time. The
// tests run in real time.
func RunLedgerTests(t *testing.T, open func(t *testing.T) jobs.Ledger) {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

	t.Run("first claim is recorded, unfinished", func(t *testing.T) {
		l, j := open(t), job(t)
		before := time.Now()
		mustClaim(t, l, j, base, 3, "i-a", true)
		after := time.Now()
		got := mustRecent(t, l, j, 10)
		if len(got) != 1 {
			t.Fatalf("Recent = %+v; want one run", got)
		}
		r := got[0]
		if r.Job != j || !r.Slot.Equal(base) || r.Token != 3 || r.Instance != "i-a" || r.Finished() || !r.Ended.IsZero() {
			t.Errorf("record = %+v; want job %s, slot %s, token 3, instance i-a, unfinished", r, j, base)
		}
		if r.Claimed.Before(before.Add(-time.Millisecond)) || r.Claimed.After(after.Add(time.Millisecond)) {
			t.Errorf("Claimed = %s; want between %s and %s", r.Claimed, before, after)
		}
	})

	t.Run("a slot is claimed once", func(t *testing.T) {
		l, j := open(t), job(t)
		mustClaim(t, l, j, base, 1, "i-a", true)
		mustClaim(t, l, j, base, 2, "i-b", false)
		mustClaim(t, l, j, base, 2, "i-a", false)
		got := mustRecent(t, l, j, 10)
		if len(got) != 1 || got[0].Token != 1 || got[0].Instance != "i-a" {
			t.Errorf("Recent = %+v; want the first claim only", got)
		}
		// The second claimer holds the higher token: the slot after is its.
		mustClaim(t, l, j, base.Add(time.Second), 2, "i-b", true)
	})

	t.Run("a repeated claim by its claimer succeeds again", func(t *testing.T) {
		l, j := open(t), job(t)
		mustClaim(t, l, j, base, 4, "i-a", true)
		mustClaim(t, l, j, base, 4, "i-a", true)
		if got := mustRecent(t, l, j, 10); len(got) != 1 {
			t.Errorf("Recent = %+v; want one run", got)
		}
	})

	t.Run("a lower token is fenced off and records nothing", func(t *testing.T) {
		l, j := open(t), job(t)
		mustClaim(t, l, j, base, 7, "i-new", true)
		claimed, err := l.Claim(t.Context(), j, base.Add(time.Second), 6, "i-old")
		if claimed || !errors.Is(err, jobs.ErrFenced) {
			t.Fatalf("Claim with a lower token = %v, %v; want false, ErrFenced", claimed, err)
		}
		if got := mustRecent(t, l, j, 10); len(got) != 1 || got[0].Token != 7 {
			t.Errorf("Recent = %+v; want the token 7 run only", got)
		}
		// Other jobs are not fenced by this one's token.
		mustClaim(t, l, j+".other", base.Add(time.Second), 6, "i-old", true)
	})

	t.Run("finish records the outcome and the end", func(t *testing.T) {
		l, j := open(t), job(t)
		mustClaim(t, l, j, base, 1, "i-a", true)
		ended := base.Add(1500 * time.Millisecond)
		if err := l.Finish(t.Context(), j, base, "exit 3", ended); err != nil {
			t.Fatalf("Finish: %v", err)
		}
		got := mustRecent(t, l, j, 1)
		if len(got) != 1 || got[0].Outcome != "exit 3" || !got[0].Ended.Equal(ended) || !got[0].Finished() {
			t.Errorf("Recent = %+v; want outcome exit 3 ended at %s", got, ended)
		}
	})

	t.Run("finish of an unclaimed run fails", func(t *testing.T) {
		l, j := open(t), job(t)
		if err := l.Finish(t.Context(), j, base, "exit 0", base); err == nil {
			t.Error("Finish of a run never claimed: no error")
		}
		if got := mustRecent(t, l, j, 10); len(got) != 0 {
			t.Errorf("Recent = %+v; want none", got)
		}
	})

	t.Run("recent is newest first, at most n, per job", func(t *testing.T) {
		l, j := open(t), job(t)
		for i := range 5 {
			mustClaim(t, l, j, base.Add(time.Duration(i)*time.Minute), 1, "i-a", true)
		}
		mustClaim(t, l, j+".other", base.Add(time.Hour), 1, "i-a", true)
		got := mustRecent(t, l, j, 3)
		var slots []string
		for _, r := range got {
			slots = append(slots, r.Slot.UTC().Format("15:04"))
		}
		if want := "00:04 00:03 00:02"; strings.Join(slots, " ") != want {
			t.Errorf("Recent(3) slots = %v; want %s", slots, want)
		}
		if got := mustRecent(t, l, "never."+j, 3); len(got) != 0 {
			t.Errorf("Recent of a job never run = %+v; want none", got)
		}
		if _, err := l.Recent(t.Context(), j, 0); err == nil {
			t.Error("Recent(0): no error")
		}
	})

	t.Run("history keeps at least the last 50 runs", func(t *testing.T) {
		l, j := open(t), job(t)
		const runs = 60
		for i := range runs {
			mustClaim(t, l, j, base.Add(time.Duration(i)*time.Second), 1, "i-a", true)
		}
		got := mustRecent(t, l, j, 50)
		if len(got) != 50 {
			t.Fatalf("Recent(50) = %d runs; want 50", len(got))
		}
		for i, r := range got {
			if want := base.Add(time.Duration(runs-1-i) * time.Second); !r.Slot.Equal(want) {
				t.Fatalf("Recent(50)[%d] slot %s; want %s", i, r.Slot, want)
			}
		}
	})

	t.Run("concurrent claims of one slot have one winner", func(t *testing.T) {
		l, j := open(t), job(t)
		const n = 8
		var wg sync.WaitGroup
		won := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				won[i], errs[i] = l.Claim(t.Context(), j, base, 1, fmt.Sprintf("i-%d", i))
			})
		}
		wg.Wait()
		winners := 0
		for i := range n {
			if errs[i] != nil {
				t.Errorf("claim %d: %v", i, errs[i])
			}
			if won[i] {
				winners++
			}
		}
		if winners != 1 {
			t.Errorf("%d winners; want 1", winners)
		}
	})
}

// job returns a job name unique to the test.
func job(t *testing.T) string {
	return "conformance." + strings.NewReplacer("/", ".", " ", "_", ",", "").Replace(t.Name())
}

func mustClaim(t *testing.T, l jobs.Ledger, j string, slot time.Time, token uint64, instance string, want bool) {
	t.Helper()
	got, err := l.Claim(t.Context(), j, slot, token, instance)
	if err != nil || got != want {
		t.Fatalf("Claim(%s, %s, token %d, %s) = %v, %v; want %v, nil", j, slot.Format(time.RFC3339), token, instance, got, err, want)
	}
}

func mustRecent(t *testing.T, l jobs.Ledger, j string, n int) []jobs.Record {
	t.Helper()
	got, err := l.Recent(t.Context(), j, n)
	if err != nil {
		t.Fatalf("Recent(%s, %d): %v", j, n, err)
	}
	return got
}
