package lifecycle_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

// TestRestart starts an agent on the journal and supervisors a previous
// agent left behind when it was killed at some point of the action.
func TestRestart(t *testing.T) {
	const runID = "PREVIOUS-AGENT-RUN"
	finished := func(name string, exit int) lifecycle.StepRecord {
		return lifecycle.StepRecord{Name: name, State: lifecycle.StepFinished, ExitCode: exit}
	}
	started := lifecycle.StepRecord{Name: "flush", State: lifecycle.StepStarted}
	onInterrupt := func(p lifecycle.InterruptPolicy) lifecycle.Step {
		s := step("flush")
		s.OnInterrupt = p
		return s
	}
	abandonOnFailure := step("flush")
	abandonOnFailure.OnFailure = lifecycle.FailAbandon
	completeWith := func(err error) func(context.Context, int, lifecycle.Action, lifecycle.Result) error {
		return func(context.Context, int, lifecycle.Action, lifecycle.Result) error { return err }
	}

	for _, c := range []struct {
		name        string
		record      lifecycle.Record // Key, ID, Token and Seen are filled in
		supervisor  *lifecycletest.Supervisor
		flush       lifecycle.Step
		runs        map[string]lifecycletest.Behavior // steps Start may start
		onComplete  func(context.Context, int, lifecycle.Action, lifecycle.Result) error
		want        lifecycle.Result
		wantErr     error
		wantStarted []string
		wantAdopted []string
		wantSent    []lifecycle.Result
		wantFlush   lifecycle.StepState
	}{
		{
			name:        "step finished before the crash is not run again",
			record:      lifecycle.Record{Steps: []lifecycle.StepRecord{finished("deregister", 0)}},
			flush:       step("flush"),
			runs:        map[string]lifecycletest.Behavior{"flush": {Duration: time.Minute}},
			onComplete:  lifecycletest.CompleteOK,
			want:        lifecycle.Continue,
			wantStarted: []string{"flush"},
			wantSent:    []lifecycle.Result{lifecycle.Continue},
			wantFlush:   lifecycle.StepFinished,
		},
		{
			name:        "step running under a live supervisor is adopted, not started",
			record:      lifecycle.Record{Steps: []lifecycle.StepRecord{finished("deregister", 0), started}},
			supervisor:  &lifecycletest.Supervisor{Remaining: 5 * time.Minute},
			flush:       step("flush"),
			onComplete:  lifecycletest.CompleteOK,
			want:        lifecycle.Continue,
			wantAdopted: []string{"flush"},
			wantSent:    []lifecycle.Result{lifecycle.Continue},
			wantFlush:   lifecycle.StepFinished,
		},
		{
			name:        "step that ended while no agent ran is adopted with its exit status",
			record:      lifecycle.Record{Steps: []lifecycle.StepRecord{finished("deregister", 0), started}},
			supervisor:  &lifecycletest.Supervisor{ExitCode: 2},
			flush:       abandonOnFailure,
			onComplete:  lifecycletest.CompleteOK,
			want:        lifecycle.Abandon,
			wantAdopted: []string{"flush"},
			wantSent:    []lifecycle.Result{lifecycle.Abandon},
			wantFlush:   lifecycle.StepFinished,
		},
		{
			name:        "step whose supervisor died is rerun with on_interrupt rerun",
			record:      lifecycle.Record{Steps: []lifecycle.StepRecord{finished("deregister", 0), started}},
			supervisor:  &lifecycletest.Supervisor{Dead: true},
			flush:       onInterrupt(lifecycle.InterruptRerun),
			runs:        map[string]lifecycletest.Behavior{"flush": {Duration: time.Minute}},
			onComplete:  lifecycletest.CompleteOK,
			want:        lifecycle.Continue,
			wantStarted: []string{"flush"},
			wantAdopted: []string{"flush"},
			wantSent:    []lifecycle.Result{lifecycle.Continue},
			wantFlush:   lifecycle.StepFinished,
		},
		{
			name:        "step whose supervisor died is skipped with on_interrupt skip",
			record:      lifecycle.Record{Steps: []lifecycle.StepRecord{finished("deregister", 0), started}},
			supervisor:  &lifecycletest.Supervisor{Dead: true},
			flush:       onInterrupt(lifecycle.InterruptSkip),
			onComplete:  lifecycletest.CompleteOK,
			want:        lifecycle.Continue,
			wantAdopted: []string{"flush"},
			wantSent:    []lifecycle.Result{lifecycle.Continue},
			wantFlush:   lifecycle.StepSkipped,
		},
		{
			name:        "step whose supervisor died is skipped by default",
			record:      lifecycle.Record{Steps: []lifecycle.StepRecord{finished("deregister", 0), started}},
			supervisor:  &lifecycletest.Supervisor{Dead: true},
			flush:       step("flush"),
			onComplete:  lifecycletest.CompleteOK,
			want:        lifecycle.Continue,
			wantAdopted: []string{"flush"},
			wantSent:    []lifecycle.Result{lifecycle.Continue},
			wantFlush:   lifecycle.StepSkipped,
		},
		{
			name:       "failed step with abandon journaled before the crash still abandons",
			record:     lifecycle.Record{Steps: []lifecycle.StepRecord{finished("deregister", 0), finished("flush", 1)}},
			flush:      abandonOnFailure,
			onComplete: lifecycletest.CompleteOK,
			want:       lifecycle.Abandon,
			wantSent:   []lifecycle.Result{lifecycle.Abandon},
			wantFlush:  lifecycle.StepFinished,
		},
		{
			name:       "interrupted completion is retried",
			record:     lifecycle.Record{Steps: []lifecycle.StepRecord{finished("deregister", 0), finished("flush", 0)}, Completing: lifecycle.Abandon},
			flush:      step("flush"),
			onComplete: lifecycletest.CompleteOK,
			want:       lifecycle.Abandon, // the journaled decision, not a new one
			wantSent:   []lifecycle.Result{lifecycle.Abandon},
			wantFlush:  lifecycle.StepFinished,
		},
		{
			name:       "interrupted completion that had landed is accepted",
			record:     lifecycle.Record{Steps: []lifecycle.StepRecord{finished("deregister", 0), finished("flush", 0)}, Completing: lifecycle.Continue},
			flush:      step("flush"),
			onComplete: completeWith(noActive),
			want:       lifecycle.Continue,
			wantErr:    lifecycle.ErrNoActiveAction,
			wantSent:   []lifecycle.Result{lifecycle.Continue},
			wantFlush:  lifecycle.StepFinished,
		},
		{
			name:      "completed action makes no call at all",
			record:    lifecycle.Record{Steps: []lifecycle.StepRecord{finished("deregister", 0), finished("flush", 0)}, Completing: lifecycle.Abandon, Completed: true},
			flush:     step("flush"),
			want:      lifecycle.Abandon,
			wantFlush: lifecycle.StepFinished,
		},
		{
			name:      "gone action makes no call at all",
			record:    lifecycle.Record{Steps: []lifecycle.StepRecord{finished("deregister", 0), started}, Completed: true, Gone: true},
			flush:     step("flush"),
			want:      "",
			wantErr:   lifecycle.ErrNoActiveAction,
			wantFlush: lifecycle.StepStarted,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a := newAction(time.Hour)
				j := openJournal(t)
				rec := c.record
				rec.Key, rec.ID, rec.Token, rec.Seen = a.Key(), runID, token, a.Seen.Add(-10*time.Minute)
				if err := j.Save(rec); err != nil {
					t.Fatal(err)
				}
				steps := &lifecycletest.StepRunner{T: t, Steps: c.runs}
				if c.supervisor != nil {
					steps.Supervise(lifecycle.StepID{Key: a.Key(), Action: runID, Step: "flush"}, *c.supervisor)
				}
				aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: c.onComplete}
				if c.record.Completed {
					aws.OnHeartbeat = nil // no call at all
				}
				plan := lifecycle.Plan{Steps: []lifecycle.Step{step("deregister"), c.flush}}

				// The new agent learned of the action from IMDS: no token.
				a.Token = ""
				got, err := newExecutor(t, j, aws, steps).Run(t.Context(), a, plan, closed())
				if got != c.want || !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
					t.Fatalf("Run = %q, %v; want %q, %v", got, err, c.want, c.wantErr)
				}
				if got := steps.Started(); !reflect.DeepEqual(got, c.wantStarted) {
					t.Errorf("started %q, want %q", got, c.wantStarted)
				}
				if got := steps.Adopted(); !reflect.DeepEqual(got, c.wantAdopted) {
					t.Errorf("adopted %q, want %q", got, c.wantAdopted)
				}
				var sent []lifecycle.Result
				for _, call := range aws.Completions() {
					sent = append(sent, call.Result)
					if call.Action.Token != token || !call.Action.Seen.Equal(rec.Seen) {
						t.Errorf("Complete for token %q seen %v; want the journaled token and first sighting", call.Action.Token, call.Action.Seen)
					}
				}
				if !reflect.DeepEqual(sent, c.wantSent) {
					t.Errorf("completed with %q, want %q", sent, c.wantSent)
				}
				after := load(t, j, a.Key())
				if !after.Completed || after.ID != runID {
					t.Errorf("journal record = %+v, want the same action, completed", after)
				}
				if i := len(after.Steps) - 1; after.Steps[i].Name != "flush" || after.Steps[i].State != c.wantFlush {
					t.Errorf("journaled steps = %+v, want flush %s", after.Steps, c.wantFlush)
				}
			})
		})
	}
}

