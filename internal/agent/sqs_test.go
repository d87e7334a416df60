package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptrace"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

// fakeQueue delivers the batches a test pushes and records what the agent
// deletes (by receipt), releases and removes. Safe for concurrent use.
type fakeQueue struct {
	batches  chan []agent.Message
	mu       sync.Mutex
	deleted  []string
	released []string
	releases int // Release calls
	kept     []string
	stale    map[string]bool // receipts Keep reports stale
	removed  int
}

func newFakeQueue() *fakeQueue { return &fakeQueue{batches: make(chan []agent.Message)} }

// Receive returns the next batch pushed, or none after wait (0: the
// default sqs.wait_time, 20 s).
func (q *fakeQueue) Receive(ctx context.Context, wait time.Duration) ([]agent.Message, error) {
	if wait <= 0 {
		wait = 20 * time.Second
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case b := <-q.batches:
		return b, nil
	case <-t.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (q *fakeQueue) Delete(_ context.Context, m agent.Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deleted = append(q.deleted, m.Receipt)
	return nil
}

func (q *fakeQueue) Release(_ context.Context, ms []agent.Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.releases++
	for _, m := range ms {
		q.released = append(q.released, m.Receipt)
	}
	return nil
}

func (q *fakeQueue) Keep(_ context.Context, m agent.Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.kept = append(q.kept, m.Receipt)
	if q.stale[m.Receipt] {
		return fmt.Errorf("keep message %s: MessageNotInflight: %w", m.ID, agent.ErrStaleReceipt)
	}
	return nil
}

// makeStale makes receipt stale: another receiver got its message since.
func (q *fakeQueue) makeStale(receipt string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stale == nil {
		q.stale = map[string]bool{}
	}
	q.stale[receipt] = true
}

func (q *fakeQueue) keeps() (kept []string, releases int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string{}, q.kept...), q.releases
}

func (q *fakeQueue) Remove(context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.removed++
	return nil
}

func (q *fakeQueue) state() (deleted, released []string, removed int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string{}, q.deleted...), append([]string{}, q.released...), q.removed
}

// fakeInbox opens q, or fails with err; its first fail opens fail too.
type fakeInbox struct {
	t      testing.TB
	q      *fakeQueue
	trace  bool // Open returns q as a tracingQueue
	err    error
	fail   int
	mu     sync.Mutex
	opens  int
	opened time.Time // when an open succeeded
}

func (in *fakeInbox) openedAt() time.Time {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.opened
}

func (in *fakeInbox) Open(_ context.Context, id string) (agent.Queue, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.opens++
	if id != instanceID {
		in.t.Errorf("Open(%q), want %q", id, instanceID)
	}
	if in.err != nil {
		return nil, in.err
	}
	if in.opens <= in.fail {
		return nil, errors.New("AccessDenied")
	}
	in.opened = time.Now()
	if in.trace {
		return tracingQueue{in.q}, nil
	}
	return in.q, nil
}

// tracingQueue is a fakeQueue whose Receive does what an HTTP client does
// with the trace of a request's context: it reports the request written,
// then waits for the answer.
type tracingQueue struct{ *fakeQueue }

func (q tracingQueue) Receive(ctx context.Context, wait time.Duration) ([]agent.Message, error) {
	if tr := httptrace.ContextClientTrace(ctx); tr != nil && tr.WroteRequest != nil {
		tr.WroteRequest(httptrace.WroteRequestInfo{})
	}
	return q.fakeQueue.Receive(ctx, wait)
}

func sqsConfig(t *testing.T, shared bool) config.Agent {
	cfg := newConfig(t)
	cfg.Source = config.SourceSQS
	if shared {
		cfg.SQS.QueueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/lifecycle"
	} else {
		cfg.SQS.TopicARN = "arn:aws:sns:us-east-1:123456789012:lifecycle"
	}
	cfg.Terminate.Steps = []config.Step{step("flush")}
	return cfg
}

