package world_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

const (
	tgA = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/a/73e2d6bc24d8a067"
	tgB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/b/0123456789abcdef"
)

// fakeBalancers knows a fixed set of target groups and load balancers,
// records every call, and holds each deregistration's done until the test
// finishes draining with drain.
type fakeBalancers struct {
	mu      sync.Mutex
	tgs     []string
	lbs     []string
	calls   []string
	pending map[string][]func() // instance → done callbacks not yet called
	health  map[string][2]bool  // instance → healthy, known
	asked   chan string         // the instance of every Healthy call, when not full
}

func newFakeBalancers() *fakeBalancers {
	return &fakeBalancers{tgs: []string{tgA, tgB}, lbs: []string{"classic"}, pending: map[string][]func(){}, health: map[string][2]bool{}, asked: make(chan string, 100)}
}

func (b *fakeBalancers) CheckTargetGroups(arns []string) error {
	for _, a := range arns {
		if !slices.Contains(b.tgs, a) {
			return awsproto.Errorf("TargetGroupNotFound", "One or more target groups not found")
		}
	}
	return nil
}

func (b *fakeBalancers) CheckLoadBalancers(names []string) error {
	for _, n := range names {
		if !slices.Contains(b.lbs, n) {
			return awsproto.Validation("Provided Load Balancers may not be valid. Please ensure they exist and try again.")
		}
	}
	return nil
}

func (b *fakeBalancers) Register(tgs, lbs []string, id, ip string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf("register %s %s %v %v", id, ip, tgs, lbs))
}

func (b *fakeBalancers) Deregister(tgs, lbs []string, id string, done func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf("deregister %s %v %v", id, tgs, lbs))
	b.pending[id] = append(b.pending[id], done)
}

func (b *fakeBalancers) Healthy(_, _ []string, id string) (bool, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.asked <- id:
	default:
	}
	h, ok := b.health[id]
	if !ok {
		return false, false
	}
	return h[0], h[1]
}

func (b *fakeBalancers) setHealth(id string, healthy, known bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.health[id] = [2]bool{healthy, known}
}

// drain finishes every pending deregistration of an instance, calling done
// without any lock held as the real owner does. It reports how many it
// finished.
func (b *fakeBalancers) drain(id string) int {
	b.mu.Lock()
	dones := b.pending[id]
	delete(b.pending, id)
	b.mu.Unlock()
	for _, d := range dones {
		d()
	}
	return len(dones)
}

func (b *fakeBalancers) callList() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

func newLBFixture(t *testing.T) (*fixture, *fakeBalancers) {
	t.Helper()
	b := newFakeBalancers()
	return newFixture(t, world.Config{Balancers: b}), b
}

// kinds returns the instance's events as "kind[:state]", in log order.
func kinds(f *fixture, id string) []string {
	var out []string
	for _, e := range f.w.Events() {
		if e.Instance != id {
			continue
		}
		switch e.Kind {
		case world.EvInstanceState:
			if e.State != "" && e.Detail == "" {
				out = append(out, "state:"+e.State)
			}
		case world.EvInstanceRegistered, world.EvInstanceDeregistering, world.EvInstanceDeregistered, world.EvActionStarted:
			out = append(out, e.Kind)
		}
	}
	return out
}

// indexOf fails the test unless want is in got, and returns its position.
func indexOf(t *testing.T, got []string, want string) int {
	t.Helper()
	i := slices.Index(got, want)
	if i < 0 {
		t.Fatalf("%s missing from %v", want, got)
	}
	return i
}