// TestKilledAgentIsReplaced kills an agent in the middle of a step and
// starts another on the same journal and supervisors.
func TestKilledAgentIsReplaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{
			"deregister": {Duration: 10 * time.Minute},
			"drain":      {Duration: time.Hour},
			"upload":     {Duration: 4 * time.Minute},
		}}
		j := openJournal(t)
		a := newAction(time.Hour)
		plan := lifecycle.Plan{Steps: []lifecycle.Step{step("deregister"), step("drain"), step("upload")}}

		ctx, kill := context.WithTimeout(t.Context(), 40*time.Minute)
		defer kill()
		if _, err := newExecutor(t, j, aws, steps).Run(ctx, a, plan, closed()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("first agent's Run error = %v, want the context's", err)
		}

		time.Sleep(5 * time.Minute) // systemd restarts the agent
		again := newAction(time.Hour)
		got, err := newExecutor(t, j, aws, steps).Run(t.Context(), again, plan, closed())
		if err != nil || got != lifecycle.Continue {
			t.Fatalf("second agent's Run = %q, %v; want CONTINUE, nil", got, err)
		}
		if got, want := steps.Started(), []string{"deregister", "drain", "upload"}; !reflect.DeepEqual(got, want) {
			t.Errorf("started %q, want each step once: %q", got, want)
		}
		if got, want := steps.Adopted(), []string{"drain"}; !reflect.DeepEqual(got, want) {
			t.Errorf("adopted %q, want %q", got, want)
		}
		// Heartbeats resume at once after the restart, with the deadline of
		// the first sighting.
		if got, want := offsets(start, aws.Heartbeats()), []time.Duration{0, 30 * time.Minute, 45 * time.Minute}; !reflect.DeepEqual(got, want) {
			t.Errorf("heartbeats at %v, want %v", got, want)
		}
		for _, hb := range aws.Heartbeats() {
			if !hb.Action.Seen.Equal(start) {
				t.Errorf("heartbeat for an action seen at %v, want the first sighting %v", hb.Action.Seen, start)
			}
		}
		if got, want := offsets(start, aws.Completions()), []time.Duration{74 * time.Minute}; !reflect.DeepEqual(got, want) {
			t.Errorf("completions at %v, want %v", got, want)
		}
	})
}