const token = "602063c7-4a06-4a67-b8cf-87ccc33bdc86"

func msg(id, receipt, body string) agent.Message {
	return agent.Message{ID: id, Receipt: receipt, Body: body}
}

func TestSQSTerminateMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		aws := okCompleter(t)
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: 3 * time.Minute}}}
		r := start(t, newAgent(t, sqsConfig(t, false), agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: aws, Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()

		time.Sleep(time.Minute)
		q.batches <- []agent.Message{msg("m1", "r1", snsWrap(rawTerminate))}
		synctest.Wait()
		if got := steps.Started(); !reflect.DeepEqual(got, []string{"flush"}) {
			t.Errorf("steps started %v, want flush at once", got)
		}
		time.Sleep(time.Minute)
		// Redelivered after its visibility timeout while the plan runs.
		q.batches <- []agent.Message{msg("m1", "r2", snsWrap(rawTerminate))}
		synctest.Wait()
		if d, _, _ := q.state(); len(d) != 0 {
			t.Errorf("deleted %v before the action was completed", d)
		}
		<-r.done

		if r.err != nil || r.at.Sub(t0) != 4*time.Minute {
			t.Errorf("Run = %v at %v, want nil at 4m0s", r.err, r.at.Sub(t0))
		}
		comps := aws.Completions()
		if len(comps) != 1 || comps[0].Action.Token != token || comps[0].Action.Hook.Name != "drain" || comps[0].Result != lifecycle.Continue {
			t.Errorf("completions %+v, want one CONTINUE of drain by the message's token", comps)
		}
		// The step's own timeout (1h from 1m) comes before the action's
		// deadline (100 × 10m after it was first seen).
		if env := envOf(t, steps.Calls(), "flush"); env["LIFEGUARD_LIFECYCLE_TOKEN"] != token || env["LIFEGUARD_REASON"] != "lifecycle-hook" ||
			env["LIFEGUARD_HOOK"] != "drain" || env["LIFEGUARD_DEADLINE"] != t0.Add(61*time.Minute).UTC().Format(time.RFC3339) {
			t.Errorf("step environment %v, want the message's token, hook drain, the deadline of the step's timeout", env)
		}
		deleted, released, removed := q.state()
		if !reflect.DeepEqual(deleted, []string{"r2"}) || len(released) != 0 || removed != 1 {
			t.Errorf("deleted %v released %v removed %d; want the latest receipt deleted once completed, the queue removed", deleted, released, removed)
		}
		if n, _ := asg.calls(); n != 1 {
			t.Errorf("%d DescribeAutoScalingInstances calls, want 1 (at start)", n)
		}
	})
}

func TestSQSSharedQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		aws := okCompleter(t)
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Minute}}}
		r := start(t, newAgent(t, sqsConfig(t, true), agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: aws, Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()

		other := `{"LifecycleHookName":"drain","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","AutoScalingGroupName":"web","EC2InstanceId":"i-0fffffffffffffff0","LifecycleActionToken":"t2"}`
		q.batches <- []agent.Message{msg("other", "r-other", other), msg("test", "r-test", rawTest), msg("bad", "r-bad", "not json"), msg("bad", "r-bad2", "not json")}
		synctest.Wait()
		deleted, released, _ := q.state()
		if !reflect.DeepEqual(deleted, []string{"r-test", "r-bad", "r-bad2"}) || !reflect.DeepEqual(released, []string{"r-other"}) {
			t.Errorf("deleted %v released %v; want the test notification and unparsable messages deleted, another instance's handed back", deleted, released)
		}
		if _, releases := q.keeps(); releases != 1 {
			t.Errorf("%d Release calls for one receive, want 1 (the batch handed back at once)", releases)
		}
		if len(steps.Started()) != 0 || r.returned() {
			t.Errorf("another instance's message started the plan")
		}
		q.batches <- []agent.Message{msg("mine", "r-mine", rawTerminate)}
		<-r.done
		deleted, _, _ = q.state()
		if r.err != nil || !reflect.DeepEqual(deleted, []string{"r-test", "r-bad", "r-bad2", "r-mine"}) {
			t.Errorf("Run = %v, deleted %v; want nil and this instance's message deleted once completed", r.err, deleted)
		}
		if comps := aws.Completions(); len(comps) != 1 || comps[0].Action.Token != token {
			t.Errorf("completions %+v, want one by token", comps)
		}
	})
}

