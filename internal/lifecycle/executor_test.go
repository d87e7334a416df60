package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

// noActive is what the Auto Scaling adapter returns for a gone action.
var noActive = fmt.Errorf("ValidationError: No active Lifecycle Action found with token %s: %w", token, lifecycle.ErrNoActiveAction)

// throttled is a transient AWS error.
var throttled = errors.New("Throttling: Rate exceeded")

func TestHeartbeatsEveryHalfTimeoutUntilCompletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{
			"deregister": {Duration: time.Hour},
			"flush":      {Duration: 59 * time.Minute},
		}}
		j := openJournal(t)
		a := newAction(3600 * time.Second)
		plan := lifecycle.Plan{Steps: []lifecycle.Step{step("deregister"), step("flush")}}

		got, err := newExecutor(t, j, aws, steps).Run(t.Context(), a, plan, closed())
		if err != nil || got != lifecycle.Continue {
			t.Fatalf("Run = %q, %v; want CONTINUE, nil", got, err)
		}
		if got, want := offsets(start, aws.Heartbeats()), []time.Duration{0, 30 * time.Minute, 60 * time.Minute, 90 * time.Minute}; !reflect.DeepEqual(got, want) {
			t.Errorf("heartbeats at %v, want %v", got, want)
		}
		completions := aws.Completions()
		if len(completions) != 1 || completions[0].Result != lifecycle.Continue || completions[0].At.Sub(start) != 119*time.Minute {
			t.Errorf("completions = %+v, want one CONTINUE at 1h59m", completions)
		}
		for _, c := range aws.Calls() {
			if c.Action.Token != token || c.Action.InstanceID != instanceID || c.Action.Hook.Name != "drain" {
				t.Errorf("%s called for %+v, want the action", c.Op, c.Action)
			}
		}
		if got, want := steps.Started(), []string{"deregister", "flush"}; !reflect.DeepEqual(got, want) {
			t.Errorf("started %q, want %q", got, want)
		}
		rec := load(t, j, a.Key())
		if !rec.Completed || rec.Gone || rec.Completing != lifecycle.Continue || len(rec.Steps) != 2 {
			t.Errorf("journal record = %+v, want completed with CONTINUE after 2 steps", rec)
		}
	})
}

func TestHeartbeatsStopAtGlobalTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		aws := &lifecycletest.Completer{
			T:           t,
			OnHeartbeat: lifecycletest.HeartbeatOK,
			// The action timed out (DefaultResult applied) long before.
			OnComplete: func(context.Context, int, lifecycle.Action, lifecycle.Result) error { return noActive },
		}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"reindex": {Duration: 4000 * time.Second}}}
		j := openJournal(t)
		a := newAction(30 * time.Second) // global timeout 3000 s

		got, err := newExecutor(t, j, aws, steps).Run(t.Context(), a, lifecycle.Plan{Steps: []lifecycle.Step{step("reindex")}}, closed())
		if got != lifecycle.Continue || !errors.Is(err, lifecycle.ErrNoActiveAction) {
			t.Fatalf("Run = %q, %v; want CONTINUE and ErrNoActiveAction", got, err)
		}
		hb := offsets(start, aws.Heartbeats())
		if len(hb) != 200 || hb[0] != 0 || hb[len(hb)-1] != 2985*time.Second {
			t.Errorf("%d heartbeats from %v to %v; want 200, every 15 s from 0 s to 2985 s", len(hb), hb[0], hb[len(hb)-1])
		}
		for _, at := range hb {
			if at >= 3000*time.Second {
				t.Errorf("heartbeat at %v, at or after the global timeout", at)
			}
		}
		if c := aws.Completions(); len(c) != 1 || c[0].At.Sub(start) != 4000*time.Second {
			t.Errorf("completions = %+v, want one at 4000 s", c)
		}
		if rec := load(t, j, a.Key()); !rec.Completed || !rec.Gone || rec.Completing != lifecycle.Continue {
			t.Errorf("journal record = %+v, want gone after CONTINUE was decided", rec)
		}
	})
}

