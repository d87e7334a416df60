package controller

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Auto Scaling lifecycle states the controller tells apart.
const (
	StatePending         = "Pending"
	StatePendingWait     = "Pending:Wait"
	StatePendingProceed  = "Pending:Proceed"
	StateInService       = "InService"
	StateTerminatingWait = "Terminating:Wait"
)

// HealthUnhealthy is Auto Scaling's health status of an instance it is
// about to replace.
const HealthUnhealthy = "Unhealthy"

// Defaults of tag leadership.
const (
	DefaultLeaderKey   = "app:isLeader"
	DefaultLeaderValue = "true"
)

// Settings are one group's tag leadership settings.
type Settings struct {
	// Key is the leader tag's key (default app:isLeader).
	Key string
	// Value marks the leader (default true).
	Value string
	// FollowerValue, when set, is written on every other member (such as
	// "false"); when empty the key is deleted from them.
	FollowerValue string
}

// WithDefaults returns s with empty Key and Value defaulted.
func (s Settings) WithDefaults() Settings {
	if s.Key == "" {
		s.Key = DefaultLeaderKey
	}
	if s.Value == "" {
		s.Value = DefaultLeaderValue
	}
	return s
}

// Validate checks s (after WithDefaults) as EC2 checks tags.
func (s Settings) Validate() error {
	switch {
	case s.Key == "":
		return fmt.Errorf("leader tag key: missing; give a key such as %s", DefaultLeaderKey)
	case strings.HasPrefix(strings.ToLower(s.Key), "aws:"):
		return fmt.Errorf("leader tag key %q: starts with aws:, which AWS reserves; use another prefix, such as app:", s.Key)
	case s.FollowerValue != "" && s.FollowerValue == s.Value:
		return fmt.Errorf("follower value %q: is also the leader's value; give followers another value, or none to delete the tag from them", s.FollowerValue)
	}
	return nil
}

// Member is one instance of a group as the controller sees it: Auto
// Scaling's view (state, health) joined with EC2's (known, launch time,
// tag).
type Member struct {
	ID string
	// LifecycleState is Auto Scaling's, such as InService or
	// Terminating:Wait; "" when Auto Scaling no longer lists the instance
	// (detached, or gone) but EC2 still shows it with the group's tag.
	LifecycleState string
	// Health is Auto Scaling's health status (Healthy, Unhealthy).
	Health string
	// Known reports that EC2 describes the instance (it can be tagged).
	Known bool
	// Running reports that EC2 shows it pending or running.
	Running bool
	// Launched is EC2's launch time.
	Launched time.Time
	// Tag is the leader key's value; HasTag tells whether the key is set.
	Tag    string
	HasTag bool
}

// rank orders the members that may lead: 0 InService and healthy, 1
// launching (Pending, Pending:Wait, Pending:Proceed) and healthy, -1 not a
// candidate (terminating, Standby, unhealthy, unknown to EC2, not
// running).
func (m Member) rank() int {
	if !m.Known || !m.Running || m.Health == HealthUnhealthy {
		return -1
	}
	switch m.LifecycleState {
	case StateInService:
		return 0
	case StatePending, StatePendingWait, StatePendingProceed:
		return 1
	}
	return -1
}

// live reports whether an agent on the instance may still act on the
// leader tag: anything EC2 runs that is not on its way out. A terminating
// member's agent stops acting as leader as soon as its termination
// starts, so its tag no longer leads.
func (m Member) live() bool {
	if !m.Known || !m.Running || m.LifecycleState == "" {
		return false
	}
	return !strings.HasPrefix(m.LifecycleState, "Terminating") && m.LifecycleState != "Terminated" &&
		!strings.HasPrefix(m.LifecycleState, "Detaching") && m.LifecycleState != "Detached"
}

// Write is one tag write of a plan.
type Write struct {
	Instance string
	// Value is written; Delete deletes the key instead.
	Value  string
	Delete bool
}

// Plan is what Decide wants done, in order: First, then Then. Leader is
// the instance that leads afterwards ("" when the group has no
// candidate).
type Plan struct {
	Leader string
	// Kept reports that Leader already held the tag.
	Kept  bool
	First []Write
	Then  []Write
	// Reason says why, for the log.
	Reason string
}

// Empty reports whether the plan writes nothing.
func (p Plan) Empty() bool { return len(p.First) == 0 && len(p.Then) == 0 }

// Writes returns First and Then in order.
func (p Plan) Writes() []Write { return append(slices.Clip(p.First), p.Then...) }

// Decide returns the tag writes that leave exactly one leader tag in a
// group whose members are ms.
//
// The leader is kept while it is a candidate of the best rank present (an
// InService healthy holder stays; a launching holder stays only while no
// InService healthy member exists). Otherwise the leader is the best
// candidate: InService and healthy before launching, then the oldest
// launch, then the lowest id, so that concurrent invocations seeing the
// same group choose the same instance.
//
// Order: the new leader's tag is written First and the others removed
// Then, so that a failed second call leaves two tagged instances (which
// the re-read repairs) rather than none: a group whose jobs must run keeps
// a leader through every failure. The window with two tags lasts one call
// and, when the old leader's termination has started, holds no second
// live leader (a terminating agent has stopped acting on its tag).
func Decide(s Settings, ms []Member) Plan {
	s = s.WithDefaults()
	holds := func(m Member) bool { return m.HasTag && m.Tag == s.Value }
	cands := slices.DeleteFunc(slices.Clone(ms), func(m Member) bool { return m.rank() < 0 })
	slices.SortFunc(cands, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.rank(), b.rank()), a.Launched.Compare(b.Launched), cmp.Compare(a.ID, b.ID))
	})
	var p Plan
	if len(cands) > 0 {
		best := cands[0].rank()
		p.Leader, p.Reason = cands[0].ID, "elected the oldest "+rankName(best)+" member"
		for _, c := range cands {
			if c.rank() == best && holds(c) {
				p.Leader, p.Kept, p.Reason = c.ID, true, "kept the leader"
				break
			}
		}
	} else {
		p.Reason = "no candidate: no member is InService or launching, healthy and known to EC2"
	}
	var leader Member
	for _, m := range ms {
		if m.ID == p.Leader {
			leader = m
		}
	}
	var set []Write
	if p.Leader != "" && !holds(leader) {
		set = []Write{{Instance: p.Leader, Value: s.Value}}
	}
	var unset []Write
	for _, m := range ms {
		if m.ID == p.Leader || !m.Known {
			continue
		}
		switch {
		case holds(m) && s.FollowerValue == "":
			unset = append(unset, Write{Instance: m.ID, Delete: true})
		case holds(m) || s.FollowerValue != "" && m.live() && (!m.HasTag || m.Tag != s.FollowerValue):
			unset = append(unset, Write{Instance: m.ID, Value: s.FollowerValue})
		}
	}
	slices.SortFunc(unset, func(a, b Write) int { return cmp.Compare(a.Instance, b.Instance) })
	if len(set) == 0 {
		p.First = unset
	} else {
		p.First, p.Then = set, unset
	}
	return p
}

func rankName(r int) string {
	if r == 0 {
		return "InService healthy"
	}
	return "launching healthy"
}
