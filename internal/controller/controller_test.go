package controller_test

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/controller"
)

func newController(t *testing.T, c *cloud, reap bool) *controller.Controller {
	t.Helper()
	deps := controller.Deps{Fleet: c, Tags: c, Completer: c}
	if reap {
		deps.Presence = c
	}
	ctl, err := controller.New(controller.Config{Reap: controller.ReapSettings{Grace: 2 * time.Minute}}, deps, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return ctl
}

func TestReconcile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(t)
		c.addGroup("web", true)
		c.launch("web", "i-1", "InService", 10*time.Minute)
		c.launch("web", "i-2", "InService", 5*time.Minute)
		ctl := newController(t, c, false)
		ctx := t.Context()

		if err := ctl.Reconcile(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		if got := c.holders("web"); !reflect.DeepEqual(got, []string{"i-1"}) {
			t.Fatalf("holders = %v, want [i-1]", got)
		}
		c.takeWrites()

		// Duplicate and late events: nothing more is written.
		for range 3 {
			if err := ctl.Handle(ctx, []byte(`{"Event":"autoscaling:EC2_INSTANCE_LAUNCH","AutoScalingGroupName":"web","EC2InstanceId":"i-2"}`)); err != nil {
				t.Fatal(err)
			}
		}
		if w := c.takeWrites(); len(w) != 0 {
			t.Errorf("repeated events wrote %v", w)
		}

		// The leader's termination starts: its successor is tagged first.
		c.setState("i-1", "Terminating:Wait")
		if err := ctl.Reconcile(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		if w, want := c.takeWrites(), []string{"set i-2=true", "del i-1"}; !reflect.DeepEqual(w, want) {
			t.Errorf("writes = %v, want %v", w, want)
		}

		// An unhealthy leader: its successor is tagged first, then its
		// own tag removed, so the group is never without a leader.
		c.launch("web", "i-3", "InService", time.Minute)
		c.setHealth("i-2", "Unhealthy")
		if err := ctl.Reconcile(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		if w, want := c.takeWrites(), []string{"set i-3=true", "del i-2"}; !reflect.DeepEqual(w, want) {
			t.Errorf("writes = %v, want %v", w, want)
		}
		if c.zeroSeen {
			t.Error("the group was left without a live leader between two writes")
		}
		if c.maxLive != 2 {
			t.Errorf("%d live holders at once, want 2 for the one call between writing the new tag and removing the old", c.maxLive)
		}
	})
}

func TestReconcileRetriesAnInstanceEC2DoesNotKnowYet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(t)
		c.addGroup("web", true)
		in := c.launch("web", "i-1", "Pending:Wait", 0)
		in.notFound = 3
		ctl := newController(t, c, false)
		start := time.Now()
		if err := ctl.Reconcile(t.Context(), "web"); err != nil {
			t.Fatal(err)
		}
		if got := c.holders("web"); !reflect.DeepEqual(got, []string{"i-1"}) {
			t.Errorf("holders = %v, want [i-1]", got)
		}
		// Three failed writes, the one that lands, and the read that
		// confirms it: four settle waits (and the fake's 1 ms reads).
		if took := time.Since(start).Truncate(time.Second); took != 4*controller.DefaultSettle {
			t.Errorf("took %v, want four settle waits", took)
		}
	})
}

func TestReconcileNeverTagsAnInstanceEC2DoesNotDescribe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(t)
		c.addGroup("web", true)
		c.launch("web", "i-1", "Pending", 0).hidden = true
		ctl := newController(t, c, false)
		if err := ctl.Reconcile(t.Context(), "web"); err != nil {
			t.Fatal(err)
		}
		if w := c.takeWrites(); len(w) != 0 {
			t.Errorf("writes = %v, want none", w)
		}
	})
}

func TestReconcileFailedRemovalIsRepaired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(t)
		c.addGroup("web", true)
		c.launch("web", "i-1", "InService", 10*time.Minute).tags[controller.DefaultLeaderKey] = "true"
		c.launch("web", "i-2", "InService", 5*time.Minute)
		c.setHealth("i-1", "Unhealthy")
		c.failDelete["i-1"] = true
		ctl := newController(t, c, false)
		if err := ctl.Reconcile(t.Context(), "web"); err == nil {
			t.Error("reconcile succeeded with a failing DeleteTags")
		}
		// The successor was tagged first: a failed removal leaves two
		// tags, never none.
		if got := c.holders("web"); !reflect.DeepEqual(got, []string{"i-1", "i-2"}) {
			t.Errorf("holders = %v, want [i-1 i-2] until the removal succeeds", got)
		}
		c.failDelete["i-1"] = false
		if err := ctl.Reconcile(t.Context(), "web"); err != nil {
			t.Fatal(err)
		}
		if got := c.holders("web"); !reflect.DeepEqual(got, []string{"i-2"}) {
			t.Errorf("holders = %v, want [i-2]", got)
		}
	})
}