func TestLaunchRegistersAfterPendingProceedBeforeInService(t *testing.T) {
	f, b := newLBFixture(t)
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1),
		Traffic: []world.TrafficInput{{TargetGroups: []string{tgA}, Legacy: true}, {LoadBalancers: []string{"classic"}}},
		Hooks:   []world.Hook{{Name: "ready", Transition: world.TransitionLaunching, HeartbeatTimeout: 300}},
	})
	e := f.wait(t, "launch action", func(e world.Event) bool { return e.Kind == world.EvActionStarted })
	if calls := b.callList(); len(calls) != 0 {
		t.Fatalf("registered during Pending:Wait: %v", calls)
	}
	if err := f.w.CompleteLifecycleAction(world.ActionRef{Group: "g", Hook: "ready", InstanceID: e.Instance}, world.ResultContinue); err != nil {
		t.Fatal(err)
	}
	in := f.inService(t, "g", 1)[0]
	got := kinds(f, in.ID)
	proceed, reg, inService := indexOf(t, got, "state:"+world.StatePendingProceed), indexOf(t, got, world.EvInstanceRegistered), indexOf(t, got, "state:"+world.StateInService)
	if !(proceed < reg && reg < inService) {
		t.Errorf("events %v: want Pending:Proceed, then registration, then InService", got)
	}
	want := []string{fmt.Sprintf("register %s %s [%s] [classic]", in.ID, in.PrivateIP, tgA)}
	if calls := b.callList(); !slices.Equal(calls, want) {
		t.Errorf("calls %v, want %v", calls, want)
	}
	views, _ := f.w.Groups([]string{"g"}, nil)
	v := views[0]
	if got := v.TargetGroupARNs(); !slices.Equal(got, []string{tgA}) {
		t.Errorf("TargetGroupARNs %v", got)
	}
	if got := v.LoadBalancerNames(); len(got) != 0 {
		t.Errorf("LoadBalancerNames %v, want none (attached as a traffic source)", got)
	}
	for _, s := range v.TrafficSources {
		if s.State != world.TrafficInService {
			t.Errorf("source %s attached at creation is %s, want InService", s.Identifier, s.State)
		}
	}
}

func TestTerminationDrainsBeforeTerminatingWait(t *testing.T) {
	f, b := newLBFixture(t)
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1),
		Traffic: []world.TrafficInput{{TargetGroups: []string{tgA}, Legacy: true}},
		Hooks:   []world.Hook{{Name: "drain", Transition: world.TransitionTerminating, HeartbeatTimeout: 300, DefaultResult: world.ResultContinue}},
	})
	id := f.inService(t, "g", 1)[0].ID
	if err := f.w.SetDesiredCapacity("g", 0, false); err != nil {
		t.Fatal(err)
	}
	f.wait(t, "deregistration", func(e world.Event) bool { return e.Kind == world.EvInstanceDeregistering && e.Instance == id })
	in, _ := f.w.AutoScalingInstances([]string{id})
	if in[0].State != world.StateTerminating {
		t.Fatalf("while draining the instance is %s, want Terminating", in[0].State)
	}
	if md, _ := f.w.InstanceMetadata(id); md.Target != world.StateTerminated {
		t.Errorf("IMDS target while draining %q, want Terminated", md.Target)
	}
	acts, _ := f.w.Activities("g", nil, false)
	if acts[0].StatusCode != "WaitingForELBConnectionDraining" {
		t.Errorf("terminate activity %s, want WaitingForELBConnectionDraining", acts[0].StatusCode)
	}
	if n := b.drain(id); n != 1 {
		t.Fatalf("finished %d deregistrations, want 1", n)
	}
	f.wait(t, "Terminating:Wait", inState(world.StateTerminatingWait))
	got := kinds(f, id)
	dereg, drained, wait := indexOf(t, got, world.EvInstanceDeregistering), indexOf(t, got, world.EvInstanceDeregistered), indexOf(t, got, "state:"+world.StateTerminatingWait)
	term := indexOf(t, got, "state:"+world.StateTerminating)
	if !(term < dereg && dereg < drained && drained < wait) {
		t.Errorf("events %v: want Terminating, deregistration, drained, Terminating:Wait", got)
	}
	if calls := b.callList(); calls[len(calls)-1] != fmt.Sprintf("deregister %s [%s] []", id, tgA) {
		t.Errorf("calls %v", calls)
	}
	f.clock.Advance(5 * time.Minute)
	f.wait(t, "Terminated", inState(world.StateTerminated))
}

func TestTerminationWithoutHooksEndsAfterDraining(t *testing.T) {
	f, b := newLBFixture(t)
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1), Traffic: []world.TrafficInput{{LoadBalancers: []string{"classic"}, Legacy: true}}})
	id := f.inService(t, "g", 1)[0].ID
	if err := f.w.SetDesiredCapacity("g", 0, false); err != nil {
		t.Fatal(err)
	}
	f.wait(t, "deregistration", func(e world.Event) bool { return e.Kind == world.EvInstanceDeregistering })
	b.drain(id)
	f.wait(t, "Terminated", inState(world.StateTerminated))
	got := kinds(f, id)
	if indexOf(t, got, world.EvInstanceDeregistered) > indexOf(t, got, "state:"+world.StateTerminatingProceed) {
		t.Errorf("events %v: Terminating:Proceed before draining finished", got)
	}
}

