package lease

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Default timings.
const (
	DefaultLease         = 10 * time.Second
	DefaultRenewEvery    = 2 * time.Second
	DefaultPollEvery     = 1 * time.Second
	DefaultPresenceEvery = 5 * time.Second
)

// InService is the lifecycle state in which an instance may lead.
const InService = "InService"

// Eligibility is what an instance says of itself when it campaigns.
type Eligibility struct {
	State string // lifecycle state, such as InService or Terminating:Wait
	Ready bool   // its readiness probes pass
}

// Eligible reports whether the instance may acquire the lease: it is
// InService and ready.
func (e Eligibility) Eligible() bool { return e.State == InService && e.Ready }

// Leadership is what the work is told when leadership starts.
type Leadership struct {
	// Token is the fencing token of this leadership; protected resources
	// reject writes carrying a lower one.
	Token uint64
	// Deadline is when the leader would give up if it could not renew
	// from now on (wall clock, at the start of leadership); renewals move
	// it later (see State.LeaseEnd).
	Deadline time.Time
}

// State is what an Elector knows, as given to its observers.
type State struct {
	// Leading reports that this instance leads: its work runs.
	Leading bool
	// Holder is the holder of the lease as last seen; empty when there is
	// no record or the lease was released.
	Holder string
	// Token is the fencing token of the record last seen (this instance's
	// own when Leading).
	Token uint64
	// LeaseEnd is, when Leading, the time at which this instance gives up
	// unless it renews; otherwise when the lease last seen expires by this
	// instance's observation (zero when none is held). Wall clock.
	LeaseEnd time.Time
	// Checked is when the store last answered (zero: never, so the state
	// is unknown).
	Checked time.Time
}

// Config configures an Elector. Zero timings take their defaults.
type Config struct {
	// Group names the lease record (one per Auto Scaling group).
	Group string
	// Identity is this instance's identity, its instance id.
	Identity string

	// Lease is how long a lease lasts after each write of its holder, as
	// observed by followers (default 10 s).
	Lease time.Duration
	// RenewEvery is the leader's renewal interval (default 2 s).
	RenewEvery time.Duration
	// PollEvery is the followers' read interval, and the interval between
	// retries of a failed write (default 1 s).
	PollEvery time.Duration
	// Margin is how long before its lease could expire on a follower's
	// clock the leader gives up: it covers the time the work needs to stop
	// once its context is cancelled and the drift between clock rates
	// (default 2 × RenewEvery).
	Margin time.Duration
	// PresenceEvery is the interval of membership announcements; a member
	// is live while its last announcement is younger than three intervals
	// (default 5 s).
	PresenceEvery time.Duration

	// Eligibility reports whether this instance may acquire the lease; it
	// is called before every decision and must not block. Nil means always
	// eligible.
	Eligibility func() Eligibility
	// OnStartedLeading runs the leader-only work in its own goroutine. Its
	// context is cancelled when leadership ends (lost, given up, resigned,
	// or Run's context done), and the lease is released only after it has
	// returned. Required.
	OnStartedLeading func(ctx context.Context, l Leadership)
	// Observers are called, in order and from the election loop, with
	// the first State when Run starts and then whenever Leading, Holder,
	// Token or LeaseEnd change; they must not block (hand slow work, such
	// as tagging, to a goroutine of their own). Leading turns false after
	// the work has returned and before the lease is released.
	Observers []func(State)
}

// WithDefaults returns c with zero timings replaced by their defaults.
func (c Config) WithDefaults() Config {
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.RenewEvery == 0 {
		c.RenewEvery = DefaultRenewEvery
	}
	if c.PollEvery == 0 {
		c.PollEvery = DefaultPollEvery
	}
	if c.Margin == 0 {
		c.Margin = 2 * c.RenewEvery
	}
	if c.PresenceEvery == 0 {
		c.PresenceEvery = DefaultPresenceEvery
	}
	return c
}

// Validate checks c (after WithDefaults) field by field and the timings
// against each other, the way client-go checks LeaseDuration >
// RenewDeadline > RetryPeriod: a leader must get to renew at least once
// before it gives up, and a follower must look more than once per lease.
func (c Config) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, errors.New("group: required (the name the lease record is kept under, such as the Auto Scaling group's name)"))
	}
	if c.Identity == "" {
		errs = append(errs, errors.New("identity: required (this instance's id)"))
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"lease", c.Lease}, {"renew_every", c.RenewEvery}, {"poll_every", c.PollEvery}, {"margin", c.Margin}, {"presence_every", c.PresenceEvery}} {
		if f.d < 0 {
			errs = append(errs, fmt.Errorf("%s: %s is negative; leave it unset for the default", f.name, f.d))
		}
	}
	if c.Lease > 0 && c.Margin > 0 && c.Margin >= c.Lease {
		errs = append(errs, fmt.Errorf("margin: %s must be shorter than lease (%s): the leader gives up at lease minus margin after its last renewal", c.Margin, c.Lease))
	} else if c.Lease > 0 && c.Margin > 0 && c.RenewEvery > 0 && c.RenewEvery >= c.Lease-c.Margin {
		errs = append(errs, fmt.Errorf("renew_every: %s must be shorter than lease minus margin (%s - %s = %s), or the leader gives up before it renews; lower renew_every or margin, or raise lease", c.RenewEvery, c.Lease, c.Margin, c.Lease-c.Margin))
	}
	if c.Lease > 0 && c.PollEvery > 0 && 2*c.PollEvery > c.Lease {
		errs = append(errs, fmt.Errorf("poll_every: %s must be at most half the lease (%s), so that followers notice an expired or released lease in time", c.PollEvery, c.Lease))
	}
	if c.OnStartedLeading == nil {
		errs = append(errs, errors.New("on started leading: required (the leader-only work)"))
	}
	for i, o := range c.Observers {
		if o == nil {
			errs = append(errs, fmt.Errorf("observers[%d]: nil", i))
		}
	}
	return errors.Join(errs...)
}
