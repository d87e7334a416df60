package world

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// gateHost holds every Boot until released, and records how many were in
// flight at once.
type gateHost struct {
	mu       sync.Mutex
	inFlight int
	most     int
	booted   int
	entered  chan struct{}
	release  chan struct{}
}

func (h *gateHost) Boot(Boot) error {
	h.mu.Lock()
	h.inFlight++
	h.most = max(h.most, h.inFlight)
	h.mu.Unlock()
	h.entered <- struct{}{}
	<-h.release
	h.mu.Lock()
	h.inFlight--
	h.booted++
	h.mu.Unlock()
	return nil
}
func (h *gateHost) Stop(string, time.Duration) error { return nil }
func (h *gateHost) Console(string) []byte            { return nil }

// TestLargeDeficitLaunchesInBatches: a reconcile launches at most
// batch instances under the world's lock and queues the rest, and
// at most bootWorkers instances boot at once; every instance is launched
// and booted in the end.
func TestLargeDeficitLaunchesInBatches(t *testing.T) {
	const n = 250
	h := &gateHost{entered: make(chan struct{}, n), release: make(chan struct{})}
	w := New(Config{Seed: 1}, simclock.NewSim(), h, nil)
	defer w.Close()
	if err := w.CreateLaunchConfiguration(LaunchConfiguration{Name: "lc", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro"}); err != nil {
		t.Fatal(err)
	}
	if err := w.CreateAutoScalingGroup(CreateGroupInput{
		Name: "g", LaunchConfiguration: "lc", MinSize: new(0), MaxSize: new(n), Desired: new(0), AvailabilityZones: []string{"us-east-1a"},
	}); err != nil {
		t.Fatal(err)
	}

	w.mu.Lock()
	g := w.groups["g"]
	g.Desired = n
	w.reconcileLocked(g, "test")
	launched, queued := len(g.Instances), g.reconcileMore
	w.mu.Unlock()
	if launched != batch || !queued {
		t.Fatalf("one reconcile launched %d (the rest queued: %t), want %d and the rest queued", launched, queued, batch)
	}

	for range bootWorkers {
		<-h.entered // as many boots as there are workers are in flight
	}
	close(h.release)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var seq int64
	for {
		h.mu.Lock()
		booted := h.booted
		h.mu.Unlock()
		w.mu.Lock()
		members := len(g.Instances)
		w.mu.Unlock()
		if booted == n && members == n {
			break
		}
		evs, err := w.EventsAfter(ctx, seq)
		if err != nil {
			t.Fatalf("%d of %d launched, %d booted: %v", members, n, booted, err)
		}
		seq = evs[len(evs)-1].Seq
	}
	if h.most != bootWorkers {
		t.Errorf("at most %d boots were in flight at once, want %d", h.most, bootWorkers)
	}
}

// TestLargeSurplusTerminatesInBatches: a scale-in of more than batch
// instances starts terminating batch of them under the world's lock and
// queues the rest; in the end exactly the surplus is terminated, the same
// instances one pick of all of them chooses.
func TestLargeSurplusTerminatesInBatches(t *testing.T) {
	const n, keep = 250, 30
	w := New(Config{Seed: 1}, simclock.NewSim(), nil, nil)
	defer w.Close()
	if err := w.CreateLaunchConfiguration(LaunchConfiguration{Name: "lc", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro"}); err != nil {
		t.Fatal(err)
	}
	if err := w.CreateAutoScalingGroup(CreateGroupInput{
		Name: "g", LaunchConfiguration: "lc", MinSize: new(0), MaxSize: new(n), Desired: new(n),
		AvailabilityZones: []string{"us-east-1a", "us-east-1b"}, TerminationPolicies: []string{"OldestInstance"},
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// until waits for done to hold of the group's instances: how many are
	// in service and how many are on their way out or gone, and whether a
	// reconcile is queued.
	until := func(done func(inService, leaving int, queued bool) bool) {
		t.Helper()
		var seq int64
		for {
			w.mu.Lock()
			inService, leaving := 0, 0
			for _, in := range w.insts {
				switch in.State {
				case StateInService:
					inService++
				case StateTerminating, StateTerminatingWait, StateTerminatingProceed, StateTerminated:
					leaving++
				}
			}
			queued := w.groups["g"].reconcileMore
			w.mu.Unlock()
			if done(inService, leaving, queued) {
				return
			}
			evs, err := w.EventsAfter(ctx, seq)
			if err != nil {
				t.Fatalf("%d in service, %d leaving: %v", inService, leaving, err)
			}
			seq = evs[len(evs)-1].Seq
		}
	}
	until(func(inService, _ int, _ bool) bool { return inService == n })

	w.mu.Lock()
	g := w.groups["g"]
	var want []string
	var active []*Instance
	for _, id := range g.Instances {
		if in := w.insts[id]; counts(in) {
			active = append(active, in)
		}
	}
	for _, in := range w.pickVictimsLocked(g, active, n-keep) {
		want = append(want, in.ID)
	}
	g.Desired = keep
	w.reconcileLocked(g, "test")
	started, queued := 0, g.reconcileMore
	for _, id := range g.Instances {
		if !counts(w.insts[id]) {
			started++
		}
	}
	w.mu.Unlock()
	if started != batch || !queued {
		t.Fatalf("one reconcile started terminating %d (the rest queued: %t), want %d and the rest queued", started, queued, batch)
	}

	until(func(_, leaving int, queued bool) bool { return leaving >= n-keep && !queued })
	w.mu.Lock()
	var got []string
	for id, in := range w.insts {
		if !counts(in) {
			got = append(got, id)
		}
	}
	w.mu.Unlock()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("terminated %d instances %v,\nwant the %d one pick chooses %v", len(got), got, len(want), want)
	}
}

// TestInstancesPageWalksTheListing: pages of any size, each starting
// after the last instance of the one before, list the instances
// Instances lists, in the same order, filters applied.
func TestInstancesPageWalksTheListing(t *testing.T) {
	clock := simclock.NewSim()
	w := New(Config{Seed: 1}, clock, nil, nil)
	defer w.Close()
	if err := w.CreateLaunchConfiguration(LaunchConfiguration{Name: "lc", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro"}); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"a", "b"} {
		if err := w.CreateAutoScalingGroup(CreateGroupInput{
			Name: name, LaunchConfiguration: "lc", MinSize: new(0), MaxSize: new(20), Desired: new(7 + 5*i), AvailabilityZones: []string{"us-east-1a", "us-east-1b"},
		}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second) // a second launch time
	}
	ids := func(ins []Instance) (out []string) {
		for _, in := range ins {
			out = append(out, in.ID)
		}
		return out
	}
	for _, filters := range [][]InstanceFilter{nil, {{Name: "tag:aws:autoscaling:groupName", Values: []string{"b"}}}} {
		all, err := w.EC2().Instances(nil, filters)
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{1, 5, 11, 100} {
			var got []Instance
			var after InstanceCursor
			for pages := 0; ; pages++ {
				if pages > len(all) {
					t.Fatalf("pages of %d: no end", size)
				}
				pg, more, err := w.EC2().InstancesPage(filters, after, size)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, pg...)
				if !more {
					break
				}
				last := pg[len(pg)-1]
				after = InstanceCursor{LaunchTime: last.LaunchTime, ID: last.ID}
			}
			if g, want := ids(got), ids(all); len(g) != len(want) || len(want) == 0 || !slices.Equal(g, want) {
				t.Errorf("filters %v, pages of %d: %v, want %v", filters, size, g, want)
			}
		}
	}
}
