package agent

import (
	"slices"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// view is what the loop has observed, gathered by its polls (IMDS, Auto
// Scaling) and its queue messages before it decides: decide reads nothing
// else, so it is a pure function of the view.
type view struct {
	now        time.Time
	instanceID string
	group      string
	state      string // LifecycleState from Auto Scaling; "" until known
	target     string // IMDS target lifecycle state
	spot       bool   // a spot interruption notice was seen
	draining   bool   // Drain was called (on_sigterm: drain)
	gaveUp     bool   // drained before anything could be done

	terminating bool // the terminate plan has started
	confirmed   bool // … and Auto Scaling confirmed the action exists
	launching   bool // a launch is being handled
	launched    bool // the launch was handled while the instance is Pending
	// launchMessage says a launch message arrived while Auto Scaling had
	// not said the instance was past Pending (source sqs): the instance is
	// taken to be in Pending:Wait.
	launchMessage bool

	// hooks are the group's hooks as last read; hooksFresh says they were
	// read for this decision (or could not be, and hooks is the last list).
	hooks      []lifecycle.Hook
	hooksFresh bool
	// hooksKnown says hooks were read at least once (they may be old).
	hooksKnown bool
	// messages are the actions queue messages named (source sqs).
	messages []lifecycle.Key
	// hookWait is since when an action waits for a hook a message named
	// that DescribeLifecycleHooks did not list; zero when none waits.
	hookWait time.Time
	// pollInterval is imds.poll_interval; launchHook and terminateHook the
	// configured hook names ("" = every hook of the transition).
	pollInterval  time.Duration
	launchHook    string
	terminateHook string
}

// act is what a decision asks the loop to do.
type act int

const (
	actNone           act = iota
	actGiveUp             // drained before the instance id was known: nothing to run
	actReadHooks          // read the group's hooks, then decide again
	actWaitForHook        // a message names a hook not listed yet: read the hooks again at the next poll
	actStartTerminate     // start the terminate plan for hooks (none: the plan runs under NoHook)
	actConfirm            // Auto Scaling confirmed the terminate action: heartbeat and complete it
	actStartLaunch        // handle the pending launch for hooks (none: nothing to complete)
)

// decision is decide's answer.
type decision struct {
	act    act
	reason lifecycle.Reason // actStartTerminate
	why    string           // actConfirm: what confirmed it
	hooks  []lifecycle.Hook // actStartTerminate, actStartLaunch: the matching hooks
	// missing names hooks messages named that the hooks read do not list:
	// with actWaitForHook the ones waited for; with a start, the ones given
	// up on after hookWaitPolls polls.
	missing []string
	// stale says the start uses hooks read before the sign (a message
	// named each of them): read them again once the actions have started.
	stale bool
	// unverified says only queue messages told of the actions: the
	// instance may not be in the wait state they speak of.
	unverified bool
}

// hookWaitPolls bounds, in poll intervals, how long an action waits for
// DescribeLifecycleHooks to list a hook its message named.
const hookWaitPolls = 5

// decide returns what the view calls for, one thing at a time: the loop
// does it and decides again until the answer is actNone (or
// actWaitForHook). It starts the terminate plan at the first sign of
// termination, confirms it once Auto Scaling reports Terminating:Wait (or
// a later state) or a message for it arrived, and otherwise handles a
// launch pending in Pending:Wait; an action starts only with hooks read
// for it, and waits (boundedly) for a hook a message named.
func decide(v view) decision {
	if v.instanceID == "" {
		if v.draining && !v.gaveUp {
			return decision{act: actGiveUp}
		}
		return decision{}
	}
	if !v.terminating {
		if reason, ok := terminateSign(v); ok {
			// Only a message may be stale or misdirected; IMDS and Auto
			// Scaling speak of the instance itself.
			unverified := reason == lifecycle.ReasonLifecycleHook && v.target != stateTerminated && !terminating(v.state)
			return startAction(v, lifecycle.TransitionTerminating, v.terminateHook, decision{act: actStartTerminate, reason: reason, unverified: unverified})
		}
	}
	if v.terminating {
		switch {
		case v.confirmed:
		case v.state == stateTerminatingWait || v.state == stateTerminatingProceed || v.state == stateTerminated:
			return decision{act: actConfirm, why: "lifecycle state " + v.state}
		case messageTerminating(v):
			return decision{act: actConfirm, why: "lifecycle message"}
		}
		return decision{}
	}
	launchPending := v.state == statePendingWait || v.launchMessage && (v.state == "" || v.state == statePending)
	if launchPending && !v.launching && !v.launched {
		return startAction(v, lifecycle.TransitionLaunching, v.launchHook, decision{act: actStartLaunch, unverified: v.state != statePendingWait})
	}
	return decision{}
}

// startAction completes d, a start of transition t's actions for the hooks
// named name ("" = all), or asks for the hooks first. A plan that starts
// before the group is known (a drain) has no hooks. When messages of t
// name only hooks already read, it starts at once with those (stale): a
// message proves its hook exists and carries its token, and the hooks'
// timeouts are needed only once the first heartbeat is answered, so they
// are read again after the start rather than before it.
func startAction(v view, t lifecycle.Transition, name string, d decision) decision {
	if v.group == "" {
		return d
	}
	if !v.hooksFresh {
		if !v.hooksKnown || !messaged(v, t) || len(missingHooks(v, t)) > 0 {
			return decision{act: actReadHooks}
		}
		d.stale = true
	}
	d.missing = missingHooks(v, t)
	if len(d.missing) > 0 && (v.hookWait.IsZero() || v.now.Sub(v.hookWait) < hookWaitPolls*v.pollInterval) {
		return decision{act: actWaitForHook, missing: d.missing}
	}
	for _, h := range v.hooks {
		if h.Transition == t && (name == "" || h.Name == name) {
			d.hooks = append(d.hooks, h)
		}
	}
	return d
}

// messaged reports whether a queue message named an action of t.
func messaged(v view, t lifecycle.Transition) bool {
	return slices.ContainsFunc(v.messages, func(k lifecycle.Key) bool { return k.Transition == t })
}

// missingHooks returns the hooks of transition t that queue messages named
// and the hooks read do not list: a message proves its hook exists, so the
// hooks were read before it was put.
func missingHooks(v view, t lifecycle.Transition) []string {
	var missing []string
	for _, key := range v.messages {
		if key.Transition == t && !slices.ContainsFunc(v.hooks, func(h lifecycle.Hook) bool { return h.Name == key.Hook && h.Transition == t }) {
			missing = append(missing, key.Hook)
		}
	}
	return missing
}

// terminateSign returns the first sign of termination, if there is one.
// Signs from IMDS and Auto Scaling wait until the group is known; a drain
// does not (its plan then runs with no hook).
func terminateSign(v view) (lifecycle.Reason, bool) {
	switch {
	// A spot notice comes first: Auto Scaling starts terminating the
	// instance as soon as the notice is posted, so one poll sees both, and
	// the steps must learn the reason and the reclaim deadline.
	case v.group != "" && v.spot:
		return lifecycle.ReasonSpotInterruption, true
	case v.group != "" && (v.target == stateTerminated || terminating(v.state)), messageTerminating(v):
		return lifecycle.ReasonLifecycleHook, true
	case v.draining:
		return lifecycle.ReasonSIGTERM, true
	}
	return "", false
}

// messageTerminating reports whether a terminate message for this
// instance arrived (and the group is known).
func messageTerminating(v view) bool {
	if v.group == "" {
		return false
	}
	return slices.ContainsFunc(v.messages, func(k lifecycle.Key) bool { return k.Transition == lifecycle.TransitionTerminating })
}

func terminating(state string) bool {
	switch state {
	case stateTerminating, stateTerminatingWait, stateTerminatingProceed, stateTerminated:
		return true
	}
	return false
}