func TestSQSSharedQueueWithRedrivePolicyIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		asg := &fakeGroup{t: t, state: "InService"}
		in := &fakeInbox{t: t, err: errors.Join(errors.New("queue has RedrivePolicy"), agent.ErrSharedRedrive)}
		a := newAgent(t, sqsConfig(t, true), agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: noCalls(t), Inbox: in})
		if err := a.Run(t.Context()); !errors.Is(err, agent.ErrSharedRedrive) {
			t.Errorf("Run = %v, want ErrSharedRedrive", err)
		}
	})
}

func TestSQSLaunchMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "Pending", hooks: []lifecycle.Hook{launchHook("ready", 10*time.Minute), terminateHook("drain", 10*time.Minute)}}
		aws := okCompleter(t)
		r := start(t, newAgent(t, sqsConfig(t, false), agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: aws, Steps: &lifecycletest.StepRunner{T: t}, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(aws.Calls()) != 0 {
			t.Errorf("calls %+v before the launch message", aws.Calls())
		}
		asg.setState("Pending:Wait")
		q.batches <- []agent.Message{msg("l", "r-l", rawLaunch)}
		synctest.Wait()
		comps := aws.Completions()
		if len(comps) != 1 || comps[0].Action.Token != "71514b9d-6a40-4b26-8523-05e7ee35fa40" || comps[0].Result != lifecycle.Continue {
			t.Errorf("completions %+v, want one CONTINUE of ready by token", comps)
		}
		if d, _, _ := q.state(); !reflect.DeepEqual(d, []string{"r-l"}) {
			t.Errorf("deleted %v, want the launch message deleted once completed", d)
		}
		if err := r.stop(); err != nil {
			t.Errorf("Run = %v", err)
		}
		if _, _, removed := q.state(); removed != 0 {
			t.Errorf("queue removed on stop; want it kept for the next agent")
		}
	})
}

func TestSQSHeldMessageIsKeptHidden(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: 2 * time.Minute}}}
		cfg := sqsConfig(t, true)
		cfg.SQS.VisibilityTimeout = config.Duration(30 * time.Second)
		r := start(t, newAgent(t, cfg, agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: okCompleter(t), Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		time.Sleep(5 * time.Second)
		if kept, _ := q.keeps(); len(kept) != 0 {
			t.Errorf("kept %v with nothing held", kept)
		}
		q.batches <- []agent.Message{msg("mine", "r-mine", rawTerminate)}
		time.Sleep(9 * time.Second)
		synctest.Wait()
		// The ticker counts from the message's holding, not from the
		// queue's opening (10 s), while nothing was held.
		if kept, _ := q.keeps(); len(kept) != 0 {
			t.Errorf("kept %v within 9 s of holding the message, want the first keep 10 s after it", kept)
		}
		time.Sleep(time.Minute - 9*time.Second)
		synctest.Wait()
		// Every visibility_timeout/3 from the message's holding (5 s): 15 s … 65 s.
		if kept, _ := q.keeps(); len(kept) != 6 {
			t.Errorf("kept %d times in the first minute, want 6 (every 10 s)", len(kept))
		}
		<-r.done
		kept, _ := q.keeps()
		for _, k := range kept {
			if k != "r-mine" {
				t.Errorf("kept %q, want only the held message r-mine", k)
			}
		}
		if len(kept) != 12 {
			t.Errorf("kept %d times while the 2-minute plan ran, want 12", len(kept))
		}
		if d, _, _ := q.state(); !reflect.DeepEqual(d, []string{"r-mine"}) {
			t.Errorf("deleted %v, want r-mine once completed", d)
		}
	})
}

func TestSQSStopHandsHeldMessagesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Hour}}}
		r := start(t, newAgent(t, sqsConfig(t, true), agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: okCompleter(t), Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		q.batches <- []agent.Message{msg("mine", "r-mine", rawTerminate)}
		synctest.Wait()
		if err := r.stop(); err != nil {
			t.Errorf("Run = %v", err)
		}
		// The next agent receives it at once instead of after the
		// visibility timeout; the journal keeps the steps from running twice.
		if deleted, released, removed := q.state(); len(deleted) != 0 || !reflect.DeepEqual(released, []string{"r-mine"}) || removed != 0 {
			t.Errorf("deleted %v released %v removed %d; want the held message handed back, nothing deleted or removed", deleted, released, removed)
		}
	})
}

func TestSQSSharedQueueSweepsOwnMessageAfterCompletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newFakeQueue()
		// Auto Scaling says Terminating:Wait at start: the plan runs and
		// completes by instance id before the message reaches the agent.
		asg := &fakeGroup{t: t, state: "Terminating:Wait", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		aws := okCompleter(t)
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: 50 * time.Second}}}
		r := start(t, newAgent(t, sqsConfig(t, true), agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: aws, Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		// Completed at 50 s; the long poll in flight ends at 60 s, and the
		// look for the instance's message begins.
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if comps := aws.Completions(); len(comps) != 1 || comps[0].Action.Token != "" {
			t.Fatalf("completions %+v, want one by instance id", comps)
		}
		if r.returned() {
			t.Fatal("Run returned without looking for the instance's message")
		}
		other := `{"LifecycleHookName":"drain","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","AutoScalingGroupName":"web","EC2InstanceId":"i-0fffffffffffffff0","LifecycleActionToken":"t2"}`
		q.batches <- []agent.Message{msg("other", "r-other", other), msg("mine", "r-mine", rawTerminate)}
		<-r.done
		deleted, released, _ := q.state()
		if r.err != nil || !reflect.DeepEqual(deleted, []string{"r-mine"}) || !reflect.DeepEqual(released, []string{"r-other"}) {
			t.Errorf("Run = %v, deleted %v, released %v; want its own message deleted and the other handed back", r.err, deleted, released)
		}
	})
}

func TestSQSSharedQueueSweepIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "Terminating:Wait", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		t0 := time.Now()
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: 50 * time.Second}}}
		r := start(t, newAgent(t, sqsConfig(t, true), agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: okCompleter(t), Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		<-r.done
		// The message never comes (the hook notifies elsewhere). The
		// long poll in flight at the completion (0 s, 20 s, 40 s → 60 s) is
		// let finish, then the look ends after 5 s.
		if r.err != nil || r.at.Sub(t0) != time.Minute+5*time.Second {
			t.Errorf("Run = %v after %v, want nil after 1m5s", r.err, r.at.Sub(t0))
		}
	})
}

// The hooks read at start are stale once a hook is put later: the message
// naming it, arriving within the same poll interval, makes the agent read
// them again instead of running the plan with nothing to complete.
func TestSQSMessageForHookPutAfterStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "InService"}
		aws := okCompleter(t)
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Second}}}
		r := start(t, newAgent(t, sqsConfig(t, true), agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: aws, Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		asg.setHooks(terminateHook("drain", 10*time.Minute))
		q.batches <- []agent.Message{msg("mine", "r-mine", rawTerminate)}
		<-r.done
		comps := aws.Completions()
		if len(comps) != 1 || comps[0].Action.Hook.Name != "drain" || comps[0].Action.Token != token {
			t.Errorf("completions %+v, want drain completed by the message's token", comps)
		}
	})
}

