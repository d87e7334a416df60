package lease_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lease"
)

func TestDecide(t *testing.T) {
	cfg := lease.Config{Group: "web", Identity: "i-self"}.WithDefaults() // 10 s lease, renew 2 s, poll 1 s, margin 4 s
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	s := time.Second
	held := lease.Record{Holder: "i-other", Token: 7, Lease: 10 * s, Version: "v7"}
	// A holder whose clock is an hour off writes a lease end that no
	// decision may read.
	skewed := held
	skewed.LeaseEnd = t0.Add(-time.Hour)
	longer := held
	longer.Lease = 30 * s
	released := held
	released.Released = true
	handed := released
	handed.Next = "i-self"
	handedElsewhere := released
	handedElsewhere.Next = "i-third"
	mine := lease.Record{Holder: "i-self", Token: 8, Lease: 10 * s, Version: "v8"}
	follower := func(rec lease.Record, seen, read time.Duration) lease.Observation {
		return lease.Observation{Self: "i-self", Eligible: true, Known: true, Record: rec, SeenAt: at(seen), ReadAt: at(read)}
	}
	leader := func(renewed, attempted time.Duration) lease.Observation {
		return lease.Observation{Self: "i-self", Eligible: true, Known: true, Record: mine, SeenAt: at(renewed), ReadAt: at(renewed), Leading: true, RenewedAt: at(renewed), AttemptedAt: at(attempted)}
	}
	with := func(o lease.Observation, f func(*lease.Observation)) lease.Observation { f(&o); return o }

	for _, tc := range []struct {
		name   string
		now    time.Duration
		obs    lease.Observation
		action lease.Action
		reason string
		wake   time.Duration // for Wait
	}{
		{"nothing read yet: poll", 0, lease.Observation{Self: "i-self", Eligible: true}, lease.Poll, lease.ReasonNotRead, 0},
		{"failed first read: poll again after one interval", 500 * time.Millisecond, lease.Observation{Self: "i-self", Eligible: true, ReadAt: at(0)}, lease.Wait, lease.ReasonNotRead, 1 * s},
		{"no record: acquire", 0, follower(lease.Record{}, 0, 0), lease.Acquire, lease.ReasonNoRecord, 0},
		{"no record but not eligible: wait for the next poll", 0, with(follower(lease.Record{}, 0, 0), func(o *lease.Observation) { o.Eligible = false }), lease.Wait, lease.ReasonNotEligible, 1 * s},
		{"held and fresh: wait for the next poll", 300 * time.Millisecond, follower(held, 0, 0), lease.Wait, lease.ReasonHeld, 1 * s},
		{"held, poll due: poll", 1 * s, follower(held, 0, 0), lease.Poll, lease.ReasonPollDue, 0},
		{"held, unchanged just short of a full lease: wait for it", 10*s - time.Millisecond, follower(held, 0, 9*s), lease.Wait, lease.ReasonHeld, 10 * s},
		{"unchanged for a full lease: acquire", 10 * s, follower(held, 0, 9*s), lease.Acquire, lease.ReasonExpired, 0},
		{"a version first seen late is waited out from then", 14 * s, follower(held, 5*s, 13*s+500*time.Millisecond), lease.Wait, lease.ReasonHeld, 14*s + 500*time.Millisecond},
		{"a version first seen late, a full lease later: acquire", 15 * s, follower(held, 5*s, 14*s+500*time.Millisecond), lease.Acquire, lease.ReasonExpired, 0},
		{"lease end from a skewed clock is ignored", 5 * s, follower(skewed, 0, 4*s+500*time.Millisecond), lease.Wait, lease.ReasonHeld, 5*s + 500*time.Millisecond},
		{"the record's longer lease is honoured", 10 * s, follower(longer, 0, 9*s+500*time.Millisecond), lease.Wait, lease.ReasonHeld, 10*s + 500*time.Millisecond},
		{"the record's longer lease, run out: acquire", 30 * s, follower(longer, 0, 29*s+500*time.Millisecond), lease.Acquire, lease.ReasonExpired, 0},
		{"expired but not eligible: keep polling", 10 * s, with(follower(held, 0, 9*s+500*time.Millisecond), func(o *lease.Observation) { o.Eligible = false }), lease.Wait, lease.ReasonNotEligible, 10*s + 500*time.Millisecond},
		{"a record of our own identity not acquired here is waited out", 5 * s, follower(mine, 0, 4*s+500*time.Millisecond), lease.Wait, lease.ReasonHeld, 5*s + 500*time.Millisecond},
		{"our own earlier lease, run out: left to the others for two more polls", 10 * s, follower(mine, 0, 9*s+500*time.Millisecond), lease.Wait, lease.ReasonHeld, 10*s + 500*time.Millisecond},
		{"our own earlier lease, two polls past it: acquire", 12 * s, follower(mine, 0, 11*s+500*time.Millisecond), lease.Acquire, lease.ReasonOurStale, 0},
		{"released: acquire at once", 0, follower(released, 0, 0), lease.Acquire, lease.ReasonReleased, 0},
		{"released to us: acquire at once", 0, follower(handed, 0, 0), lease.Acquire, lease.ReasonHandedToUs, 0},
		{"released to another member: leave it two polls", 1 * s, follower(handedElsewhere, 0, 1*s), lease.Wait, lease.ReasonHeld, 2 * s},
		{"released to another member that did not take it: acquire", 2 * s, follower(handedElsewhere, 0, 1*s+500*time.Millisecond), lease.Acquire, lease.ReasonNotTaken, 0},
		{"failed acquisition: retry after one poll interval", 10*s + 500*time.Millisecond, with(follower(held, 0, 10*s), func(o *lease.Observation) { o.AttemptedAt = at(10 * s) }), lease.Wait, lease.ReasonRetry, 11 * s},
		{"failed acquisition, interval over: retry", 11 * s, with(follower(held, 0, 10*s+500*time.Millisecond), func(o *lease.Observation) { o.AttemptedAt = at(10 * s) }), lease.Acquire, lease.ReasonExpired, 0},

		{"leader, renewal not due: wait for it", 1 * s, leader(0, 0), lease.Wait, lease.ReasonRenewDue, 2 * s},
		{"leader, renewal due: renew", 2 * s, leader(0, 0), lease.Renew, lease.ReasonRenewDue, 0},
		{"leader, renewal failed: retry after one poll interval", 2*s + 500*time.Millisecond, leader(0, 2*s), lease.Wait, lease.ReasonRetry, 3 * s},
		{"leader, renewals failing: renew until the give-up time", 5 * s, leader(0, 4*s), lease.Renew, lease.ReasonRenewDue, 0},
		{"leader, retry would come after the give-up time: wake to give up", 5*s + 500*time.Millisecond, leader(0, 5*s+200*time.Millisecond), lease.Wait, lease.ReasonRetry, 6 * s},
		{"leader at lease minus margin since its last confirmed write: step down", 6 * s, leader(0, 5*s), lease.StepDown, lease.ReasonGiveUp, 0},
		{"leader no longer eligible: release", 1 * s, with(leader(0, 0), func(o *lease.Observation) { o.Eligible = false }), lease.Release, lease.ReasonIneligible, 0},
		{"leader past its give-up time and ineligible: step down first", 7 * s, with(leader(0, 5*s), func(o *lease.Observation) { o.Eligible = false }), lease.StepDown, lease.ReasonGiveUp, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := lease.Decide(at(tc.now), tc.obs, cfg)
			if d.Action != tc.action || d.Reason != tc.reason {
				t.Fatalf("Decide = %v (%s); want %v (%s)", d.Action, d.Reason, tc.action, tc.reason)
			}
			if tc.action == lease.Wait && !d.Wake.Equal(at(tc.wake)) {
				t.Errorf("Wake = +%v; want +%v", d.Wake.Sub(t0), tc.wake)
			}
			if tc.obs.Leading && !d.GiveUp.Equal(tc.obs.RenewedAt.Add(6*s)) {
				t.Errorf("GiveUp = +%v; want +%v", d.GiveUp.Sub(t0), tc.obs.RenewedAt.Add(6*s).Sub(t0))
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() lease.Config {
		return lease.Config{Group: "web", Identity: "i-1", OnStartedLeading: noWork}
	}
	for _, tc := range []struct {
		name string
		edit func(*lease.Config)
		want string // substring of the error; empty: valid
	}{
		{"defaults are valid", func(*lease.Config) {}, ""},
		{"client-go-like timings are valid", func(c *lease.Config) {
			c.Lease, c.RenewEvery, c.PollEvery, c.Margin = 15*time.Second, 2*time.Second, 2*time.Second, 5*time.Second
		}, ""},
		{"group is required", func(c *lease.Config) { c.Group = "" }, "group: required"},
		{"identity is required", func(c *lease.Config) { c.Identity = "" }, "identity: required"},
		{"work is required", func(c *lease.Config) { c.OnStartedLeading = nil }, "on started leading: required"},
		{"negative lease", func(c *lease.Config) { c.Lease = -time.Second }, "lease: -1s is negative"},
		{"negative poll", func(c *lease.Config) { c.PollEvery = -time.Second }, "poll_every: -1s is negative"},
		{"margin as long as the lease", func(c *lease.Config) { c.Margin = 10 * time.Second }, "margin: 10s must be shorter than lease (10s)"},
		{"renewal no sooner than the give-up time", func(c *lease.Config) { c.RenewEvery = 4 * time.Second }, "renew_every: 4s must be shorter than lease minus margin (10s - 8s = 2s)"},
		{"renewal no sooner than the give-up time with an explicit margin", func(c *lease.Config) { c.Margin = 8 * time.Second }, "renew_every: 2s must be shorter than lease minus margin (10s - 8s = 2s)"},
		{"polls too rare", func(c *lease.Config) { c.PollEvery = 6 * time.Second }, "poll_every: 6s must be at most half the lease (10s)"},
		{"nil observer", func(c *lease.Config) { c.Observers = []func(lease.State){nil} }, "observers[0]: nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			err := c.WithDefaults().Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := lease.Config{}.WithDefaults()
	if c.Lease != 10*time.Second || c.RenewEvery != 2*time.Second || c.PollEvery != time.Second || c.Margin != 4*time.Second || c.PresenceEvery != 5*time.Second {
		t.Fatalf("defaults: lease %v, renew %v, poll %v, margin %v, presence %v; want 10s, 2s, 1s, 4s, 5s",
			c.Lease, c.RenewEvery, c.PollEvery, c.Margin, c.PresenceEvery)
	}
	c = lease.Config{RenewEvery: 3 * time.Second, Lease: 15 * time.Second}.WithDefaults()
	if c.Margin != 6*time.Second {
		t.Fatalf("margin with renew_every 3s = %v; want 6s (two renewals)", c.Margin)
	}
}