func TestNoActiveActionOnHeartbeatEndsTheAction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		aws := &lifecycletest.Completer{
			T: t,
			OnHeartbeat: func(_ context.Context, n int, _ lifecycle.Action) error {
				if n == 2 {
					return noActive // completed elsewhere
				}
				return nil
			},
			// OnComplete is nil: Complete must not be called.
		}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{
			"drain":  {Duration: 2 * time.Hour},
			"upload": {Duration: time.Minute},
		}}
		j := openJournal(t)
		a := newAction(time.Minute)
		plan := lifecycle.Plan{Steps: []lifecycle.Step{step("drain"), step("upload")}}

		got, err := newExecutor(t, j, aws, steps).Run(t.Context(), a, plan, closed())
		if got != "" || !errors.Is(err, lifecycle.ErrNoActiveAction) {
			t.Fatalf("Run = %q, %v; want \"\" and ErrNoActiveAction", got, err)
		}
		if at := time.Since(start); at != time.Minute {
			t.Errorf("Run returned at %v, want at once when the heartbeat failed (1m0s)", at)
		}
		if got, want := offsets(start, aws.Heartbeats()), []time.Duration{0, 30 * time.Second, time.Minute}; !reflect.DeepEqual(got, want) {
			t.Errorf("heartbeats at %v, want %v", got, want)
		}
		if got, want := steps.Started(), []string{"drain"}; !reflect.DeepEqual(got, want) {
			t.Errorf("started %q, want %q", got, want)
		}
		rec := load(t, j, a.Key())
		if !rec.Completed || !rec.Gone || rec.Completing != "" {
			t.Errorf("journal record = %+v, want gone with no result decided", rec)
		}
		if id := (lifecycle.StepID{Key: a.Key(), Action: rec.ID, Step: "drain"}); !steps.Running(id) {
			t.Errorf("step drain is no longer running; its supervisor owns it and should have kept it")
		}

		// A later Run, by this agent or the next, makes no call at all.
		quiet := &lifecycletest.Completer{T: t}
		got, err = newExecutor(t, j, quiet, steps).Run(t.Context(), a, plan, closed())
		if got != "" || !errors.Is(err, lifecycle.ErrNoActiveAction) {
			t.Errorf("second Run = %q, %v; want \"\" and ErrNoActiveAction", got, err)
		}
		time.Sleep(2 * time.Hour) // let the orphaned step end inside the bubble
	})
}

func TestStepFailure(t *testing.T) {
	withPolicy := func(name string, p lifecycle.FailurePolicy) lifecycle.Step {
		s := step(name)
		s.OnFailure = p
		return s
	}
	for _, c := range []struct {
		name        string
		check       lifecycletest.Behavior // what step "check" does
		policy      lifecycle.FailurePolicy
		result      lifecycle.Result // Plan.Result
		want        lifecycle.Result
		wantStarted []string
	}{
		{"all steps succeed", lifecycletest.Behavior{}, lifecycle.FailAbandon, "", lifecycle.Continue, []string{"prepare", "check", "cleanup"}},
		{"plan result is sent when all steps succeed", lifecycletest.Behavior{}, lifecycle.FailAbandon, lifecycle.Abandon, lifecycle.Abandon, []string{"prepare", "check", "cleanup"}},
		{"failure with abandon stops the plan", lifecycletest.Behavior{ExitCode: 3}, lifecycle.FailAbandon, "", lifecycle.Abandon, []string{"prepare", "check"}},
		{"failure with continue goes on", lifecycletest.Behavior{ExitCode: 3}, lifecycle.FailContinue, "", lifecycle.Continue, []string{"prepare", "check", "cleanup"}},
		{"failure goes on by default", lifecycletest.Behavior{ExitCode: 3}, "", "", lifecycle.Continue, []string{"prepare", "check", "cleanup"}},
		{"timeout is a failure", lifecycletest.Behavior{TimedOut: true, ExitCode: -1}, lifecycle.FailAbandon, "", lifecycle.Abandon, []string{"prepare", "check"}},
		{"failure to start is a failure", lifecycletest.Behavior{StartErr: errors.New("fork/exec /usr/local/bin/check: no such file or directory")}, lifecycle.FailAbandon, "", lifecycle.Abandon, []string{"prepare", "check"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
				steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{
					"prepare": {Duration: time.Minute},
					"check":   c.check,
					"cleanup": {Duration: time.Minute},
				}}
				j := openJournal(t)
				a := newAction(time.Hour)
				plan := lifecycle.Plan{Result: c.result, Steps: []lifecycle.Step{step("prepare"), withPolicy("check", c.policy), step("cleanup")}}

				got, err := newExecutor(t, j, aws, steps).Run(t.Context(), a, plan, closed())
				if err != nil || got != c.want {
					t.Fatalf("Run = %q, %v; want %q, nil", got, err, c.want)
				}
				if got := steps.Started(); !reflect.DeepEqual(got, c.wantStarted) {
					t.Errorf("started %q, want %q", got, c.wantStarted)
				}
				if comp := aws.Completions(); len(comp) != 1 || comp[0].Result != c.want {
					t.Errorf("completions = %+v, want one with %s", comp, c.want)
				}
				rec := load(t, j, a.Key())
				check := rec.Steps[1]
				if check.Name != "check" || check.State != lifecycle.StepFinished || check.TimedOut != c.check.TimedOut {
					t.Errorf("journaled check = %+v, want finished", check)
				}
				if c.check.StartErr != nil && (check.ExitCode != -1 || !strings.Contains(check.Error, "no such file")) {
					t.Errorf("journaled check = %+v, want exit code -1 and the start error", check)
				}
			})
		})
	}
}

