package world_test

import (
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// TestHistoryAgesOut checks that the world shows terminated instances for
// an hour and ended activities for six weeks, then forgets them, and that
// EC2 lists instances by launch time then id throughout.
func TestHistoryAgesOut(t *testing.T) {
	f := newFixture(t, world.Config{Seed: 7})
	f.group(t, world.CreateGroupInput{Name: "a", Desired: ptr(3)})
	f.clock.Advance(time.Minute)
	f.group(t, world.CreateGroupInput{Name: "b", Desired: ptr(2)})
	f.inService(t, "a", 3)
	f.inService(t, "b", 2)

	listed := func() []world.Instance {
		t.Helper()
		ins, err := f.w.EC2().Instances(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(ins); i++ {
			p, c := ins[i-1], ins[i]
			if c.LaunchTime.Before(p.LaunchTime) || c.LaunchTime.Equal(p.LaunchTime) && c.ID < p.ID {
				t.Fatalf("instances not in launch time, id order: %s (%v) before %s (%v)", p.ID, p.LaunchTime, c.ID, c.LaunchTime)
			}
		}
		return ins
	}
	activities := func(group string) int {
		t.Helper()
		as, err := f.w.Activities(group, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Group != group {
				t.Fatalf("activity of %s listed for %s", a.Group, group)
			}
		}
		return len(as)
	}
	if n := len(listed()); n != 5 {
		t.Fatalf("listed %d instances, want 5", n)
	}
	if a, b := activities("a"), activities("b"); a != 3 || b != 2 {
		t.Fatalf("activities: a %d, b %d; want 3 and 2", a, b)
	}

	// Group a goes to 0: its instances stay listed (terminated) for an hour.
	if err := f.w.SetDesiredCapacity("a", 0, false); err != nil {
		t.Fatal(err)
	}
	f.inService(t, "a", 0)
	f.clock.Advance(59 * time.Minute)
	if n := len(listed()); n != 5 {
		t.Fatalf("59 minutes after termination: listed %d instances, want 5", n)
	}
	f.clock.Advance(2 * time.Minute)
	if n := len(listed()); n != 2 {
		t.Fatalf("61 minutes after termination: listed %d instances, want group b's 2", n)
	}
	if a := activities("a"); a != 6 {
		t.Fatalf("group a has %d activities, want 3 launches and 3 terminations", a)
	}

	// Six weeks after the launches, they are gone; the terminations a few
	// minutes younger stay until their own six weeks are over.
	f.clock.Advance(6*7*24*time.Hour - 62*time.Minute - time.Second)
	if a, b := activities("a"), activities("b"); a != 6 || b != 2 {
		t.Fatalf("just under six weeks: activities a %d, b %d; want 6 and 2", a, b)
	}
	f.clock.Advance(2 * time.Second)
	if a, b := activities("a"), activities("b"); a != 3 || b != 2 {
		t.Fatalf("six weeks after a's launches: activities a %d, b %d; want 3 and 2", a, b)
	}
	f.clock.Advance(time.Hour)
	if a, b := activities("a"), activities("b"); a != 0 || b != 0 {
		t.Fatalf("six weeks after everything: activities a %d, b %d; want none", a, b)
	}
	if all := activities(""); all != 0 {
		t.Fatalf("six weeks after everything: %d activities in all", all)
	}
	if n := len(listed()); n != 2 {
		t.Fatalf("listed %d instances, want group b's 2 still running", n)
	}
}
