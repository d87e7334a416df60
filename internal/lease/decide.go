package lease

import "time"

// Action is what Decide tells an elector to do next.
type Action int

// Actions.
const (
	// Wait: nothing is due before Decision.Wake.
	Wait Action = iota
	// Poll: read the record.
	Poll
	// Acquire: try to take the lease (absent, released, handed to us, or
	// unchanged for a full lease).
	Acquire
	// Renew: extend our lease.
	Renew
	// Release: give our lease up (stop the work first).
	Release
	// StepDown: stop leading now, since our lease could expire on a
	// follower's clock before we confirm it again.
	StepDown
)

func (a Action) String() string {
	switch a {
	case Wait:
		return "wait"
	case Poll:
		return "poll"
	case Acquire:
		return "acquire"
	case Renew:
		return "renew"
	case Release:
		return "release"
	case StepDown:
		return "step down"
	}
	return "unknown action"
}

// Reasons given with decisions.
const (
	ReasonNotRead     = "record not read yet"
	ReasonPollDue     = "poll due"
	ReasonNoRecord    = "no lease record"
	ReasonReleased    = "lease released"
	ReasonHandedToUs  = "lease handed to us"
	ReasonNotTaken    = "named successor did not take the released lease"
	ReasonExpired     = "record unchanged for a full lease"
	ReasonOurStale    = "our own earlier lease, left to the others first"
	ReasonHeld        = "lease held"
	ReasonNotEligible = "not eligible"
	ReasonRenewDue    = "renewal due"
	ReasonIneligible  = "leader no longer eligible"
	ReasonGiveUp      = "lease could expire on a follower's clock before renewal"
	ReasonRetry       = "waiting to retry a failed write"
)

// Observation is what an elector knows, all times taken from its own
// clock (time.Now, with its monotonic reading).
type Observation struct {
	// Self is this elector's identity.
	Self string
	// Eligible reports whether this instance may acquire now.
	Eligible bool
	// Known reports that the store has shown the record (or its absence)
	// at least once.
	Known bool
	// Record is the record last seen; the zero Record when there is none.
	Record Record
	// SeenAt is when this elector first saw Record.Version (taken when
	// the answer showing it arrived).
	SeenAt time.Time
	// ReadAt is when the last read was started (zero: never).
	ReadAt time.Time
	// AttemptedAt is when the last write was started (zero: never).
	AttemptedAt time.Time
	// Leading reports that this elector holds Record: it acquired it
	// itself, in this process.
	Leading bool
	// RenewedAt is, when Leading, when the last write of ours known to
	// have been applied was started.
	RenewedAt time.Time
}

// Decision is Decide's answer.
type Decision struct {
	Action Action
	Reason string
	// Wake is, for Wait, when to decide again at the latest (new facts,
	// such as a resignation, may come sooner).
	Wake time.Time
	// GiveUp is, when leading, when the leader gives up unless a renewal
	// is confirmed first.
	GiveUp time.Time
}

// Decide is the election's pure rule: what to do at now given o.
//
// A leader gives up at RenewedAt + Lease − Margin, measured both on the
// monotonic clock and on the wall clock, whichever has advanced more (the
// wall clock counts time the host spent suspended); it releases the lease
// when it is no longer eligible; it renews every RenewEvery, retrying a
// failed write after PollEvery.
//
// A follower reads the record every PollEvery. If eligible, it acquires a
// record that does not exist, one released without a named successor or
// naming it, one released for another member that has not taken it within
// two polls, and one whose version it has seen unchanged for a full lease
// (the longer of the record's Lease and cfg.Lease) on its own monotonic
// clock; it retries a failed attempt after PollEvery. The record's
// LeaseEnd, written with another host's clock, is never read.
func Decide(now time.Time, o Observation, cfg Config) Decision {
	cfg = cfg.WithDefaults()
	if o.Leading {
		hold := cfg.Lease - cfg.Margin
		d := Decision{GiveUp: o.RenewedAt.Add(hold)}
		switch due := later(o.RenewedAt.Add(cfg.RenewEvery), retryAt(o.AttemptedAt, cfg)); {
		case elapsed(now, o.RenewedAt) >= hold:
			d.Action, d.Reason = StepDown, ReasonGiveUp
		case !o.Eligible:
			d.Action, d.Reason = Release, ReasonIneligible
		case !now.Before(due):
			d.Action, d.Reason = Renew, ReasonRenewDue
		default:
			d.Action, d.Reason, d.Wake = Wait, ReasonRenewDue, earlier(due, d.GiveUp)
			if due.After(o.RenewedAt.Add(cfg.RenewEvery)) {
				d.Reason = ReasonRetry
			}
		}
		return d
	}

	pollAt := now
	if !o.ReadAt.IsZero() {
		pollAt = o.ReadAt.Add(cfg.PollEvery)
	}
	if !o.Known {
		if !now.Before(pollAt) {
			return Decision{Action: Poll, Reason: ReasonNotRead}
		}
		return Decision{Action: Wait, Reason: ReasonNotRead, Wake: pollAt}
	}
	wake, reason := pollAt, ReasonHeld
	if o.Eligible {
		freeAt, why := freeAt(o, cfg)
		at := later(freeAt, retryAt(o.AttemptedAt, cfg))
		if !now.Before(at) {
			return Decision{Action: Acquire, Reason: why}
		}
		if at.Before(wake) {
			wake = at
		}
		if !freeAt.After(now) {
			reason = ReasonRetry
		}
	} else {
		reason = ReasonNotEligible
	}
	if !now.Before(pollAt) {
		return Decision{Action: Poll, Reason: ReasonPollDue}
	}
	return Decision{Action: Wait, Reason: reason, Wake: wake}
}

// freeAt returns when a follower may acquire the record of o, and why.
func freeAt(o Observation, cfg Config) (time.Time, string) {
	r := o.Record
	switch {
	case !r.Exists():
		return o.SeenAt, ReasonNoRecord
	case r.Released && r.Next == o.Self:
		return o.SeenAt, ReasonHandedToUs
	case r.Released && r.Next == "":
		return o.SeenAt, ReasonReleased
	case r.Released:
		return o.SeenAt.Add(2 * cfg.PollEvery), ReasonNotTaken
	}
	if r.Holder == o.Self {
		// A record naming us that this process did not acquire: an agent
		// of ours that crashed or restarted while leading. The others saw
		// its last renewal up to a poll after it was written (we, since
		// we started, no earlier than that), so waiting two polls past
		// the lease leaves them the lease first: a crash-looping agent
		// does not win leadership back over healthy peers.
		return o.SeenAt.Add(max(r.Lease, cfg.Lease) + 2*cfg.PollEvery), ReasonOurStale
	}
	return o.SeenAt.Add(max(r.Lease, cfg.Lease)), ReasonExpired
}

// retryAt returns when a write attempted at t may be tried again.
func retryAt(t time.Time, cfg Config) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(cfg.PollEvery)
}

// elapsed returns the time from t to now on whichever of the monotonic and
// the wall clock has advanced more: the monotonic clock does not count a
// suspension of the host, the wall clock does.
func elapsed(now, t time.Time) time.Duration {
	return max(now.Sub(t), now.Round(0).Sub(t.Round(0)))
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
