package simclock_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAdvanceFiresDueTimersInDeadlineOrder(t *testing.T) {
	c := simclock.NewSim()
	fired := make(chan string, 3)
	c.AfterFunc(2*time.Hour, func() { fired <- "2h" })
	c.AfterFunc(time.Hour, func() { fired <- "1h" })
	late := c.AfterFunc(3*time.Hour, func() { fired <- "3h" })
	c.Advance(90 * time.Minute)
	if got := <-fired; got != "1h" {
		t.Fatalf("first fired %s, want 1h", got)
	}
	c.Advance(time.Hour)
	if got := <-fired; got != "2h" {
		t.Fatalf("then %s, want 2h", got)
	}
	if !late.Stop() {
		t.Error("Stop of a pending timer reported false")
	}
	c.Advance(10 * time.Hour)
	select {
	case got := <-fired:
		t.Errorf("stopped timer fired (%s)", got)
	default:
	}
	if late.Stop() {
		t.Error("second Stop reported true")
	}
}

func TestNowFollowsRealTimePlusOffset(t *testing.T) {
	c := simclock.NewSim()
	before := time.Now()
	c.Advance(24 * time.Hour)
	now := c.Now()
	if now.Before(before.Add(24*time.Hour)) || c.Offset() != 24*time.Hour {
		t.Errorf("now %s, offset %s, want at least a day after %s", now, c.Offset(), before)
	}
}

func TestTimersFireInRealTimeWithoutAdvance(t *testing.T) {
	c := simclock.NewSim()
	done := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a 1 ms timer did not fire within 10 s of real time")
	}
}
