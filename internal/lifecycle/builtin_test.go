package lifecycle_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

// builtin is an in-process step that takes d of (simulated) time and
// then returns err; it records when each run began and how it ended.
type builtin struct {
	d   time.Duration
	err error

	mu   sync.Mutex
	runs []builtinRun
}

type builtinRun struct {
	at   time.Time
	seen time.Time // the action's Seen, as the step got it
	done bool      // ran to its end (false: its context ended first)
}

func (b *builtin) run(ctx context.Context, a lifecycle.Action) error {
	b.mu.Lock()
	i := len(b.runs)
	b.runs = append(b.runs, builtinRun{at: time.Now(), seen: a.Seen})
	b.mu.Unlock()
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	b.mu.Lock()
	b.runs[i].done = true
	b.mu.Unlock()
	return b.err
}

func (b *builtin) calls() []builtinRun {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]builtinRun(nil), b.runs...)
}

func TestBuiltinStep(t *testing.T) {
	for _, c := range []struct {
		name      string
		step      *builtin
		timeout   time.Duration
		onFailure lifecycle.FailurePolicy
		want      lifecycle.Result
		wantFlush bool // the command step after it ran
		wantRec   lifecycle.StepRecord
		wantBeats []time.Duration
	}{
		{
			name: "runs in process under the heartbeats, then the plan goes on", step: &builtin{d: 70 * time.Minute},
			want: lifecycle.Continue, wantFlush: true,
			wantRec:   lifecycle.StepRecord{Name: "deregister", State: lifecycle.StepFinished},
			wantBeats: []time.Duration{0, 30 * time.Minute, 60 * time.Minute},
		},
		{
			name: "error with on_failure abandon abandons the plan", step: &builtin{d: time.Minute, err: errors.New("target group still draining")},
			onFailure: lifecycle.FailAbandon, want: lifecycle.Abandon,
			wantRec:   lifecycle.StepRecord{Name: "deregister", State: lifecycle.StepFinished, ExitCode: 1, Error: "target group still draining"},
			wantBeats: []time.Duration{0},
		},
		{
			name: "timeout is a failure", step: &builtin{d: time.Hour}, timeout: 45 * time.Minute,
			onFailure: lifecycle.FailContinue, want: lifecycle.Continue, wantFlush: true,
			wantRec:   lifecycle.StepRecord{Name: "deregister", State: lifecycle.StepFinished, ExitCode: 1, TimedOut: true, Error: context.DeadlineExceeded.Error()},
			wantBeats: []time.Duration{0, 30 * time.Minute},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				j := openJournal(t)
				aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
				steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {}}}
				plan := lifecycle.Plan{Steps: []lifecycle.Step{
					{Name: "deregister", Builtin: c.step.run, Timeout: c.timeout, OnFailure: c.onFailure},
					step("flush"),
				}}
				a := newAction(time.Hour)
				got, err := newExecutor(t, j, aws, steps).Run(t.Context(), a, plan, closed())
				if err != nil || got != c.want {
					t.Fatalf("Run = %q, %v; want %s, nil", got, err, c.want)
				}
				if runs := c.step.calls(); len(runs) != 1 || !runs[0].at.Equal(start) || !runs[0].seen.Equal(a.Seen) {
					t.Errorf("built-in step ran %+v, want once at the start, with the action's Seen", runs)
				}
				if ran := len(steps.Started()) == 1; ran != c.wantFlush {
					t.Errorf("flush started: %v, want %v", ran, c.wantFlush)
				}
				rec := load(t, j, a.Key())
				sr := rec.Steps[0]
				sr.Started, sr.Ended = time.Time{}, time.Time{}
				if sr != c.wantRec {
					t.Errorf("journaled %+v, want %+v", sr, c.wantRec)
				}
				if got := offsets(start, aws.Heartbeats()); !reflect.DeepEqual(got, c.wantBeats) {
					t.Errorf("heartbeats at %v, want %v", got, c.wantBeats)
				}
			})
		})
	}
}