func TestConfirmation(t *testing.T) {
	for _, c := range []struct {
		name           string
		plan           time.Duration
		confirmAt      time.Duration
		wantHeartbeats []time.Duration
		wantCompleteAt time.Duration
	}{
		{"plan ends before confirmation", 10 * time.Minute, 25 * time.Minute, nil, 25 * time.Minute},
		{"plan ends after confirmation", 50 * time.Minute, 25 * time.Minute, []time.Duration{25 * time.Minute}, 50 * time.Minute},
		{"long plan heartbeats from confirmation on", 100 * time.Minute, 25 * time.Minute, []time.Duration{25 * time.Minute, 55 * time.Minute, 85 * time.Minute}, 100 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
				steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: c.plan}}}
				confirmed := make(chan struct{})
				go func() {
					time.Sleep(c.confirmAt) // Terminating:Wait observed
					close(confirmed)
				}()

				got, err := newExecutor(t, openJournal(t), aws, steps).Run(t.Context(), newAction(time.Hour), lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}, confirmed)
				if err != nil || got != lifecycle.Continue {
					t.Fatalf("Run = %q, %v; want CONTINUE, nil", got, err)
				}
				if calls := steps.Calls(); len(calls) != 1 || calls[0].At != start {
					t.Errorf("step calls = %+v, want one Start at once, before confirmation", calls)
				}
				if got := offsets(start, aws.Heartbeats()); !reflect.DeepEqual(got, c.wantHeartbeats) {
					t.Errorf("heartbeats at %v, want %v", got, c.wantHeartbeats)
				}
				if got := offsets(start, aws.Completions()); !reflect.DeepEqual(got, []time.Duration{c.wantCompleteAt}) {
					t.Errorf("completions at %v, want [%v]", got, c.wantCompleteAt)
				}
			})
		})
	}
}

func TestCancellation(t *testing.T) {
	t.Run("cancel while a step runs leaves it running", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK}
			steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: time.Hour}}}
			j := openJournal(t)
			a := newAction(time.Hour)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
			defer cancel()

			got, err := newExecutor(t, j, aws, steps).Run(ctx, a, lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}, closed())
			if got != "" || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Run = %q, %v; want \"\" and the context's error", got, err)
			}
			if at := time.Since(start); at != 10*time.Minute {
				t.Errorf("Run returned at %v, want at once on cancellation (10m0s)", at)
			}
			rec := load(t, j, a.Key())
			if rec.Completed || rec.Completing != "" || rec.Steps[0].State != lifecycle.StepStarted {
				t.Errorf("journal record = %+v, want step drain started and nothing completed", rec)
			}
			if !steps.Running(lifecycle.StepID{Key: a.Key(), Action: rec.ID, Step: "drain"}) {
				t.Errorf("step drain was stopped; it belongs to its supervisor")
			}
			time.Sleep(time.Hour) // let the step end inside the bubble
		})
	})

	t.Run("cancel while waiting for confirmation completes nothing", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			aws := &lifecycletest.Completer{T: t}
			steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: time.Minute}}}
			j := openJournal(t)
			a := newAction(time.Hour)
			ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
			defer cancel()

			got, err := newExecutor(t, j, aws, steps).Run(ctx, a, lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}, make(chan struct{}))
			if got != "" || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Run = %q, %v; want \"\" and the context's error", got, err)
			}
			if rec := load(t, j, a.Key()); rec.Completing != "" || rec.Steps[0].State != lifecycle.StepFinished {
				t.Errorf("journal record = %+v, want the step finished and no result saved", rec)
			}
		})
	})

	t.Run("completion under way outlives cancellation", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: func(cctx context.Context, _ int, _ lifecycle.Action, _ lifecycle.Result) error {
				cancel() // SIGTERM arrives during the call
				if err := cctx.Err(); err != nil {
					t.Errorf("Complete's context ended with Run's: %v", err)
				}
				if d, ok := cctx.Deadline(); !ok || time.Until(d) > time.Minute {
					t.Errorf("Complete's context deadline = %v, %v; want a short bound", d, ok)
				}
				return nil
			}}
			steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{}}
			j := openJournal(t)
			a := newAction(time.Hour)

			got, err := newExecutor(t, j, aws, steps).Run(ctx, a, lifecycle.Plan{}, closed())
			if err != nil || got != lifecycle.Continue {
				t.Fatalf("Run = %q, %v; want CONTINUE, nil", got, err)
			}
			if rec := load(t, j, a.Key()); !rec.Completed {
				t.Errorf("journal record = %+v, want completed", rec)
			}
		})
	})
}