func TestAttachRegistersAndDetachDrains(t *testing.T) {
	f, b := newLBFixture(t)
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(2)})
	members := f.inService(t, "g", 2)
	if err := f.w.AttachTraffic("g", world.TrafficInput{TargetGroups: []string{tgB}, Legacy: true}); err != nil {
		t.Fatal(err)
	}
	if calls := b.callList(); len(calls) != 2 || !strings.HasPrefix(calls[0], "register ") {
		t.Fatalf("attach made calls %v, want one registration per in-service instance", calls)
	}
	srcs, _ := f.w.Traffic("g")
	if len(srcs) != 1 || srcs[0].State != world.TrafficAdded {
		t.Fatalf("after attach: %+v, want one Added source", srcs)
	}
	// Attaching it again changes nothing.
	if err := f.w.AttachTraffic("g", world.TrafficInput{TargetGroups: []string{tgB}, Legacy: true}); err != nil {
		t.Fatal(err)
	}
	if n := len(b.callList()); n != 2 {
		t.Errorf("attaching again made %d calls, want none new", n-2)
	}
	if err := f.w.DetachTraffic("g", world.TrafficInput{TargetGroups: []string{tgB}}); err != nil {
		t.Fatal(err)
	}
	srcs, _ = f.w.Traffic("g")
	if len(srcs) != 1 || srcs[0].State != world.TrafficRemoving {
		t.Fatalf("while draining: %+v, want one Removing source", srcs)
	}
	b.drain(members[0].ID)
	if srcs, _ = f.w.Traffic("g"); len(srcs) != 1 {
		t.Fatalf("after one of two drained: %+v, want still Removing", srcs)
	}
	b.drain(members[1].ID)
	f.wait(t, "source removed", func(e world.Event) bool {
		return e.Kind == world.EvTrafficSource && e.Attrs["state"] == world.TrafficRemoved
	})
	if srcs, _ = f.w.Traffic("g"); len(srcs) != 0 {
		t.Errorf("after draining: %+v, want none", srcs)
	}
	// The instances kept running and stay in service.
	f.inService(t, "g", 2)
	// A detached instance terminates without waiting for anything.
	if err := f.w.SetDesiredCapacity("g", 0, false); err != nil {
		t.Fatal(err)
	}
	f.wait(t, "Terminated", inState(world.StateTerminated))
}

func TestAttachUnknownSources(t *testing.T) {
	t.Run("no balancers wired", func(t *testing.T) {
		f := newFixture(t, world.Config{})
		err := f.w.CreateAutoScalingGroup(world.CreateGroupInput{Name: "g", LaunchConfiguration: "lc", MinSize: ptr(0), MaxSize: ptr(1),
			AvailabilityZones: []string{"us-east-1a"}, Traffic: []world.TrafficInput{{TargetGroups: []string{tgA}}}})
		checkValidation(t, err, "Provided Target Groups may not be valid. Please ensure they exist and try again.")
		if views, _ := f.w.Groups([]string{"g"}, nil); len(views) != 0 {
			t.Errorf("the group was created")
		}
	})
	t.Run("owner's own code becomes Auto Scaling's", func(t *testing.T) {
		f, _ := newLBFixture(t)
		f.group(t, world.CreateGroupInput{Name: "g"})
		err := f.w.AttachTraffic("g", world.TrafficInput{TargetGroups: []string{tgA, "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/1"}})
		checkValidation(t, err, "Provided Target Groups may not be valid. Please ensure they exist and try again.")
		err = f.w.AttachTraffic("g", world.TrafficInput{LoadBalancers: []string{"nope"}})
		checkValidation(t, err, "Provided Load Balancers may not be valid. Please ensure they exist and try again.")
		if srcs, _ := f.w.Traffic("g"); len(srcs) != 0 {
			t.Errorf("a failed attach left %+v", srcs)
		}
	})
	t.Run("unknown group", func(t *testing.T) {
		f, _ := newLBFixture(t)
		err := f.w.AttachTraffic("nope", world.TrafficInput{TargetGroups: []string{tgA}})
		checkValidation(t, err, "AutoScalingGroup name not found - AutoScalingGroup nope not found")
	})
}