// A message names a hook DescribeLifecycleHooks does not list (yet): the
// plan waits a few polls for it, then runs with what is listed.
func TestSQSMessageForUnlistedHookWaitsBoundedly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "InService"}
		t0 := time.Now()
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Second}}}
		r := start(t, newAgent(t, sqsConfig(t, true), agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: noCalls(t), Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		q.batches <- []agent.Message{msg("mine", "r-mine", rawTerminate)}
		synctest.Wait()
		if len(steps.Started()) != 0 {
			t.Error("plan started before the hooks were read again")
		}
		time.Sleep(time.Minute)
		if got := startOffsets(t0, steps.Calls()); len(got) != 1 || got[0] != 25*time.Second {
			t.Errorf("plan started at %v, want once at 25 s (5 polls of 5 s)", got)
		}
		if err := r.stop(); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// TestSQSRestart stops an agent of a shared queue in the middle of the
// plan: it hands its message back, and the next agent, on the same
// journal, receives it again, adopts the running step, runs nothing twice,
// completes once and deletes the message with its own receipt.
func TestSQSRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := sqsConfig(t, true)
		cfg.Terminate.Steps = []config.Step{step("deregister"), step("flush")}
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{
			"deregister": {Duration: time.Minute},
			"flush":      {Duration: 10 * time.Minute},
		}}
		first := okCompleter(t)
		r1 := start(t, newAgent(t, cfg, agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: first, Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		q.batches <- []agent.Message{msg("mine", "r1", rawTerminate)}
		asg.setState("Terminating:Wait")
		time.Sleep(4 * time.Minute)
		if err := r1.stop(); err != nil {
			t.Fatalf("first Run = %v", err)
		}
		if _, released, _ := q.state(); !reflect.DeepEqual(released, []string{"r1"}) || len(first.Completions()) != 0 {
			t.Fatalf("released %v, completions %d; want the message handed back and nothing completed", released, len(first.Completions()))
		}

		second := okCompleter(t)
		r2 := start(t, newAgent(t, cfg, agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: second, Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		q.batches <- []agent.Message{msg("mine", "r2", rawTerminate)}
		<-r2.done
		if got, want := steps.Started(), []string{"deregister", "flush"}; !reflect.DeepEqual(got, want) {
			t.Errorf("started %q, want %q: nothing started twice", got, want)
		}
		if got, want := steps.Adopted(), []string{"flush"}; !reflect.DeepEqual(got, want) {
			t.Errorf("adopted %q, want %q", got, want)
		}
		if comps := second.Completions(); r2.err != nil || len(comps) != 1 || comps[0].Result != lifecycle.Continue {
			t.Errorf("second Run = %v, completions %+v; want one CONTINUE", r2.err, comps)
		}
		if deleted, _, _ := q.state(); !reflect.DeepEqual(deleted, []string{"r2"}) {
			t.Errorf("deleted %v, want the message by its latest receipt r2", deleted)
		}
	})
}

// Each action waits for its own unlisted hook: a launch that waited does
// not let a later termination go on at once.
func TestSQSEachActionWaitsForItsHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "Pending"}
		t0 := time.Now()
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Second}}}
		r := start(t, newAgent(t, sqsConfig(t, true), agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: noCalls(t), Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		q.batches <- []agent.Message{msg("l", "r-l", rawLaunch)}
		time.Sleep(time.Minute)
		q.batches <- []agent.Message{msg("mine", "r-mine", rawTerminate)}
		time.Sleep(time.Second) // the message comes first
		asg.setState("Terminating:Wait")
		time.Sleep(59 * time.Second)
		if got := startOffsets(t0, steps.Calls()); len(got) != 1 || got[0] != 85*time.Second {
			t.Errorf("plan started at %v, want once at 1m25s (25 s after its message)", got)
		}
		if err := r.stop(); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// A queue that cannot be opened (deleted, access denied) does not let the
// instance go without its plan: IMDS's target state still starts it, and
// the action is completed by instance id.
func TestSQSUnreadableQueueFallsBackOnIMDS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		md := &fakeMetadata{}
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		aws := okCompleter(t)
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Minute}}}
		in := &fakeInbox{t: t, err: errors.New("AccessDenied: not authorized to perform sqs:CreateQueue")}
		r := start(t, newAgent(t, sqsConfig(t, false), agent.Deps{Metadata: md, Group: asg, Completer: aws, Steps: steps, Inbox: in}))
		time.Sleep(time.Minute + 2*time.Second) // between two polls
		terminateWithoutMessage(t, md, asg, r)
		if got := startOffsets(t0, steps.Calls()); len(got) != 1 || got[0] != time.Minute+5*time.Second {
			t.Errorf("plan started at %v, want at the next IMDS poll (1m5s)", got)
		}
		comps := aws.Completions()
		if r.err != nil || len(comps) != 1 || comps[0].Action.Token != "" || comps[0].Result != lifecycle.Continue {
			t.Errorf("Run = %v, completions %+v; want one CONTINUE by instance id", r.err, comps)
		}
	})
}

