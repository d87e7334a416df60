package world_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeHost records boots and stops and can fail boots.
type fakeHost struct {
	mu       sync.Mutex
	failBoot bool
	booted   []string
	stopped  []string
}

func (h *fakeHost) Boot(b world.Boot) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failBoot {
		return errors.New("no capacity")
	}
	h.booted = append(h.booted, b.InstanceID)
	return nil
}

func (h *fakeHost) Stop(id string, _ time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = append(h.stopped, id)
	return nil
}

func (h *fakeHost) Console(string) []byte { return nil }

type fixture struct {
	w     *world.World
	clock *simclock.Sim
	host  *fakeHost
	seq   int64
}

func newFixture(t *testing.T, cfg world.Config) *fixture {
	t.Helper()
	f := &fixture{clock: simclock.NewSim(), host: &fakeHost{}}
	f.w = world.New(cfg, f.clock, f.host, nil)
	t.Cleanup(f.w.Close)
	if err := f.w.CreateLaunchConfiguration(world.LaunchConfiguration{Name: "lc", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// wait consumes events until one matches, failing after a bound.
func (f *fixture) wait(t *testing.T, what string, match func(world.Event) bool) world.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		evs, err := f.w.EventsAfter(ctx, f.seq)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		for _, e := range evs {
			f.seq = e.Seq
			if match(e) {
				return e
			}
		}
	}
}

func inState(state string) func(world.Event) bool {
	return func(e world.Event) bool { return e.Kind == world.EvInstanceState && e.State == state }
}

func ptr[T any](v T) *T { return &v }

func (f *fixture) group(t *testing.T, in world.CreateGroupInput) {
	t.Helper()
	if in.LaunchConfiguration == "" && in.LaunchTemplate == nil {
		in.LaunchConfiguration = "lc"
	}
	if in.MinSize == nil {
		in.MinSize = ptr(0)
	}
	if in.MaxSize == nil {
		in.MaxSize = ptr(10)
	}
	if len(in.AvailabilityZones) == 0 && in.VPCZoneIdentifier == "" {
		in.AvailabilityZones = []string{"us-east-1a", "us-east-1b"}
	}
	if err := f.w.CreateAutoScalingGroup(in); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) inService(t *testing.T, group string, n int) []world.Instance {
	t.Helper()
	for {
		views, err := f.w.Groups([]string{group}, nil)
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		for _, m := range views[0].Members {
			if m.State == world.StateInService {
				count++
			}
		}
		if count == n && len(views[0].Members) == n {
			return views[0].Members
		}
		f.wait(t, fmt.Sprintf("%d instances in service", n), func(world.Event) bool { return true })
	}
}

func TestScaleInBalancesZonesAndHonoursProtection(t *testing.T) {
	f := newFixture(t, world.Config{Seed: 7})
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(4)})
	members := f.inService(t, "g", 4)
	perZone := map[string]int{}
	for _, m := range members {
		perZone[m.AZ]++
	}
	if perZone["us-east-1a"] != 2 || perZone["us-east-1b"] != 2 {
		t.Fatalf("launches spread %v, want 2 per zone", perZone)
	}
	// Protect both instances in zone a: scale-in must take zone b's.
	var protect []string
	for _, m := range members {
		if m.AZ == "us-east-1a" {
			protect = append(protect, m.ID)
		}
	}
	if err := f.w.SetInstanceProtection("g", protect, true); err != nil {
		t.Fatal(err)
	}
	if err := f.w.SetDesiredCapacity("g", 2, false); err != nil {
		t.Fatal(err)
	}
	left := f.inService(t, "g", 2)
	for _, m := range left {
		if m.AZ != "us-east-1a" || !m.Protected {
			t.Errorf("kept %s in %s (protected %t); want the protected zone-a instances", m.ID, m.AZ, m.Protected)
		}
	}
	// Every instance protected: scale-in cannot pick a victim.
	if err := f.w.SetDesiredCapacity("g", 0, false); err != nil {
		t.Fatal(err)
	}
	if got := f.inService(t, "g", 2); len(got) != 2 {
		t.Errorf("protected instances were terminated")
	}
}

func TestLaunchFailuresBackOff(t *testing.T) {
	f := newFixture(t, world.Config{})
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1), Hooks: []world.Hook{{
		Name: "ready", Transition: world.TransitionLaunching, HeartbeatTimeout: 30, DefaultResult: world.ResultAbandon,
	}}})
	for i := 1; i <= 2; i++ {
		e := f.wait(t, "launch action", func(e world.Event) bool { return e.Kind == world.EvActionStarted })
		if err := f.w.CompleteLifecycleAction(world.ActionRef{Group: "g", Hook: "ready", InstanceID: e.Instance}, world.ResultAbandon); err != nil {
			t.Fatal(err)
		}
	}
	b := f.wait(t, "back-off", func(e world.Event) bool { return e.Kind == world.EvLaunchBackoff })
	if !strings.Contains(b.Detail, "2 consecutive launch failures; next launch in 10s") {
		t.Errorf("back-off %q", b.Detail)
	}
	f.clock.Advance(10 * time.Second)
	f.wait(t, "launch after the back-off", func(e world.Event) bool { return e.Kind == world.EvInstanceLaunched })
}