func checkValidation(t *testing.T, err error, msg string) {
	t.Helper()
	var ae *awsproto.Error
	if !errors.As(err, &ae) || ae.Code != "ValidationError" || ae.Message != msg {
		t.Errorf("error %v, want ValidationError %q", err, msg)
	}
}

func TestELBHealthCheckReplacesUnhealthyAfterGrace(t *testing.T) {
	f, b := newLBFixture(t)
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1), HealthCheckType: "ELB", HealthCheckGracePeriod: ptr(60),
		Traffic: []world.TrafficInput{{TargetGroups: []string{tgA}, Legacy: true}}})
	id := f.inService(t, "g", 1)[0].ID
	b.setHealth(id, false, true)
	// A source attached later stays Added while no instance is healthy: each
	// health check round asks about it first, which tells the test a round
	// is under way (it holds the world's lock until it is over).
	if err := f.w.AttachTraffic("g", world.TrafficInput{TargetGroups: []string{tgB}}); err != nil {
		t.Fatal(err)
	}
	for len(b.asked) > 0 {
		<-b.asked
	}
	// Within the grace period the load balancer's verdict is ignored.
	f.clock.Advance(50 * time.Second)
	select {
	case <-b.asked:
	case <-time.After(10 * time.Second):
		t.Fatal("no health check round after 50 s")
	}
	if in, _ := f.w.AutoScalingInstances([]string{id}); in[0].Health != "Healthy" {
		t.Fatalf("marked %s within the grace period", in[0].Health)
	}
	f.clock.Advance(20 * time.Second)
	marked := f.wait(t, "marked unhealthy", func(e world.Event) bool { return e.Kind == world.EvInstanceHealth && e.Instance == id })
	var inService time.Time
	for _, e := range f.w.Events() {
		if e.Kind == world.EvInstanceState && e.Instance == id && e.State == world.StateInService {
			inService = e.Time
		}
	}
	if d := marked.Time.Sub(inService); d < 60*time.Second {
		t.Errorf("marked unhealthy %s after InService, within the 60 s grace period", d)
	}
	f.wait(t, "deregistration", func(e world.Event) bool { return e.Kind == world.EvInstanceDeregistering && e.Instance == id })
	acts, _ := f.w.Activities("g", nil, false)
	i := slices.IndexFunc(acts, func(a world.Activity) bool { return a.Description == "Terminating EC2 instance: "+id })
	if i < 0 || !strings.HasSuffix(acts[i].Cause, "an instance was taken out of service in response to an ELB system health check failure.") {
		t.Errorf("activities %+v: want the termination's cause to be the ELB health check", acts)
	}
	b.drain(id)
	f.wait(t, "replacement", func(e world.Event) bool { return e.Kind == world.EvInstanceLaunched && e.Instance != id })
}

func TestELBHealthUnknownIsNotUnhealthy(t *testing.T) {
	f, b := newLBFixture(t)
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1), HealthCheckType: "ELB",
		Traffic: []world.TrafficInput{{TargetGroups: []string{tgA}, Legacy: true}}})
	id := f.inService(t, "g", 1)[0].ID
	b.setHealth(id, false, false) // still initial
	f.clock.Advance(time.Minute)
	select {
	case <-b.asked: // a round is under way, holding the world's lock
	case <-time.After(10 * time.Second):
		t.Fatal("no health check round after a minute")
	}
	if in, _ := f.w.AutoScalingInstances([]string{id}); in[0].Health != "Healthy" {
		t.Errorf("an instance still in its initial health check was marked %s", in[0].Health)
	}
	// An attached source becomes InService once an instance passes.
	if err := f.w.AttachTraffic("g", world.TrafficInput{TargetGroups: []string{tgB}}); err != nil {
		t.Fatal(err)
	}
	b.setHealth(id, true, true)
	srcs, _ := f.w.Traffic("g")
	for _, s := range srcs {
		if s.State != world.TrafficInService {
			t.Errorf("%s is %s with a healthy instance, want InService", s.Identifier, s.State)
		}
	}
}

