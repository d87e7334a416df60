package controller_test

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/controller"
)

func TestQueueInstance(t *testing.T) {
	for _, tt := range []struct {
		name, id string
		ok       bool
	}{
		{"lifeguard-i-0123456789abcdef0", "i-0123456789abcdef0", true},
		{"lifeguard-i-0123abcd", "i-0123abcd", true},
		{"lifeguard-controller", "", false},
		{"lifeguard-i-0123456789ABCDEF0", "", false},
		{"lifeguard-i-0123", "", false},
		{"other-i-0123456789abcdef0", "", false},
	} {
		if id, ok := controller.QueueInstance("lifeguard-", tt.name); id != tt.id || ok != tt.ok {
			t.Errorf("QueueInstance(%q) = %q %v, want %q %v", tt.name, id, ok, tt.id, tt.ok)
		}
	}
}

func TestGone(t *testing.T) {
	grace := 2 * time.Minute
	q := func(id string) controller.InstanceQueue {
		return controller.InstanceQueue{URL: "https://q/lifeguard-" + id, ARN: "arn:q:lifeguard-" + id, Instance: id}
	}
	qs := []controller.InstanceQueue{q("i-00000001"), q("i-00000002"), q("i-00000003"), q("i-00000004")}
	states := map[string]string{"i-00000001": "running", "i-00000002": "terminated", "i-00000004": "shutting-down"} // i-00000003 unknown
	since := map[string]time.Time{}
	if got := controller.Gone(grace, t0, qs, states, since); len(got) != 0 {
		t.Errorf("first sight: %v, want nothing (the grace starts)", got)
	}
	if got := controller.Gone(grace, t0.Add(grace-time.Second), qs, states, since); len(got) != 0 {
		t.Errorf("within the grace: %v, want nothing", got)
	}
	got := controller.Gone(grace, t0.Add(grace), qs, states, since)
	if want := []controller.InstanceQueue{q("i-00000002"), q("i-00000003")}; !reflect.DeepEqual(got, want) {
		t.Errorf("after the grace: %v, want the terminated and the unknown instance's", got)
	}
	// An instance EC2 shows again (a late DescribeInstances) starts over.
	states["i-00000003"] = "running"
	controller.Gone(grace, t0.Add(grace), qs, states, since)
	states["i-00000003"] = "terminated"
	if got := controller.Gone(grace, t0.Add(grace+time.Second), qs, states, since); !reflect.DeepEqual(got, []controller.InstanceQueue{q("i-00000002")}) {
		t.Errorf("after coming back: %v, want only i-00000002", got)
	}
	if _, ok := since["i-00000001"]; ok {
		t.Errorf("a running instance is recorded as gone")
	}
}

// fakeQueues is SQS, SNS and EC2 for the queue sweep.
type fakeQueues struct {
	mu      sync.Mutex
	queues  map[string]controller.InstanceQueue // by name
	subs    map[string]string                   // subscription ARN → endpoint
	states  map[string]string
	deleted []string // queue names
	unsubs  []string
	lists   int
}

func (f *fakeQueues) InstanceQueues(_ context.Context, prefix string) ([]controller.InstanceQueue, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	var out []controller.InstanceQueue
	for name, q := range f.queues {
		if id, ok := controller.QueueInstance(prefix, name); ok {
			q.Instance = id
			out = append(out, q)
		}
	}
	return out, nil
}

func (f *fakeQueues) InstanceStates(_ context.Context, ids []string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for _, id := range ids {
		if s, ok := f.states[id]; ok {
			out[id] = s
		}
	}
	return out, nil
}

func (f *fakeQueues) DeleteInstanceQueue(_ context.Context, q controller.InstanceQueue) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for arn, ep := range f.subs {
		if ep == q.ARN {
			delete(f.subs, arn)
			f.unsubs = append(f.unsubs, arn)
			n++
		}
	}
	for name, fq := range f.queues {
		if fq.URL == q.URL {
			delete(f.queues, name)
			f.deleted = append(f.deleted, name)
		}
	}
	return n, nil
}

func TestSweepQueues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(t)
		f := &fakeQueues{
			queues: map[string]controller.InstanceQueue{},
			subs: map[string]string{
				"arn:sub:live": "arn:q:lifeguard-i-0000000a", "arn:sub:dead": "arn:q:lifeguard-i-0000000b",
				"arn:sub:ctl": "arn:q:lifeguard-controller",
			},
			states: map[string]string{"i-0000000a": "running", "i-0000000b": "terminated"},
		}
		for _, name := range []string{"lifeguard-i-0000000a", "lifeguard-i-0000000b", "lifeguard-i-0000000c", "lifeguard-controller"} {
			f.queues[name] = controller.InstanceQueue{URL: "https://q/" + name, ARN: "arn:q:" + name}
		}
		ctl, err := controller.New(controller.Config{Reap: controller.ReapSettings{Grace: 2 * time.Minute}},
			controller.Deps{Fleet: c, Tags: c, Completer: c, Queues: f}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- ctl.Run(ctx, nil, controller.DaemonConfig{Interval: time.Minute}) }()

		time.Sleep(time.Minute + time.Second) // two sweeps: gone for one minute only
		synctest.Wait()
		f.mu.Lock()
		if len(f.deleted) != 0 {
			t.Errorf("deleted within the grace: %v", f.deleted)
		}
		f.mu.Unlock()

		time.Sleep(time.Minute) // the third sweep: gone for two minutes
		synctest.Wait()
		f.mu.Lock()
		slices.Sort(f.deleted)
		if want := []string{"lifeguard-i-0000000b", "lifeguard-i-0000000c"}; !reflect.DeepEqual(f.deleted, want) {
			t.Errorf("deleted = %v, want %v (a terminated and an unknown instance's)", f.deleted, want)
		}
		if want := []string{"arn:sub:dead"}; !reflect.DeepEqual(f.unsubs, want) {
			t.Errorf("unsubscribed = %v, want %v", f.unsubs, want)
		}
		if f.lists != 3 {
			t.Errorf("ListQueues sweeps = %d, want 3 (one per interval)", f.lists)
		}
		f.mu.Unlock()
		if s := ctl.Stats(); s.QueuesDeleted != 2 || s.SubscriptionsDeleted != 1 {
			t.Errorf("stats = %+v, want 2 queues and 1 subscription", s)
		}

		// A scheduled event (a Lambda function's periodic trigger) sweeps too.
		f.mu.Lock()
		f.queues["lifeguard-i-0000000d"] = controller.InstanceQueue{URL: "https://q/lifeguard-i-0000000d", ARN: "arn:q:lifeguard-i-0000000d"}
		f.mu.Unlock()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		for range 2 {
			if err := ctl.Trigger(t.Context(), controller.Trigger{All: true}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Minute)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.queues["lifeguard-i-0000000d"]; ok {
			t.Errorf("scheduled triggers did not sweep the unknown instance's queue")
		}
		if _, ok := f.queues["lifeguard-i-0000000a"]; !ok {
			t.Errorf("a running instance's queue was deleted")
		}
	})
}