func TestTokens(t *testing.T) {
	t.Run("a new token starts a new action", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			j := openJournal(t)
			a := newAction(time.Hour)
			old := lifecycle.Record{Key: a.Key(), ID: "OLD", Token: "00000000-0000-0000-0000-000000000000", Seen: a.Seen.Add(-time.Hour),
				Steps:      []lifecycle.StepRecord{{Name: "drain", State: lifecycle.StepFinished}},
				Completing: lifecycle.Continue, Completed: true}
			if err := j.Save(old); err != nil {
				t.Fatal(err)
			}
			aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
			steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: time.Minute}}}
			got, err := newExecutor(t, j, aws, steps).Run(t.Context(), a, lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}, closed())
			if err != nil || got != lifecycle.Continue {
				t.Fatalf("Run = %q, %v; want CONTINUE, nil", got, err)
			}
			calls := steps.Calls()
			if len(calls) != 1 || calls[0].ID.Action == "OLD" || calls[0].ID.Action == "" {
				t.Errorf("step calls = %+v, want one Start under a new action id", calls)
			}
			if rec := load(t, j, a.Key()); rec.Token != token || rec.ID == "OLD" || !rec.Seen.Equal(a.Seen) {
				t.Errorf("journal record = %+v, want the new action's", rec)
			}
		})
	})

	t.Run("a token learned later belongs to the same action", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			j := openJournal(t)
			a := newAction(time.Hour)
			a.Token = ""
			aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
			steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: time.Minute}}}
			e := newExecutor(t, j, aws, steps)
			plan := lifecycle.Plan{Steps: []lifecycle.Step{step("drain")}}
			if _, err := e.Run(t.Context(), a, plan, closed()); err != nil {
				t.Fatal(err)
			}
			// The hook's notification arrives late, with the token.
			a.Token = token
			got, err := e.Run(t.Context(), a, plan, closed())
			if err != nil || got != lifecycle.Continue {
				t.Fatalf("Run with the token = %q, %v; want CONTINUE, nil", got, err)
			}
			if n, m := len(steps.Started()), len(aws.Completions()); n != 1 || m != 1 {
				t.Errorf("%d starts and %d completions, want 1 each", n, m)
			}
		})
	})
}

