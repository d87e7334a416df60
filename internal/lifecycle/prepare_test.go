package lifecycle_test

import (
	"context"
	"errors"
	"os"
	"reflect"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

// ops lists the operations of a fake StepRunner's calls, as "op step".
func ops(calls []lifecycletest.StepCall) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Op+" "+c.ID.Step)
	}
	return out
}

// checkJournaledStarted fails the test unless the journal records step id
// started, under its action id.
func checkJournaledStarted(t *testing.T, j *lifecycle.Journal, id lifecycle.StepID) {
	t.Helper()
	rec, ok, err := j.Load(id.Key)
	if err != nil || !ok {
		t.Errorf("step %v about to start: no journal record (%v)", id, err)
		return
	}
	i := slices.IndexFunc(rec.Steps, func(sr lifecycle.StepRecord) bool { return sr.Name == id.Step })
	if i < 0 || rec.Steps[i].State != lifecycle.StepStarted || rec.ID != id.Action {
		t.Errorf("step %v about to start: journal record %+v does not say it started", id, rec)
	}
}

// A step is prepared while the action's first heartbeat is awaited, and
// started only once that heartbeat is accepted and the journal records the
// step started.
func TestPreparedStepStartsOnceJournaled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		aws := &lifecycletest.Completer{T: t, OnComplete: lifecycletest.CompleteOK, OnHeartbeat: func(_ context.Context, n int, _ lifecycle.Action) error {
			if n == 0 {
				return throttled
			}
			return nil
		}}
		j := openJournal(t)
		steps := lifecycletest.PreparingStepRunner{StepRunner: &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{
			"deregister": {Duration: time.Minute},
			"drain":      {Duration: time.Minute},
		}}}
		steps.BeforeGo = func(_ context.Context, id lifecycle.StepID) error {
			checkJournaledStarted(t, j, id)
			return nil
		}
		a := newAction(time.Hour)
		a.Unverified = true
		plan := lifecycle.Plan{Steps: []lifecycle.Step{step("deregister"), step("drain")}}
		got, err := newExecutor(t, j, aws, steps).Run(t.Context(), a, plan, closed())
		if err != nil || got != lifecycle.Continue {
			t.Fatalf("Run = %q, %v; want CONTINUE", got, err)
		}
		calls := steps.Calls()
		if got, want := ops(calls), []string{"prepare deregister", "start deregister", "prepare drain", "start drain"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("step calls %q, want %q", got, want)
		}
		// Prepared at once, started once the retried heartbeat (1 min
		// later) was accepted.
		if calls[0].At != start || calls[1].At.Sub(start) != time.Minute {
			t.Errorf("deregister prepared at %v, started at %v; want 0s and 1m", calls[0].At.Sub(start), calls[1].At.Sub(start))
		}
		if n := len(aws.Completions()); n != 1 {
			t.Errorf("%d completions, want 1", n)
		}
	})
}

// An action Auto Scaling does not have pending runs nothing: the prepared
// step is released.
func TestPreparedStepReleasedWhenTheActionIsNotPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		aws := &lifecycletest.Completer{T: t, OnHeartbeat: func(context.Context, int, lifecycle.Action) error { return noActive }}
		steps := lifecycletest.PreparingStepRunner{StepRunner: &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: time.Minute}}}}
		a := newAction(time.Hour)
		a.Unverified = true
		_, err := newExecutor(t, openJournal(t), aws, steps).Run(t.Context(), a, lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}, closed())
		if !errors.Is(err, lifecycle.ErrNoActiveAction) {
			t.Fatalf("Run = %v, want ErrNoActiveAction", err)
		}
		if got, want := ops(steps.Calls()), []string{"prepare drain", "release drain"}; !reflect.DeepEqual(got, want) {
			t.Errorf("step calls %q, want %q", got, want)
		}
	})
}

// An agent that stops after preparing the step and before the journal
// records it started has run nothing; the next one runs it once.
func TestCrashAfterPrepareBeforeTheJournalWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := openJournal(t)
		steps := lifecycletest.PreparingStepRunner{StepRunner: &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: time.Minute}}}}
		ctx, kill := context.WithCancel(t.Context())
		hanging := &lifecycletest.Completer{T: t, OnHeartbeat: func(hctx context.Context, _ int, _ lifecycle.Action) error {
			synctest.Wait() // the step is being prepared meanwhile
			kill()
			<-hctx.Done()
			return hctx.Err()
		}}
		a := newAction(time.Hour)
		a.Unverified = true
		plan := lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}
		if _, err := newExecutor(t, j, hanging, steps).Run(ctx, a, plan, closed()); !errors.Is(err, context.Canceled) {
			t.Fatalf("first Run = %v, want the context's error", err)
		}
		if got, want := ops(steps.Calls()), []string{"prepare drain", "release drain"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("step calls %q, want %q", got, want)
		}

		aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
		got, err := newExecutor(t, j, aws, steps).Run(t.Context(), a, plan, closed())
		if err != nil || got != lifecycle.Continue {
			t.Fatalf("second Run = %q, %v; want CONTINUE", got, err)
		}
		if got := steps.Started(); !reflect.DeepEqual(got, []string{"drain"}) {
			t.Errorf("started %q, want drain once", got)
		}
		if n := len(aws.Completions()); n != 1 {
			t.Errorf("%d completions, want 1", n)
		}
	})
}