func TestDrainingDoneAfterCloseIsIgnored(t *testing.T) {
	f, b := newLBFixture(t)
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1), Traffic: []world.TrafficInput{{TargetGroups: []string{tgA}}}})
	id := f.inService(t, "g", 1)[0].ID
	if err := f.w.SetDesiredCapacity("g", 0, false); err != nil {
		t.Fatal(err)
	}
	f.wait(t, "deregistration", func(e world.Event) bool { return e.Kind == world.EvInstanceDeregistering })
	f.w.Close()
	n := len(f.w.Events())
	b.drain(id)
	if len(f.w.Events()) != n {
		t.Errorf("a done after Close changed the world")
	}
}

func TestStandbyDeregistersAndExitRegisters(t *testing.T) {
	f, b := newLBFixture(t)
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1), MaxSize: ptr(2), Traffic: []world.TrafficInput{{TargetGroups: []string{tgA}}}})
	id := f.inService(t, "g", 1)[0].ID
	if _, err := f.w.EnterStandby("g", []string{id}, ptr(true)); err != nil {
		t.Fatal(err)
	}
	if in, _ := f.w.AutoScalingInstances([]string{id}); in[0].State != world.StateEnteringStandby {
		t.Fatalf("while draining: %s, want EnteringStandby", in[0].State)
	}
	b.drain(id)
	f.wait(t, "Standby", inState(world.StateStandby))
	if _, err := f.w.ExitStandby("g", []string{id}); err != nil {
		t.Fatal(err)
	}
	calls := b.callList()
	if len(calls) != 3 || !strings.HasPrefix(calls[2], "register "+id) {
		t.Errorf("calls %v: want register, deregister, register", calls)
	}
}

func TestSpotReclaimDoesNotWaitForDraining(t *testing.T) {
	f, b := newLBFixture(t)
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1), Traffic: []world.TrafficInput{{TargetGroups: []string{tgA}}},
		Hooks: []world.Hook{{Name: "drain", Transition: world.TransitionTerminating, HeartbeatTimeout: 3600}}})
	id := f.inService(t, "g", 1)[0].ID
	if err := f.w.InjectSpotInterruption(id, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	f.wait(t, "deregistration", func(e world.Event) bool { return e.Kind == world.EvInstanceDeregistering && e.Instance == id })
	f.clock.Advance(2 * time.Minute)
	f.wait(t, "reclaimed while draining", func(e world.Event) bool {
		return e.Kind == world.EvInstanceState && e.Instance == id && e.State == world.StateTerminated
	})
	b.drain(id) // draining ends after the reclaim: nothing more happens to it
	f.wait(t, "replacement", func(e world.Event) bool { return e.Kind == world.EvInstanceLaunched && e.Instance != id })
	for _, e := range f.w.Events() {
		if e.Kind == world.EvActionStarted && e.Instance == id {
			t.Errorf("a terminate action started after the reclaim: %+v", e)
		}
	}
}

func TestEC2TerminationWhileDrainingStillRunsHooks(t *testing.T) {
	f, b := newLBFixture(t)
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1), Traffic: []world.TrafficInput{{TargetGroups: []string{tgA}}},
		Hooks: []world.Hook{{Name: "drain", Transition: world.TransitionTerminating, HeartbeatTimeout: 60, DefaultResult: world.ResultContinue}}})
	id := f.inService(t, "g", 1)[0].ID
	if _, err := f.w.EC2().TerminateInstances([]string{id}); err != nil {
		t.Fatal(err)
	}
	f.wait(t, "ec2 terminated", func(e world.Event) bool {
		return e.Kind == world.EvInstanceState && e.Instance == id && e.Detail == "ec2 terminated"
	})
	if in, _ := f.w.AutoScalingInstances([]string{id}); len(in) != 1 || in[0].State != world.StateTerminating {
		t.Fatalf("after EC2 stopped it while draining: %+v, want still Terminating", in)
	}
	b.drain(id)
	f.wait(t, "Terminating:Wait", inState(world.StateTerminatingWait))
	f.clock.Advance(time.Minute)
	f.wait(t, "Terminated", inState(world.StateTerminated))
}