func TestReconcileFailedElectionKeepsTheOldTag(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(t)
		c.addGroup("web", true)
		c.launch("web", "i-1", "InService", 10*time.Minute).tags[controller.DefaultLeaderKey] = "true"
		c.launch("web", "i-2", "InService", 5*time.Minute)
		c.setHealth("i-1", "Unhealthy")
		c.failSet["i-2"] = true
		ctl := newController(t, c, false)
		if err := ctl.Reconcile(t.Context(), "web"); err == nil {
			t.Error("reconcile succeeded with a failing CreateTags")
		}
		if got := c.holders("web"); !reflect.DeepEqual(got, []string{"i-1"}) {
			t.Errorf("holders = %v, want only [i-1]: a failed election must not remove the last tag", got)
		}
		c.failSet["i-2"] = false
		if err := ctl.Reconcile(t.Context(), "web"); err != nil {
			t.Fatal(err)
		}
		if got := c.holders("web"); !reflect.DeepEqual(got, []string{"i-2"}) {
			t.Errorf("holders = %v, want [i-2]", got)
		}
	})
}

func TestReconcileLeavesGroupsThatDidNotOptIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(t)
		c.addGroup("other", false)
		c.launch("other", "i-1", "InService", time.Minute)
		ctl := newController(t, c, false)
		if err := ctl.Reconcile(t.Context(), "other"); err != nil {
			t.Fatal(err)
		}
		if err := ctl.Reconcile(t.Context(), "missing"); err != nil {
			t.Fatal(err)
		}
		if w := c.takeWrites(); len(w) != 0 {
			t.Errorf("writes = %v, want none", w)
		}
	})
}

func TestConcurrentReconcilesOfAGroupAreSerialised(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(t)
		for _, g := range []string{"a", "b"} {
			c.addGroup(g, true)
			for i := range 4 {
				c.launch(g, "i-"+g+string(rune('0'+i)), "InService", time.Duration(i)*time.Minute)
			}
		}
		ctl := newController(t, c, false)
		var wg sync.WaitGroup
		for range 10 {
			for _, g := range []string{"a", "b"} {
				wg.Go(func() {
					if err := ctl.Reconcile(t.Context(), g); err != nil {
						t.Error(err)
					}
				})
			}
		}
		wg.Wait()
		for _, g := range []string{"a", "b"} {
			if n := c.maxInFlight[g]; n != 1 {
				t.Errorf("group %s: %d reconciles at once, want 1", g, n)
			}
			if got := c.holders(g); len(got) != 1 {
				t.Errorf("group %s: holders %v, want one", g, got)
			}
		}
	})
}

type fakeQueue struct {
	ch      chan controller.Message
	mu      sync.Mutex
	deleted []string
}

func (q *fakeQueue) Receive(ctx context.Context, wait time.Duration) ([]controller.Message, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case m := <-q.ch:
		return []controller.Message{m}, nil
	case <-t.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (q *fakeQueue) Delete(ctx context.Context, m controller.Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deleted = append(q.deleted, m.Handle)
	return nil
}

func TestDaemon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCloud(t)
		c.addGroup("web", true)
		c.addGroup("api", true)
		ctl := newController(t, c, true)
		q := &fakeQueue{ch: make(chan controller.Message)}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() {
			done <- ctl.Run(ctx, q, controller.DaemonConfig{Interval: time.Minute, Wait: 20 * time.Second})
		}()
		synctest.Wait()

		// A burst of launches in both groups, each announced.
		for i := range 5 {
			for _, g := range []string{"web", "api"} {
				id := "i-" + g + string(rune('0'+i))
				c.launch(g, id, "InService", time.Duration(-i)*time.Second)
				c.announce(g, id)
				q.ch <- controller.Message{Handle: id, Body: `{"Event":"autoscaling:EC2_INSTANCE_LAUNCH","AutoScalingGroupName":"` + g + `","EC2InstanceId":"` + id + `"}`}
			}
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		for _, g := range []string{"web", "api"} {
			if got, want := c.holders(g), []string{"i-" + g + "0"}; !reflect.DeepEqual(got, want) {
				t.Errorf("%s holders = %v, want %v", g, got, want)
			}
		}
		q.mu.Lock()
		if len(q.deleted) != 10 {
			t.Errorf("%d messages deleted, want 10", len(q.deleted))
		}
		q.mu.Unlock()

		// A hand-edited tag is repaired by the periodic reconcile.
		c.mu.Lock()
		c.insts["i-web3"].tags[controller.DefaultLeaderKey] = "true"
		c.mu.Unlock()
		time.Sleep(time.Minute + 10*time.Second)
		synctest.Wait()
		if got := c.holders("web"); !reflect.DeepEqual(got, []string{"i-web0"}) {
			t.Errorf("holders after a hand edit = %v, want [i-web0]", got)
		}

		// The reaper: i-web4 waits to terminate and its agent is dead;
		// i-api4 waits too but its agent announces itself.
		c.setState("i-web4", "Terminating:Wait")
		c.setState("i-api4", "Terminating:Wait")
		start := time.Now()
		for time.Since(start) < 5*time.Minute {
			c.announce("api", "i-api4")
			time.Sleep(5 * time.Second)
		}
		synctest.Wait()
		if want := []string{"web/i-web4/Terminating:Wait/CONTINUE"}; !reflect.DeepEqual(c.completed, want) {
			t.Errorf("completed = %v, want %v", c.completed, want)
		}
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}