// TestSQSStaleReceiptIsNotTrustedToDelete has the held message's
// visibility lapse while the plan runs (the agent starved of CPU past its
// keeps) and another agent receive it: the held receipt handle is stale,
// and SQS would accept a delete with it and delete nothing. The agent
// learns it from its next keep, does not delete with the stale handle,
// and looks for the message again before it exits.
func TestSQSStaleReceiptIsNotTrustedToDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: 2 * time.Minute}}}
		cfg := sqsConfig(t, true)
		cfg.SQS.VisibilityTimeout = config.Duration(30 * time.Second)
		r := start(t, newAgent(t, cfg, agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: okCompleter(t), Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		q.makeStale("r-first")
		q.batches <- []agent.Message{msg("mine", "r-first", rawTerminate)}
		// The plan runs two minutes; the look for the message after it
		// finds it under a new receipt.
		time.Sleep(2*time.Minute + 21*time.Second)
		synctest.Wait()
		if r.returned() {
			t.Fatal("Run returned without looking for the message whose receipt went stale")
		}
		q.batches <- []agent.Message{msg("mine", "r-again", rawTerminate)}
		<-r.done
		deleted, _, _ := q.state()
		if r.err != nil || !reflect.DeepEqual(deleted, []string{"r-again"}) {
			t.Errorf("Run = %v, deleted %v; want the message deleted with its fresh receipt only", r.err, deleted)
		}
	})
}

