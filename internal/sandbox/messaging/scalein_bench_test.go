package messaging_test

import (
	"context"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// BenchmarkScaleIn500 measures how long SetDesiredCapacity holds the
// world's lock when it takes a group of 1,000 in-service instances (no
// processes) to 500: choosing the 500 victims and starting their
// terminations, with EventBridge wired but no rule on the default bus.
// It reports the call's duration (ns/op covers only the call).
//
//	go test -run='^$' -bench=ScaleIn500 -benchtime=5x ./internal/sandbox/messaging/
func BenchmarkScaleIn500(b *testing.B) {
	for range b.N {
		b.StopTimer()
		s := newSystem(b, world.Config{Seed: 1}, simclock.NewSim())
		if err := s.CreateLaunchConfiguration(world.LaunchConfiguration{Name: "lc", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro"}); err != nil {
			b.Fatal(err)
		}
		err := s.CreateAutoScalingGroup(world.CreateGroupInput{
			Name: "g", LaunchConfiguration: "lc", MinSize: new(0), MaxSize: new(1000), Desired: new(1000),
			AvailabilityZones: []string{"us-east-1a", "us-east-1b", "us-east-1c"},
		})
		if err != nil {
			b.Fatal(err)
		}
		waitInService(b, s, "g", 1000)
		b.StartTimer()
		if err := s.SetDesiredCapacity("g", 500, false); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
	}
}

// waitInService waits until the group has exactly n members, all in
// service.
func waitInService(tb testing.TB, s *system, group string, n int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var seq int64
	for {
		views, err := s.Groups([]string{group}, nil)
		if err != nil {
			tb.Fatal(err)
		}
		count := 0
		for _, m := range views[0].Members {
			if m.State == world.StateInService {
				count++
			}
		}
		if count == n && len(views[0].Members) == n {
			return
		}
		evs, err := s.EventsAfter(ctx, seq)
		if err != nil {
			tb.Fatalf("waiting for %d instances in service: %v", n, err)
		}
		seq = evs[len(evs)-1].Seq
	}
}
