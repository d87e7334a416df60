package agent_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

// The fast path of source sqs: a message starts the action at once with
// the hooks read before, and the first heartbeat, sent at once, is what
// lets the first step start. These tests hold it to the guarantees: nothing
// runs for an instance Auto Scaling does not have in its wait state, and a
// crash at either end of a step leaves one run and one completion.

// noActiveErr is what the Auto Scaling adapter returns for an action it
// does not have.
var noActiveErr = fmt.Errorf("ValidationError: No active Lifecycle Action found with token %s: %w", token, lifecycle.ErrNoActiveAction)

// The step starts in the same instant as the message is received: the
// hooks read at start are used, and read again after (DescribeLifecycleHooks
// takes 100 ms here, which neither the first heartbeat nor the step waits
// for).
func TestSQSMessageStartsTheStepAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}, hooksDelay: 100 * time.Millisecond}
		aws := okCompleter(t)
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Minute}}}
		r := start(t, newAgent(t, sqsConfig(t, false), agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: aws, Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		_, hooksAtStart := asg.calls()
		time.Sleep(2 * time.Second) // between two polls
		t0 := time.Now()
		q.batches <- []agent.Message{msg("m1", "r1", snsWrap(rawTerminate))}
		synctest.Wait()
		if calls := steps.Calls(); len(calls) != 1 || !calls[0].At.Equal(t0) {
			t.Errorf("step calls %+v, want flush started at once", calls)
		}
		if hb := aws.Heartbeats(); len(hb) != 1 || !hb[0].At.Equal(t0) || hb[0].Action.Token != token {
			t.Errorf("heartbeats %+v, want one by the message's token at once", hb)
		}
		if _, hooks := asg.calls(); hooks != hooksAtStart+1 {
			t.Errorf("%d DescribeLifecycleHooks calls after the message, want 1 (after the start)", hooks-hooksAtStart)
		}
		<-r.done
		if comps := aws.Completions(); r.err != nil || len(comps) != 1 || comps[0].Result != lifecycle.Continue {
			t.Errorf("Run = %v, completions %+v; want one CONTINUE", r.err, comps)
		}
	})
}

// A message for an action Auto Scaling does not have (the instance is not,
// or not yet, in Terminating:Wait) runs nothing, and the agent watches on:
// when the instance does terminate later, the plan runs once.
func TestSQSMessageForAnInstanceNotInItsWaitStateRunsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newFakeQueue()
		md := &fakeMetadata{}
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		var pending atomic.Bool
		aws := &lifecycletest.Completer{T: t, OnComplete: lifecycletest.CompleteOK, OnHeartbeat: func(context.Context, int, lifecycle.Action) error {
			if !pending.Load() {
				return noActiveErr
			}
			return nil
		}}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Minute}}}
		r := start(t, newAgent(t, sqsConfig(t, false), agent.Deps{Metadata: md, Group: asg, Completer: aws, Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		q.batches <- []agent.Message{msg("m1", "r1", snsWrap(rawTerminate))}
		synctest.Wait()
		if calls := steps.Calls(); len(calls) != 0 {
			t.Errorf("step calls %+v for an action Auto Scaling does not have, want none", calls)
		}
		if r.returned() {
			t.Fatalf("Run returned (%v) on a message for an action Auto Scaling does not have; want it to watch on", r.err)
		}
		if d, _, removed := q.state(); !reflect.DeepEqual(d, []string{"r1"}) || removed != 0 {
			t.Errorf("deleted %v, removed %d; want the message deleted and the queue kept", d, removed)
		}

		time.Sleep(time.Minute)
		t1 := time.Now()
		pending.Store(true)
		md.setTarget("Terminated")
		asg.setState("Terminating:Wait")
		<-r.done
		if got := steps.Started(); r.err != nil || !reflect.DeepEqual(got, []string{"flush"}) {
			t.Errorf("Run = %v, started %q; want flush once", r.err, got)
		}
		comps := aws.Completions()
		if len(comps) != 1 || comps[0].Result != lifecycle.Continue || comps[0].At.Before(t1) {
			t.Errorf("completions %+v, want one CONTINUE after the instance terminated", comps)
		}
	})
}