// TestBuiltinStepAfterRestart stops the Executor (an agent stopped or
// killed) while a built-in step runs, and starts another on the journal:
// the built-in step runs again from its start, since nothing of it
// outlived the agent, and the action is completed once.
func TestBuiltinStepAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		j := openJournal(t)
		dereg := &builtin{d: 20 * time.Minute}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Minute}}}
		plan := lifecycle.Plan{Steps: []lifecycle.Step{{Name: "deregister", Builtin: dereg.run}, step("flush")}}
		a := newAction(time.Hour)

		first := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK}
		ctx, stop := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := newExecutor(t, j, first, steps).Run(ctx, a, plan, closed())
			done <- err
		}()
		time.Sleep(5 * time.Minute)
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("first Run = %v, want context.Canceled", err)
		}
		if rec := load(t, j, a.Key()); len(rec.Steps) != 1 || rec.Steps[0].State != lifecycle.StepStarted {
			t.Fatalf("journal after the stop: %+v, want deregister started", rec.Steps)
		}

		time.Sleep(time.Minute) // the next agent starts a minute later
		second := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
		later := a
		later.Seen = time.Now() // the new agent sees it now; the journal's Seen wins
		got, err := newExecutor(t, j, second, steps).Run(t.Context(), later, plan, closed())
		if err != nil || got != lifecycle.Continue {
			t.Fatalf("second Run = %q, %v; want CONTINUE, nil", got, err)
		}
		runs := dereg.calls()
		if len(runs) != 2 || runs[0].done || !runs[1].done ||
			runs[1].at.Sub(start) != 6*time.Minute || !runs[1].seen.Equal(a.Seen) {
			t.Errorf("built-in step runs %+v, want one cut short, then one from its start at 6m0s with the first Seen", runs)
		}
		if got, want := steps.Started(), []string{"flush"}; !reflect.DeepEqual(got, want) {
			t.Errorf("started %q, want %q", got, want)
		}
		if got, want := offsets(start, second.Heartbeats()), []time.Duration{6 * time.Minute}; !reflect.DeepEqual(got, want) {
			t.Errorf("second Executor's heartbeats at %v, want %v (at once)", got, want)
		}
		if comps := second.Completions(); len(comps) != 1 || comps[0].At.Sub(start) != 27*time.Minute {
			t.Errorf("completions %+v, want one at 27m0s", comps)
		}

		// A third Executor finds the plan done: the built-in step is not
		// run again.
		third := &lifecycletest.Completer{T: t}
		if got, err := newExecutor(t, j, third, steps).Run(t.Context(), a, plan, closed()); err != nil || got != lifecycle.Continue {
			t.Errorf("third Run = %q, %v; want the journaled CONTINUE", got, err)
		}
		if n := len(dereg.calls()); n != 2 {
			t.Errorf("built-in step ran %d times, want still 2", n)
		}
	})
}

// TestBuiltinStepFinishedIsNotRunAgain restarts the Executor after a
// built-in step finished, while the next (command) step runs.
func TestBuiltinStepFinishedIsNotRunAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := openJournal(t)
		handoff := &builtin{d: time.Minute}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: 10 * time.Minute}}}
		plan := lifecycle.Plan{Steps: []lifecycle.Step{{Name: "handoff", Builtin: handoff.run}, step("flush")}}
		a := newAction(time.Hour)
		aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
		ctx, stop := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = newExecutor(t, j, aws, steps).Run(ctx, a, plan, closed())
		}()
		time.Sleep(3 * time.Minute)
		stop()
		<-done
		got, err := newExecutor(t, j, aws, steps).Run(t.Context(), a, plan, closed())
		if err != nil || got != lifecycle.Continue {
			t.Fatalf("second Run = %q, %v; want CONTINUE, nil", got, err)
		}
		if n := len(handoff.calls()); n != 1 {
			t.Errorf("built-in step ran %d times, want once", n)
		}
		if got, want := steps.Adopted(), []string{"flush"}; !reflect.DeepEqual(got, want) {
			t.Errorf("adopted %q, want %q", got, want)
		}
	})
}