func TestCompletionRetries(t *testing.T) {
	t.Run("transient errors are retried with backoff", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			aws := &lifecycletest.Completer{T: t, OnComplete: func(_ context.Context, n int, _ lifecycle.Action, _ lifecycle.Result) error {
				if n < 3 {
					return throttled
				}
				return nil
			}}
			steps := &lifecycletest.StepRunner{T: t}
			got, err := newExecutor(t, openJournal(t), aws, steps).Run(t.Context(), newAction(time.Hour), lifecycle.Plan{}, closed())
			if err != nil || got != lifecycle.Continue {
				t.Fatalf("Run = %q, %v; want CONTINUE, nil", got, err)
			}
			if got, want := offsets(start, aws.Completions()), []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second}; !reflect.DeepEqual(got, want) {
				t.Errorf("completions at %v, want %v", got, want)
			}
		})
	})

	t.Run("attempts are bounded and a later run completes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			failing := &lifecycletest.Completer{T: t, OnComplete: func(context.Context, int, lifecycle.Action, lifecycle.Result) error { return throttled }}
			steps := &lifecycletest.StepRunner{T: t}
			j := openJournal(t)
			a := newAction(time.Hour)
			got, err := newExecutor(t, j, failing, steps).Run(t.Context(), a, lifecycle.Plan{Result: lifecycle.Abandon}, closed())
			if got != "" || !errors.Is(err, throttled) || errors.Is(err, lifecycle.ErrNoActiveAction) {
				t.Fatalf("Run = %q, %v; want \"\" and the AWS error", got, err)
			}
			if n := len(failing.Completions()); n != 10 {
				t.Errorf("%d completion attempts, want 10", n)
			}
			if rec := load(t, j, a.Key()); rec.Completed || rec.Completing != lifecycle.Abandon {
				t.Errorf("journal record = %+v, want ABANDON decided, not completed", rec)
			}

			working := &lifecycletest.Completer{T: t, OnComplete: lifecycletest.CompleteOK}
			got, err = newExecutor(t, j, working, steps).Run(t.Context(), a, lifecycle.Plan{}, closed())
			if err != nil || got != lifecycle.Abandon {
				t.Fatalf("second Run = %q, %v; want the decided ABANDON, nil", got, err)
			}
		})
	})

	t.Run("retries stop at the deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			failing := &lifecycletest.Completer{T: t, OnComplete: func(context.Context, int, lifecycle.Action, lifecycle.Result) error { return throttled }}
			a := newAction(30 * time.Second)
			a.Seen = start.Add(-2995 * time.Second) // 5 s before the global timeout
			_, err := newExecutor(t, openJournal(t), failing, &lifecycletest.StepRunner{T: t}).Run(t.Context(), a, lifecycle.Plan{}, closed())
			if !errors.Is(err, throttled) {
				t.Fatalf("Run error = %v, want the AWS error", err)
			}
			if got, want := offsets(start, failing.Completions()), []time.Duration{0, time.Second, 3 * time.Second}; !reflect.DeepEqual(got, want) {
				t.Errorf("completions at %v, want %v", got, want)
			}
		})
	})
}

func TestHeartbeatFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		aws := &lifecycletest.Completer{T: t, OnComplete: lifecycletest.CompleteOK, OnHeartbeat: func(_ context.Context, n int, _ lifecycle.Action) error {
			if n == 1 {
				return throttled
			}
			return nil
		}}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: 70 * time.Minute}}}
		got, err := newExecutor(t, openJournal(t), aws, steps).Run(t.Context(), newAction(time.Hour), lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}, closed())
		if err != nil || got != lifecycle.Continue {
			t.Fatalf("Run = %q, %v; want CONTINUE, nil", got, err)
		}
		// The failed heartbeat at 30 min is retried a minute later, well
		// before the action would expire, then the schedule resumes.
		if got, want := offsets(start, aws.Heartbeats()), []time.Duration{0, 30 * time.Minute, 31 * time.Minute, 61 * time.Minute}; !reflect.DeepEqual(got, want) {
			t.Errorf("heartbeats at %v, want %v", got, want)
		}
	})
}

func TestConcurrentRunsOfOneAction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: time.Hour}}}
		e := newExecutor(t, openJournal(t), aws, steps)
		plan := lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}

		// The same action arrives twice: from IMDS, then from the queue.
		var wg sync.WaitGroup
		results := make([]lifecycle.Result, 2)
		for i := range results {
			wg.Go(func() {
				a := newAction(time.Hour)
				if i == 0 {
					a.Token = ""
				}
				r, err := e.Run(t.Context(), a, plan, closed())
				if err != nil {
					t.Errorf("Run %d: %v", i, err)
				}
				results[i] = r
			})
			time.Sleep(time.Minute)
		}
		wg.Wait()
		if results[0] != lifecycle.Continue || results[1] != lifecycle.Continue {
			t.Errorf("results = %q, want CONTINUE twice", results)
		}
		if got := steps.Started(); len(got) != 1 {
			t.Errorf("started %q, want drain once", got)
		}
		if c := aws.Completions(); len(c) != 1 {
			t.Errorf("%d completions, want 1", len(c))
		}
	})
}

func TestEnvironment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {}}}
		aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
		e := newExecutor(t, openJournal(t), aws, steps)
		e.Env = func(a lifecycle.Action, s lifecycle.Step) []string {
			return []string{"LIFEGUARD_INSTANCE_ID=" + a.InstanceID, "LIFEGUARD_DEADLINE=" + lifecycle.Deadline(a).Format(time.RFC3339), "B=from-action", "STEP=" + s.Name}
		}
		s := step("drain")
		s.Env = map[string]string{"B": "from-step", "A": "1"}
		a := newAction(time.Hour)
		if _, err := e.Run(t.Context(), a, lifecycle.Plan{Steps: []lifecycle.Step{s}}, closed()); err != nil {
			t.Fatal(err)
		}
		want := []string{"LIFEGUARD_INSTANCE_ID=" + instanceID, "LIFEGUARD_DEADLINE=" + a.Seen.Add(48*time.Hour).Format(time.RFC3339), "B=from-action", "STEP=drain", "A=1", "B=from-step"}
		if calls := steps.Calls(); len(calls) != 1 || !reflect.DeepEqual(calls[0].Env, want) {
			t.Errorf("step calls = %+v, want one Start with env %q", calls, want)
		}
	})
}

func TestRunRejectsInvalidInput(t *testing.T) {
	valid := lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}
	for _, c := range []struct {
		name      string
		change    func(a *lifecycle.Action, p *lifecycle.Plan)
		confirmed <-chan struct{}
		want      string
	}{
		{"nil confirmation channel", func(*lifecycle.Action, *lifecycle.Plan) {}, nil, "confirmed channel is nil"},
		{"unknown heartbeat timeout", func(a *lifecycle.Action, _ *lifecycle.Plan) { a.Hook.HeartbeatTimeout = 0 }, closed(), "heartbeat timeout"},
		{"duplicate step names", func(_ *lifecycle.Action, p *lifecycle.Plan) { p.Steps = append(p.Steps, step("drain")) }, closed(), "name used twice"},
		{"bad result", func(_ *lifecycle.Action, p *lifecycle.Plan) { p.Result = "DONE" }, closed(), `plan result "DONE"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, p := newAction(time.Hour), valid
			p.Steps = append([]lifecycle.Step(nil), valid.Steps...)
			c.change(&a, &p)
			j := openJournal(t)
			_, err := newExecutor(t, j, &lifecycletest.Completer{T: t}, &lifecycletest.StepRunner{T: t}).Run(t.Context(), a, p, c.confirmed)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Run error = %v, want one mentioning %q", err, c.want)
			}
			if recs, err := j.List(); err != nil || len(recs) != 0 {
				t.Errorf("journal holds %+v, %v after a rejected Run; want nothing", recs, err)
			}
		})
	}
}