// journalFirst is a StepRunner that checks, at every Start, that the
// journal already records the step as started: a crash right after Start
// then leads the next agent to adopt the step, never to start it again.
type journalFirst struct {
	*lifecycletest.StepRunner
	t *testing.T
	j *lifecycle.Journal
}

func (r journalFirst) Start(ctx context.Context, id lifecycle.StepID, s lifecycle.Step, env []string) (lifecycle.StepHandle, error) {
	rec, ok, err := r.j.Load(id.Key)
	if err != nil || !ok {
		r.t.Errorf("Start(%v): no journal record (%v)", id, err)
	} else if i := slices.IndexFunc(rec.Steps, func(sr lifecycle.StepRecord) bool { return sr.Name == id.Step }); i < 0 || rec.Steps[i].State != lifecycle.StepStarted || rec.ID != id.Action {
		r.t.Errorf("Start(%v): journal record %+v does not say the step started", id, rec)
	}
	return r.StepRunner.Start(ctx, id, s, env)
}

func TestStepIsJournaledBeforeItStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := openJournal(t)
		steps := journalFirst{t: t, j: j, StepRunner: &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{
			"deregister": {Duration: time.Minute},
			"drain":      {Duration: time.Minute},
		}}}
		aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
		plan := lifecycle.Plan{Steps: []lifecycle.Step{step("deregister"), step("drain")}}
		if _, err := newExecutor(t, j, aws, steps).Run(t.Context(), newAction(time.Hour), plan, closed()); err != nil {
			t.Fatal(err)
		}
		if got := steps.Started(); len(got) != 2 {
			t.Errorf("started %q, want both steps", got)
		}
	})
}
