package lifecycle_test

import (
	"context"
	"errors"
	"os"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

// An action only a notification told of starts no step before Auto
// Scaling has accepted a heartbeat for it.
func TestUnverifiedActionWaitsForAnAcceptedHeartbeat(t *testing.T) {
	t.Run("not pending: nothing runs", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			aws := &lifecycletest.Completer{T: t, OnHeartbeat: func(context.Context, int, lifecycle.Action) error { return noActive }}
			steps := &lifecycletest.StepRunner{T: t} // any Start fails the test
			j := openJournal(t)
			a := newAction(time.Hour)
			a.Unverified = true
			_, err := newExecutor(t, j, aws, steps).Run(t.Context(), a, lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}, closed())
			if !errors.Is(err, lifecycle.ErrNoActiveAction) {
				t.Fatalf("Run = %v, want ErrNoActiveAction", err)
			}
			if len(steps.Calls()) != 0 || len(aws.Completions()) != 0 {
				t.Errorf("step calls %+v, completions %+v; want none", steps.Calls(), aws.Completions())
			}
			if rec := load(t, j, a.Key()); !rec.Completed || !rec.Gone || len(rec.Steps) != 0 {
				t.Errorf("journal record %+v, want gone with no step journaled", rec)
			}
		})
	})
	t.Run("a failed heartbeat delays the step until one is accepted", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			aws := &lifecycletest.Completer{T: t, OnComplete: lifecycletest.CompleteOK, OnHeartbeat: func(_ context.Context, n int, _ lifecycle.Action) error {
				if n == 0 {
					return throttled
				}
				return nil
			}}
			steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: time.Minute}}}
			a := newAction(time.Hour)
			a.Unverified = true
			got, err := newExecutor(t, openJournal(t), aws, steps).Run(t.Context(), a, lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}, closed())
			if err != nil || got != lifecycle.Continue {
				t.Fatalf("Run = %q, %v; want CONTINUE", got, err)
			}
			// Heartbeats are 30 min apart: a failed one is retried after
			// a quarter of that, at most 1 min.
			if got, want := offsets(start, aws.Heartbeats()), []time.Duration{0, time.Minute}; !reflect.DeepEqual(got, want) {
				t.Errorf("heartbeats at %v, want %v", got, want)
			}
			if calls := steps.Calls(); len(calls) != 1 || calls[0].At.Sub(start) != time.Minute {
				t.Errorf("step calls %+v, want one Start at 1m, once a heartbeat was accepted", calls)
			}
		})
	})
	t.Run("verified by the first heartbeat", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
			steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: time.Minute}}}
			a := newAction(time.Hour)
			a.Unverified = true
			if _, err := newExecutor(t, openJournal(t), aws, steps).Run(t.Context(), a, lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}, closed()); err != nil {
				t.Fatal(err)
			}
			hb, calls := aws.Heartbeats(), steps.Calls()
			if len(hb) != 1 || len(calls) != 1 || calls[0].At != start || hb[0].At != start {
				t.Errorf("heartbeats %+v, step calls %+v; want one each at once", hb, calls)
			}
		})
	})
}

// The heartbeat schedule follows the hook's latest definition, learned
// after the action started.
func TestHeartbeatsFollowTheHooksLatestDefinition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: 50 * time.Minute}}}
		a := newAction(time.Hour) // as read at start: heartbeats every 30 min
		var mu sync.Mutex
		var latest *lifecycle.Hook
		changed := make(chan struct{})
		e := newExecutor(t, openJournal(t), aws, steps)
		e.Hooks = func(k lifecycle.Key) (lifecycle.Hook, bool, <-chan struct{}) {
			mu.Lock()
			defer mu.Unlock()
			if latest == nil || k != a.Key() {
				return lifecycle.Hook{}, false, changed
			}
			return *latest, true, changed
		}
		go func() {
			time.Sleep(time.Second) // read again just after the start
			h := a.Hook
			h.HeartbeatTimeout = 20 * time.Minute
			mu.Lock()
			latest = &h
			old := changed
			changed = make(chan struct{})
			mu.Unlock()
			close(old)
		}()
		if _, err := e.Run(t.Context(), a, lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}, closed()); err != nil {
			t.Fatal(err)
		}
		if got, want := offsets(start, aws.Heartbeats()), []time.Duration{0, 10*time.Minute + time.Second, 20*time.Minute + time.Second, 30*time.Minute + time.Second, 40*time.Minute + time.Second}; !reflect.DeepEqual(got, want) {
			t.Errorf("heartbeats at %v, want %v", got, want)
		}
	})
}

// The fresh record of an action only a notification told of is saved while
// its first heartbeat goes out; a save that fails runs nothing, whatever
// the heartbeat says, and a later Run starts the action afresh.
func TestUnverifiedActionRunsNothingUnjournaled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: time.Minute}}}
		j := openJournal(t)
		if err := os.RemoveAll(j.Dir()); err != nil { // every save fails
			t.Fatal(err)
		}
		a := newAction(time.Hour)
		a.Unverified = true
		plan := lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}
		got, err := newExecutor(t, j, aws, steps).Run(t.Context(), a, plan, closed())
		if err == nil || got != "" {
			t.Fatalf("Run = %q, %v; want the journal's error", got, err)
		}
		if len(steps.Calls()) != 0 || len(aws.Completions()) != 0 {
			t.Fatalf("step calls %+v, completions %+v; want none before the action is journaled", steps.Calls(), aws.Completions())
		}
		if err := os.MkdirAll(j.Dir(), 0o700); err != nil {
			t.Fatal(err)
		}
		got, err = newExecutor(t, j, aws, steps).Run(t.Context(), a, plan, closed())
		if err != nil || got != lifecycle.Continue {
			t.Fatalf("second Run = %q, %v; want CONTINUE", got, err)
		}
		if calls, done := steps.Calls(), aws.Completions(); len(calls) != 1 || len(done) != 1 {
			t.Errorf("step calls %+v, completions %+v; want one each", calls, done)
		}
	})
}