// An agent that stops after the journal records the prepared step started
// and before Go has run nothing either; the next one finds the step not
// adoptable and applies on_interrupt, as after a crash between the journal
// write and Start.
func TestCrashAfterPrepareBeforeGo(t *testing.T) {
	for _, c := range []struct {
		policy      lifecycle.InterruptPolicy
		wantStarted []string
		wantState   lifecycle.StepState
	}{
		{lifecycle.InterruptSkip, nil, lifecycle.StepSkipped},
		{lifecycle.InterruptRerun, []string{"drain"}, lifecycle.StepFinished},
	} {
		t.Run(string(c.policy), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				j := openJournal(t)
				steps := lifecycletest.PreparingStepRunner{StepRunner: &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: time.Minute}}}}
				ctx, kill := context.WithCancel(t.Context())
				steps.BeforeGo = func(_ context.Context, id lifecycle.StepID) error {
					checkJournaledStarted(t, j, id)
					kill() // the agent dies here
					return ctx.Err()
				}
				aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
				drain := step("drain")
				drain.OnInterrupt = c.policy
				plan := lifecycle.Plan{Steps: []lifecycle.Step{drain}}
				a := newAction(time.Hour)
				a.Unverified = true
				if _, err := newExecutor(t, j, aws, steps).Run(ctx, a, plan, closed()); !errors.Is(err, context.Canceled) {
					t.Fatalf("first Run = %v, want the context's error", err)
				}
				if got := steps.Started(); len(got) != 0 {
					t.Fatalf("started %q before the crash, want nothing", got)
				}

				steps.BeforeGo = nil
				got, err := newExecutor(t, j, aws, steps).Run(t.Context(), a, plan, closed())
				if err != nil || got != lifecycle.Continue {
					t.Fatalf("second Run = %q, %v; want CONTINUE", got, err)
				}
				if got := steps.Started(); !reflect.DeepEqual(got, c.wantStarted) {
					t.Errorf("started %q, want %q", got, c.wantStarted)
				}
				if got := steps.Adopted(); !reflect.DeepEqual(got, []string{"drain"}) {
					t.Errorf("adopted %q, want drain (not adoptable)", got)
				}
				if n := len(aws.Completions()); n != 1 {
					t.Errorf("%d completions, want 1", n)
				}
				if rec := load(t, j, a.Key()); !rec.Completed || len(rec.Steps) != 1 || rec.Steps[0].State != c.wantState {
					t.Errorf("journal record %+v, want completed with drain %s", rec, c.wantState)
				}
			})
		})
	}
}

// The step that ends the plan is journaled finished with the completion,
// after CompleteLifecycleAction; an agent that dies in between adopts the
// step, finds its recorded exit status and completes again, which Auto
// Scaling answers with no active action: one run, one completion.
func TestCrashBetweenCompletionAndItsJournalWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := openJournal(t)
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: time.Minute}}}
		a := newAction(time.Hour)
		plan := lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}
		completed := false
		first := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: func(context.Context, int, lifecycle.Action, lifecycle.Result) error {
			if rec := load(t, j, a.Key()); len(rec.Steps) != 1 || rec.Steps[0].State != lifecycle.StepStarted || rec.Completing != "" {
				t.Errorf("journal record at completion %+v, want drain still journaled started", rec)
			}
			// The agent dies right after the call: no journal write
			// lands (the journal's directory is replaced by a file).
			if err := os.Rename(j.Dir(), j.Dir()+".kept"); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(j.Dir(), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			completed = true
			return nil
		}}
		got, err := newExecutor(t, j, first, steps).Run(t.Context(), a, plan, closed())
		if !completed || got != lifecycle.Continue || err == nil {
			t.Fatalf("first Run = %q, %v; want CONTINUE and the journal's error", got, err)
		}
		if err := os.Remove(j.Dir()); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(j.Dir()+".kept", j.Dir()); err != nil {
			t.Fatal(err)
		}

		second := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: func(context.Context, int, lifecycle.Action, lifecycle.Result) error { return noActive }}
		got, err = newExecutor(t, j, second, steps).Run(t.Context(), a, plan, closed())
		if got != lifecycle.Continue || !errors.Is(err, lifecycle.ErrNoActiveAction) {
			t.Fatalf("second Run = %q, %v; want CONTINUE and ErrNoActiveAction", got, err)
		}
		if got, want := ops(steps.Calls()), []string{"start drain", "adopt drain"}; !reflect.DeepEqual(got, want) {
			t.Errorf("step calls %q, want %q", got, want)
		}
		if n, m := len(first.Completions()), len(second.Completions()); n != 1 || m != 1 {
			t.Errorf("completions %d then %d, want 1 then 1 (answered: no active action)", n, m)
		}
		if rec := load(t, j, a.Key()); !rec.Completed || rec.Completing != lifecycle.Continue || rec.Steps[0].State != lifecycle.StepFinished {
			t.Errorf("journal record %+v, want completed with CONTINUE and drain finished", rec)
		}
	})
}