// haltingRunner reports the step id Start is called with and then blocks
// until the agent stops, starting nothing: the agent dies between
// journaling the step started and starting it.
type haltingRunner struct {
	lifecycle.StepRunner
	starting chan lifecycle.StepID
}

func (h haltingRunner) Start(ctx context.Context, id lifecycle.StepID, _ lifecycle.Step, _ []string) (lifecycle.StepHandle, error) {
	h.starting <- id
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestSQSCrashBetweenJournalAndStepStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := sqsConfig(t, false) // flush: on_interrupt rerun
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Minute}}}
		halt := haltingRunner{StepRunner: steps, starting: make(chan lifecycle.StepID, 1)}
		first := okCompleter(t)
		r1 := start(t, newAgent(t, cfg, agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: first, Steps: halt, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		q.batches <- []agent.Message{msg("m1", "r1", snsWrap(rawTerminate))}
		id := <-halt.starting
		asg.setState("Terminating:Wait")
		if err := r1.stop(); err != nil {
			t.Fatalf("first Run = %v", err)
		}
		// What the supervisors report for a step never started: no
		// supervisor runs and none recorded an exit status.
		steps.Supervise(id, lifecycletest.Supervisor{Dead: true})

		second := okCompleter(t)
		r2 := start(t, newAgent(t, cfg, agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: second, Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		// The message comes back, unless Auto Scaling's Terminating:Wait,
		// read at start, has let the agent finish already.
		select {
		case q.batches <- []agent.Message{msg("m1", "r2", snsWrap(rawTerminate))}:
		case <-r2.done:
		}
		<-r2.done
		if got := steps.Started(); !reflect.DeepEqual(got, []string{"flush"}) {
			t.Errorf("started %q, want flush once", got)
		}
		if n, comps := len(first.Completions()), second.Completions(); r2.err != nil || n != 0 || len(comps) != 1 || comps[0].Result != lifecycle.Continue {
			t.Errorf("second Run = %v, completions %d then %+v; want one CONTINUE by the second agent", r2.err, n, comps)
		}
	})
}

func TestSQSCrashBetweenStepExitAndCompletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := sqsConfig(t, false)
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Minute}}}
		completing := make(chan struct{}, 1)
		first := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: func(context.Context, int, lifecycle.Action, lifecycle.Result) error {
			completing <- struct{}{}
			return errors.New("RequestError: send request failed: connection reset by peer")
		}}
		r1 := start(t, newAgent(t, cfg, agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: first, Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		q.batches <- []agent.Message{msg("m1", "r1", snsWrap(rawTerminate))}
		<-completing // the step has exited; the completion did not get through
		asg.setState("Terminating:Wait")
		if err := r1.stop(); err != nil {
			t.Fatalf("first Run = %v", err)
		}

		second := okCompleter(t)
		r2 := start(t, newAgent(t, cfg, agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: second, Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		// The message comes back, unless Auto Scaling's Terminating:Wait,
		// read at start, has let the agent finish already.
		select {
		case q.batches <- []agent.Message{msg("m1", "r2", snsWrap(rawTerminate))}:
		case <-r2.done:
		}
		<-r2.done
		if got, calls := steps.Started(), steps.Calls(); !reflect.DeepEqual(got, []string{"flush"}) || len(calls) != 1 {
			t.Errorf("step calls %+v, want flush started once and not adopted", calls)
		}
		if comps := second.Completions(); r2.err != nil || len(comps) != 1 || comps[0].Result != lifecycle.Continue {
			t.Errorf("second Run = %v, completions %+v; want one CONTINUE", r2.err, comps)
		}
	})
}