func TestSpotInterruptionReclaimsWhateverTheHooks(t *testing.T) {
	f := newFixture(t, world.Config{})
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1), Hooks: []world.Hook{{
		Name: "drain", Transition: world.TransitionTerminating, HeartbeatTimeout: 3600,
	}}})
	id := f.inService(t, "g", 1)[0].ID
	if err := f.w.InjectSpotInterruption(id, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	md, _ := f.w.InstanceMetadata(id)
	if md.Spot == nil || md.Target != world.StateTerminated {
		t.Fatalf("after the notice: spot %v, target %q", md.Spot, md.Target)
	}
	f.wait(t, "Terminating:Wait", inState(world.StateTerminatingWait))
	f.clock.Advance(2 * time.Minute)
	e := f.wait(t, "reclaim", inState(world.StateTerminated))
	if e.Instance != id {
		t.Errorf("terminated %s, want %s", e.Instance, id)
	}
	f.wait(t, "replacement", func(e world.Event) bool { return e.Kind == world.EvInstanceLaunched && e.Instance != id })
}

func TestTerminateInstancesRunsHooksAfterwards(t *testing.T) {
	f := newFixture(t, world.Config{})
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1), Hooks: []world.Hook{{
		Name: "drain", Transition: world.TransitionTerminating, HeartbeatTimeout: 60, DefaultResult: world.ResultContinue,
	}}})
	id := f.inService(t, "g", 1)[0].ID
	changes, err := f.w.EC2().TerminateInstances([]string{id})
	if err != nil {
		t.Fatal(err)
	}
	if changes[0].Previous != world.EC2Running || changes[0].Current != world.EC2ShuttingDown {
		t.Errorf("state change %+v", changes[0])
	}
	f.wait(t, "Terminating:Wait after EC2 terminated it", inState(world.StateTerminatingWait))
	f.clock.Advance(time.Minute)
	f.wait(t, "Terminated", inState(world.StateTerminated))
}

func TestForceDeleteSkipsHooks(t *testing.T) {
	f := newFixture(t, world.Config{})
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(2), Hooks: []world.Hook{{
		Name: "drain", Transition: world.TransitionTerminating, HeartbeatTimeout: 3600,
	}}})
	f.inService(t, "g", 2)
	err := f.w.DeleteAutoScalingGroup("g", false)
	var ae *awsproto.Error
	if !errors.As(err, &ae) || ae.Code != "ResourceInUse" {
		t.Fatalf("delete without force: %v, want ResourceInUse", err)
	}
	if err := f.w.DeleteAutoScalingGroup("g", true); err != nil {
		t.Fatal(err)
	}
	f.wait(t, "group deleted", func(e world.Event) bool { return e.Kind == world.EvGroupDeleted })
	for _, e := range f.w.Events() {
		if e.Kind == world.EvActionStarted {
			t.Errorf("force delete started a lifecycle action: %+v", e)
		}
	}
}

func TestBootFailureFailsTheActivity(t *testing.T) {
	f := newFixture(t, world.Config{})
	f.host.mu.Lock()
	f.host.failBoot = true
	f.host.mu.Unlock()
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1)})
	f.wait(t, "boot failure", func(e world.Event) bool { return e.Kind == world.EvInstanceBootError })
	acts, err := f.w.Activities("g", nil, false)
	if err != nil || len(acts) == 0 {
		t.Fatalf("activities: %v %v", acts, err)
	}
	if acts[len(acts)-1].StatusCode != "Failed" {
		t.Errorf("first activity %s, want Failed", acts[len(acts)-1].StatusCode)
	}
}

func TestUnhealthyInstanceIsReplaced(t *testing.T) {
	f := newFixture(t, world.Config{})
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1)})
	id := f.inService(t, "g", 1)[0].ID
	if err := f.w.SetInstanceHealth(id, "Unhealthy", false); err != nil {
		t.Fatal(err)
	}
	f.wait(t, "replacement", func(e world.Event) bool { return e.Kind == world.EvInstanceLaunched && e.Instance != id })
	f.wait(t, "unhealthy one terminated", func(e world.Event) bool {
		return e.Kind == world.EvInstanceState && e.Instance == id && e.State == world.StateTerminated
	})
}

func TestSubnetsMapToZonesByHash(t *testing.T) {
	f := newFixture(t, world.Config{})
	for _, s := range []string{"subnet-0a1b2c3d", "subnet-4e5f6a7b", "subnet-0123456789abcdef0"} {
		z := f.w.SubnetZone(s)
		if z != f.w.SubnetZone(s) || !strings.HasPrefix(z, "us-east-1") {
			t.Errorf("%s → %s", s, z)
		}
	}
	f.group(t, world.CreateGroupInput{Name: "g", VPCZoneIdentifier: "subnet-0a1b2c3d", Desired: ptr(1)})
	m := f.inService(t, "g", 1)[0]
	if m.Subnet != "subnet-0a1b2c3d" || m.AZ != f.w.SubnetZone("subnet-0a1b2c3d") {
		t.Errorf("instance in %s/%s", m.Subnet, m.AZ)
	}
}
