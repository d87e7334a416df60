package lifecycle_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

func TestRecordProgress(t *testing.T) {
	abandon := step("check")
	abandon.OnFailure = lifecycle.FailAbandon
	plan := lifecycle.Plan{Steps: []lifecycle.Step{step("deregister"), abandon, step("flush")}}
	done := func(name string, exit int) lifecycle.StepRecord {
		return lifecycle.StepRecord{Name: name, State: lifecycle.StepFinished, ExitCode: exit}
	}
	for _, c := range []struct {
		name string
		rec  lifecycle.Record
		want lifecycle.Progress
	}{
		{"nothing run: the first step is next", lifecycle.Record{}, lifecycle.Progress{Next: "deregister"}},
		{"a step started is next", lifecycle.Record{Steps: []lifecycle.StepRecord{done("deregister", 0), {Name: "check", State: lifecycle.StepStarted}}},
			lifecycle.Progress{Done: 1, Started: 2, Next: "check"}},
		{"failed step with on_failure continue: the plan goes on", lifecycle.Record{Steps: []lifecycle.StepRecord{done("deregister", 1)}},
			lifecycle.Progress{Done: 1, Started: 1, Next: "check"}},
		{"failed step with on_failure abandon ends the plan", lifecycle.Record{Steps: []lifecycle.StepRecord{done("deregister", 0), done("check", 2)}},
			lifecycle.Progress{Done: 2, Started: 2, Ended: true}},
		{"skipped steps count as done", lifecycle.Record{Steps: []lifecycle.StepRecord{done("deregister", 0), {Name: "check", State: lifecycle.StepSkipped}, done("flush", 0)}},
			lifecycle.Progress{Done: 3, Started: 3, Ended: true}},
		{"a decided result ends the plan", lifecycle.Record{Completing: lifecycle.Abandon},
			lifecycle.Progress{Ended: true, Decided: lifecycle.Abandon}},
		{"completed", lifecycle.Record{Completing: lifecycle.Continue, Completed: true, CompletedAt: time.Unix(100, 0)},
			lifecycle.Progress{Ended: true, Decided: lifecycle.Continue, Completed: true, CompletedAt: time.Unix(100, 0)}},
		{"gone before the plan ended", lifecycle.Record{Completed: true, Gone: true},
			lifecycle.Progress{Ended: true, Completed: true, Gone: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.rec.Seen, c.rec.Token = time.Unix(1, 0), token
			c.want.Seen, c.want.Token = time.Unix(1, 0), token
			if got := c.rec.Progress(plan); !reflect.DeepEqual(got, c.want) {
				t.Errorf("Progress = %+v, want %+v", got, c.want)
			}
		})
	}
	if got := (lifecycle.Record{}).Progress(lifecycle.Plan{}); !got.Ended || got.Next != "" {
		t.Errorf("Progress of a plan of no steps = %+v, want ended", got)
	}
}

func TestJournalProgressAndForget(t *testing.T) {
	j := openJournal(t)
	plan := lifecycle.Plan{Steps: []lifecycle.Step{step("flush")}}
	term := newAction(time.Hour).Key()
	launch := lifecycle.Key{Instance: instanceID, Transition: lifecycle.TransitionLaunching, Hook: "warmup"}
	other := lifecycle.Key{Instance: "i-0fedcba9876543210", Transition: lifecycle.TransitionTerminating, Hook: "drain"}
	if _, ok, err := j.Progress(term, plan); ok || err != nil {
		t.Fatalf("Progress of no record = ok %v, %v; want none", ok, err)
	}
	for _, k := range []lifecycle.Key{term, launch, other} {
		if err := j.Save(lifecycle.Record{Key: k, ID: "A", Seen: time.Unix(1, 0), Steps: []lifecycle.StepRecord{{Name: "flush", State: lifecycle.StepFinished}}}); err != nil {
			t.Fatal(err)
		}
	}
	if pr, ok, err := j.Progress(term, plan); !ok || err != nil || !pr.Ended || pr.Done != 1 || !pr.Seen.Equal(time.Unix(1, 0)) {
		t.Errorf("Progress = %+v, ok %v, %v; want the plan ended after 1 step", pr, ok, err)
	}
	removed, err := j.Forget(instanceID, lifecycle.TransitionTerminating)
	if err != nil || !reflect.DeepEqual(removed, []lifecycle.Key{term}) {
		t.Errorf("Forget = %v, %v; want [%v]", removed, err, term)
	}
	recs, err := j.List()
	if err != nil || len(recs) != 2 {
		t.Fatalf("List after Forget = %d records, %v; want the launch and the other instance's", len(recs), err)
	}
	if removed, err := j.Forget(instanceID, lifecycle.TransitionTerminating); err != nil || len(removed) != 0 {
		t.Errorf("Forget again = %v, %v; want nothing", removed, err)
	}
}
