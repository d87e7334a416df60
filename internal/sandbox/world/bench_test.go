package world_test

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// BenchmarkHistory measures what a long-lived sandbox pays for its
// history. After a warm-up (see below), a group of 5 stays in service while a second group launches
// and terminates 20,000 instances (200 rounds of 100); the world's part
// of DescribeInstances (EC2().Instances, and a page of 5 as
// DescribeInstances with MaxResults 5 asks for) and DescribeScalingActivities
// (Activities of the group of 5) is timed fresh, right after the churn,
// and once the terminated instances and the activities have aged out (the
// clock pushed past six weeks, the group of 5 replaced). Live heap is
// measured fresh and aged.
//
//	go test -run='^$' -bench=History -benchtime=1x ./internal/sandbox/world/
func BenchmarkHistory(b *testing.B) {
	for range b.N {
		clock := simclock.NewSim()
		// The event log is bounded (by count) whatever the history; a small
		// bound, filled before the fresh measurement, keeps it out of the
		// comparison. It drops a quarter of its events when full, so it
		// holds between 75 % and 100 % of its bound at any time: with a
		// bound of 1,000 that alone moved the comparison by ±4 %.
		log := eventlog.New(eventlog.Config{ControlLimit: 100, DataLimit: 100}, clock, nil)
		w := world.New(world.Config{Seed: 1, Events: log}, clock, nil, nil)
		if err := w.CreateLaunchConfiguration(world.LaunchConfiguration{Name: "lc", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro"}); err != nil {
			b.Fatal(err)
		}
		for _, g := range []struct {
			name    string
			desired int
		}{{"steady", 5}, {"churn", 0}} {
			if err := w.CreateAutoScalingGroup(world.CreateGroupInput{
				Name: g.name, LaunchConfiguration: "lc", MinSize: new(0), MaxSize: new(100), Desired: new(g.desired),
				AvailabilityZones: []string{"us-east-1a", "us-east-1b"},
			}); err != nil {
				b.Fatal(err)
			}
		}
		var seq int64
		settle := func(group string, n int) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for {
				views, err := w.Groups([]string{group}, nil)
				if err != nil {
					b.Fatal(err)
				}
				in := 0
				for _, m := range views[0].Members {
					if m.State == world.StateInService {
						in++
					}
				}
				if in == n && len(views[0].Members) == n {
					return
				}
				evs, err := w.EventsAfter(ctx, seq)
				if err != nil {
					b.Fatalf("waiting for %s at %d: %v", group, n, err)
				}
				seq = evs[len(evs)-1].Seq
			}
		}
		settle("steady", 5)
		measure := func(label string) {
			var describe, acts []time.Duration
			// Apart, so that the garbage of one does not slow the other.
			for range 200 {
				t0 := time.Now()
				if _, err := w.EC2().Instances(nil, nil); err != nil {
					b.Fatal(err)
				}
				describe = append(describe, time.Since(t0))
			}
			runtime.GC()
			var page []time.Duration
			for range 200 {
				t0 := time.Now()
				if _, _, err := w.EC2().InstancesPage(nil, world.InstanceCursor{}, 5); err != nil {
					b.Fatal(err)
				}
				page = append(page, time.Since(t0))
			}
			runtime.GC()
			for range 200 {
				t0 := time.Now()
				if _, err := w.Activities("steady", nil, false); err != nil {
					b.Fatal(err)
				}
				acts = append(acts, time.Since(t0))
			}
			b.Logf("%s: EC2().Instances p50 %v, InstancesPage of 5 p50 %v, Activities p50 %v", label, median(describe), median(page), median(acts))
			b.ReportMetric(float64(median(describe)), label+"-instances-p50-ns")
			b.ReportMetric(float64(median(page)), label+"-page-of-5-p50-ns")
			b.ReportMetric(float64(median(acts)), label+"-activities-p50-ns")
		}
		churn := func(rounds int) {
			for range rounds {
				if err := w.SetDesiredCapacity("churn", 100, false); err != nil {
					b.Fatal(err)
				}
				settle("churn", 100)
				if err := w.SetDesiredCapacity("churn", 0, false); err != nil {
					b.Fatal(err)
				}
				settle("churn", 0)
			}
		}
		age := func() {
			clock.Advance(6*7*24*time.Hour + 2*time.Hour)
			// Replace the steady group's instances, so that it has activities
			// of the last six weeks to describe.
			if err := w.SetDesiredCapacity("steady", 0, false); err != nil {
				b.Fatal(err)
			}
			settle("steady", 0)
			if err := w.SetDesiredCapacity("steady", 5, false); err != nil {
				b.Fatal(err)
			}
			settle("steady", 5)
		}
		// Warm up what is bounded by size and not by history: the event log
		// (its events, and its record of the ranges it dropped, 256 of them
		// at most) and the runtime's caches of goroutines and waiters, which
		// follow the most launches in flight at once. Then let the warm-up's
		// history age out: that is the fresh sandbox.
		churn(10)
		age()
		measure("fresh")
		fresh := liveHeap()
		churn(200)
		measure("churned")
		age()
		measure("aged")
		aged := liveHeap()
		b.Logf("live heap: fresh %d KiB, aged after 20,000 launches and terminations %d KiB (%+.1f%%)",
			fresh/1024, aged/1024, 100*(float64(aged)-float64(fresh))/float64(fresh))
		b.ReportMetric(float64(aged)/float64(fresh), "aged/fresh-heap")
		w.Close()
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkCreateGroup1000 measures how long CreateAutoScalingGroup with a
// desired capacity of 1,000 (no processes) holds the world's lock: the
// call returns once every launch has been started.
//
//	go test -run='^$' -bench=CreateGroup1000 -benchtime=5x ./internal/sandbox/world/
func BenchmarkCreateGroup1000(b *testing.B) {
	for range b.N {
		b.StopTimer()
		w := world.New(world.Config{Seed: 1}, simclock.NewSim(), nil, nil)
		if err := w.CreateLaunchConfiguration(world.LaunchConfiguration{Name: "lc", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro"}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := w.CreateAutoScalingGroup(world.CreateGroupInput{
			Name: "g", LaunchConfiguration: "lc", MinSize: new(0), MaxSize: new(1000), Desired: new(1000),
			AvailabilityZones: []string{"us-east-1a", "us-east-1b", "us-east-1c"},
		}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		w.Close()
	}
}