// A launch message that arrives for an instance Auto Scaling already
// reported in service (delivered late, or again) starts no launch, and
// the lifecycle state stays InService in /status and the log.
func TestSQSLaunchMessageForInServiceInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{launchHook("ready", 10*time.Minute)}}
		var logs syncBuffer
		a, err := agent.New(sqsConfig(t, false), agent.Deps{Metadata: &fakeMetadata{target: "InService"}, Group: asg, Completer: noCalls(t),
			Steps: &lifecycletest.StepRunner{T: t}, Inbox: &fakeInbox{t: t, q: q}}, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		r := start(t, a)
		synctest.Wait()
		time.Sleep(time.Minute)
		q.batches <- []agent.Message{msg("l", "r-l", rawLaunch)}
		time.Sleep(time.Minute)
		synctest.Wait()
		_, body := get(t, a.Handler(), "/status")
		var doc statusDoc
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.LifecycleState != "InService" || len(doc.Actions) != 0 {
			t.Errorf("/status lifecycle_state %q with %d actions, want InService and none", doc.LifecycleState, len(doc.Actions))
		}
		if d, _, _ := q.state(); !reflect.DeepEqual(d, []string{"r-l"}) {
			t.Errorf("deleted %v, want the stale launch message deleted", d)
		}
		if err := r.stop(); err != nil {
			t.Errorf("Run = %v", err)
		}
		if out := logs.String(); strings.Contains(out, "Pending:Wait") {
			t.Errorf("the log speaks of Pending:Wait for an instance in service:\n%s", out)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestSQSReadsMetadataAsABackstop: while the queue is open and nothing
// happens, an agent of source sqs reads the target state every third poll
// (every 15 s by default); when the queue stays quiet through a
// termination (its subscription gone, say), that read still starts the
// plan, within three polls.
func TestSQSReadsMetadataAsABackstop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		md := &fakeMetadata{target: "InService", lifeCycle: "on-demand"}
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		aws := okCompleter(t)
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Minute}}}
		q := newFakeQueue()
		r := start(t, newAgent(t, sqsConfig(t, false), agent.Deps{Metadata: md, Group: asg, Completer: aws, Steps: steps, Inbox: &fakeInbox{t: t, q: q}}))
		synctest.Wait()
		time.Sleep(time.Hour - time.Nanosecond)
		synctest.Wait()
		if got := md.callCounts()["autoscaling/target-lifecycle-state"]; got != 240 {
			t.Errorf("%d target state reads in an idle hour with the queue open, want 240 (one every third 5 s poll)", got)
		}
		// Just after the read at 1h: the next is at 1h0m15s.
		time.Sleep(time.Millisecond)
		synctest.Wait()
		terminateWithoutMessage(t, md, asg, r)
		if got := startOffsets(t0, steps.Calls()); len(got) != 1 || got[0] != time.Hour+15*time.Second {
			t.Errorf("plan started at %v, want at the next backstop read (1h0m15s)", got)
		}
		if comps := aws.Completions(); r.err != nil || len(comps) != 1 || comps[0].Result != lifecycle.Continue {
			t.Errorf("Run = %v, completions %+v; want one CONTINUE", r.err, comps)
		}
	})
}

// terminateWithoutMessage turns the instance to Terminating:Wait with no
// queue message (as IMDS and Auto Scaling see it) and waits three minutes
// for the agent to run its plan and return.
func terminateWithoutMessage(t *testing.T, md *fakeMetadata, asg *fakeGroup, r *running) {
	t.Helper()
	md.setTarget("Terminated")
	asg.setState("Terminating:Wait")
	time.Sleep(3 * time.Minute)
	synctest.Wait()
	if !r.returned() {
		_ = r.stop()
		t.Fatal("the terminate plan never ran: Run still going 3 minutes after the transition")
	}
}

// TestSQSWaitingWhileSettled: with source sqs the agent calls Deps.Waiting
// each time its long poll has been sent while it is settled (InService,
// the queue open, no action running), and not from the moment a
// notification for it arrives.
func TestSQSWaitingWhileSettled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var waiting atomic.Int32
		q := newFakeQueue()
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		aws := okCompleter(t)
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: 3 * time.Minute}}}
		r := start(t, newAgent(t, sqsConfig(t, false), agent.Deps{
			Metadata: &fakeMetadata{}, Group: asg, Completer: aws, Steps: steps, Inbox: &fakeInbox{t: t, q: q, trace: true},
			Waiting: func() { waiting.Add(1) },
		}))
		synctest.Wait()
		time.Sleep(time.Hour - time.Second) // not at the same instant as a poll
		synctest.Wait()
		// One poll every 20 s: 180 in the hour. The first is sent at
		// the instant the loop finds the agent settled (the turn that
		// opens the queue), before or after it: it may not count.
		if n := waiting.Load(); n != 179 && n != 180 {
			t.Errorf("Waiting called %d times in an idle hour, want 180 (at every 20 s poll), or 179 (the first sent before the loop saw the agent settled)", n)
		}
		before := waiting.Load()
		q.batches <- []agent.Message{msg("m1", "r1", snsWrap(rawTerminate))}
		<-r.done
		if n := waiting.Load(); n != before {
			t.Errorf("Waiting called %d times while the action ran, want none", n-before)
		}
		if comps := aws.Completions(); r.err != nil || len(comps) != 1 {
			t.Errorf("Run = %v, completions %+v; want one", r.err, comps)
		}
	})
}
