package messaging_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// system is a broker and a world wired to it as the sandbox wires them:
// one clock, one event log, the world reaching the broker as its
// Messaging. Tests call SQS, SNS, EventBridge and Auto Scaling methods on
// it alike.
type system struct {
	*world.World
	*messaging.Queues
	*messaging.Topics
	*messaging.Buses
	broker *messaging.Broker
	log    *eventlog.Log
}

func newSystem(t testing.TB, cfg world.Config, clock simclock.Clock) *system {
	t.Helper()
	b := messaging.New(messaging.Config{Region: cfg.Region, Account: cfg.Account, RelaxLimits: cfg.RelaxLimits, Seed: cfg.Seed}, clock, nil, nil)
	cfg.Events, cfg.Messaging = b.Log(), b
	w := world.New(cfg, clock, nil, nil)
	s := &system{World: w, Queues: b.Queues(), Topics: b.Topics(), Buses: b.Buses(), broker: b, log: b.Log()}
	t.Cleanup(s.Close)
	return s
}

// Close stops the world, then the broker (waiting for deliveries).
func (s *system) Close() {
	s.World.Close()
	s.broker.Close()
}

// Events returns every event the log holds, data stream included.
func (s *system) Events() []eventlog.Event { return s.log.Events(eventlog.All) }

// EventsAfter waits for events after seq, data stream included.
func (s *system) EventsAfter(ctx context.Context, seq int64) ([]eventlog.Event, error) {
	return s.log.Wait(ctx, seq, eventlog.All)
}

// fixture is a system with a launch configuration "lc" and a cursor on
// its events.
type fixture struct {
	w     *system
	clock *simclock.Sim
	seq   int64
}

func newFixture(t *testing.T, cfg world.Config) *fixture {
	t.Helper()
	f := &fixture{clock: simclock.NewSim()}
	f.w = newSystem(t, cfg, f.clock)
	if err := f.w.CreateLaunchConfiguration(world.LaunchConfiguration{Name: "lc", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// wait consumes events until one matches, failing after a bound.
func (f *fixture) wait(t *testing.T, what string, match func(eventlog.Event) bool) eventlog.Event {
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
		f.wait(t, fmt.Sprintf("%d instances in service", n), func(eventlog.Event) bool { return true })
	}
}

func inState(state string) func(eventlog.Event) bool {
	return func(e eventlog.Event) bool { return e.Kind == world.EvInstanceState && e.State == state }
}
