package agent

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// loop is Run's state; only Run's goroutine touches it.
type loop struct {
	a   *Agent
	ctx context.Context
	wg  *sync.WaitGroup
	log *slog.Logger

	instanceID string
	group      string
	state      string // LifecycleState from Auto Scaling; "" until known
	target     string // IMDS target lifecycle state
	observed   bool   // Auto Scaling has answered once
	describe   bool   // the target state changed since Auto Scaling last answered
	spot       *SpotNotice
	hooks      []lifecycle.Hook
	hooksOK    bool
	hooksFresh bool      // the hooks were read by the poll this decision follows
	hookWait   time.Time // since when an action waits for a hook a message named
	idRetry    backoff
	mbRetry    backoff
	hkRetry    backoff
	logged     map[string]bool // no-plan states already logged

	handled   map[lifecycle.Key]bool
	launching *launchRun // the launch being handled, nil if none
	launched  bool       // the launch was handled while the instance is Pending
	sqs       *sqsLoop   // source sqs; nil for source imds
	term      *termination
	draining  bool
	gaveUp    bool // drained before anything could be done
}

// termination is the terminate transition being handled.
type termination struct {
	reason    lifecycle.Reason
	confirmed chan struct{}
	closed    bool // confirmed is closed
	actions   []*actionState
}

// launchRun is a launch being handled; done is set (under Agent.mu) when
// its goroutine returns.
type launchRun struct{ done bool }

// poll reads IMDS and, when needed, Auto Scaling.
func (l *loop) poll() {
	a, ctx := l.a, l.ctx
	l.hooksFresh = false
	l.reapLaunch()
	if l.instanceID == "" {
		if !l.idRetry.due() {
			return
		}
		id, err := a.md.InstanceID(ctx)
		if err == nil && id == "" {
			err = errors.New("empty instance id")
		}
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("read instance id failed", keyErr, err, keyRetryIn, l.idRetry.fail())
			}
			return
		}
		l.idRetry.ok()
		l.instanceID = id
		l.log = l.log.With(keyInstance, id)
		l.log.Info("agent started")
		a.update(func(s *snapshot) { s.Instance = id })
	}

	// Also with source sqs: the message usually comes first and brings
	// the token, but a queue that cannot be read (deleted, denied, its
	// subscription gone) must not let the instance go without its plan.
	if target, err := a.md.TargetLifecycleState(ctx); err != nil {
		if ctx.Err() == nil {
			l.log.Warn("read target lifecycle state failed", keyErr, err)
		}
	} else if target != l.target {
		l.log.Info("target lifecycle state changed", keyFrom, l.target, keyTarget, target)
		l.target, l.describe = target, true
		l.noPlan(target)
		a.update(func(s *snapshot) { s.TargetState = target })
	}

	if l.term == nil && l.spot == nil {
		n, err := a.md.SpotInterruption(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				l.log.Warn("read spot interruption notice failed", keyErr, err)
			}
		case n != nil:
			l.log.Warn("spot interruption notice", keyAction, n.Action, keyTime, n.Time)
			l.spot = n
			a.mu.Lock()
			a.spot = n
			a.mu.Unlock()
		}
	}

	if l.needDescribe() && l.mbRetry.due() {
		m, err := a.asg.Instance(ctx, l.instanceID)
		switch {
		case err == nil:
			l.mbRetry.ok()
			l.observe(m)
		case ctx.Err() != nil:
		case errors.Is(err, ErrNotInGroup) && l.observed:
			l.left(err)
		case errors.Is(err, ErrNotInGroup):
			l.log.Info("instance not listed by Auto Scaling yet", keyErr, err, keyRetryIn, l.mbRetry.fail())
		default:
			l.log.Warn("describe auto scaling instance failed", keyErr, err, keyRetryIn, l.mbRetry.fail())
		}
	}

	if l.group != "" && !l.hooksOK && l.hkRetry.due() {
		hooks, err := a.asg.Hooks(ctx, l.group)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("describe lifecycle hooks failed", keyGroup, l.group, keyErr, err, keyRetryIn, l.hkRetry.fail())
			}
			return
		}
		l.hkRetry.ok()
		l.setHooks(hooks)
		l.hooksFresh = true
	}
}

// needDescribe reports whether Auto Scaling should be asked about the
// instance: until it has answered, when the target state changed, while
// the instance is Pending (Pending:Wait may follow), and while a terminate
// action waits for Terminating:Wait.
func (l *loop) needDescribe() bool {
	pending := l.state == statePending && l.sqs == nil // source sqs: the launch message says Pending:Wait
	return !l.observed || l.describe || pending || (l.term != nil && !l.term.closed)
}

// observe takes in what Auto Scaling says about the instance.
func (l *loop) observe(m Membership) {
	first := !l.observed
	l.observed, l.describe = true, false
	if m.Group != l.group {
		if l.group != "" {
			l.log.Warn("instance moved to another group", keyFrom, l.group, keyGroup, m.Group)
		}
		l.group, l.hooksOK = m.Group, false
		l.log = l.a.log.With(keyInstance, l.instanceID, keyGroup, m.Group)
	}
	changed := m.LifecycleState != l.state
	if changed {
		l.log.Info("lifecycle state changed", keyFrom, l.state, keyState, m.LifecycleState)
		l.state = m.LifecycleState
		l.noPlan(l.state)
	}
	l.a.update(func(s *snapshot) { s.Group, s.LifecycleState = m.Group, m.LifecycleState })
	if first || changed {
		l.forget(first)
	}
}

// left handles the instance no longer being listed after it was.
func (l *loop) left(err error) {
	if l.state != "" {
		l.log.Warn("instance no longer listed by Auto Scaling", keyErr, err)
	}
	l.state, l.describe = "", false
	l.a.update(func(s *snapshot) { s.LifecycleState = "" })
	if l.term != nil && !l.term.closed {
		// No action can be pending: let the Executor learn it from Auto
		// Scaling (ErrNoActiveAction) rather than wait forever.
		l.confirm("instance left its group")
	}
}

// forget removes journal records of actions that cannot be pending any
// more, so that a later action with the same key is not taken for a
// finished one: launch records once the instance is out of the Pending
// states, and, at start, terminate records when nothing says the instance
// is terminating.
func (l *loop) forget(first bool) {
	pending := l.state == statePending || l.state == statePendingWait || l.state == statePendingProceed
	if !pending && l.launching == nil {
		l.launched = false
		l.forgetRecords(lifecycle.TransitionLaunching)
	}
	if first && l.term == nil && l.spot == nil && l.target != stateTerminated && !terminating(l.state) {
		l.forgetRecords(lifecycle.TransitionTerminating)
	}
}

func (l *loop) forgetRecords(t lifecycle.Transition) {
	recs, err := l.a.journal.List()
	if err != nil {
		l.log.Warn("list journal failed", keyErr, err)
		return
	}
	for _, r := range recs {
		if r.Key.Instance != l.instanceID || r.Key.Transition != t {
			continue
		}
		delete(l.handled, r.Key)
		if err := l.a.journal.Remove(r.Key); err != nil {
			l.log.Warn("forget journaled lifecycle action failed", keyHook, r.Key.Hook, keyErr, err)
			continue
		}
		l.log.Info("journaled lifecycle action forgotten", keyHook, r.Key.Hook, keyTransition, string(t), keyState, l.state, "completed", r.Completed)
	}
}

func terminating(state string) bool {
	switch state {
	case stateTerminating, stateTerminatingWait, stateTerminatingProceed, stateTerminated:
		return true
	}
	return false
}

// noPlan logs, once per state, a state in which no plan runs.
func (l *loop) noPlan(state string) {
	switch {
	case state == stateStandby, state == stateEnteringStandby, state == stateDetached, state == stateDetaching,
		strings.HasPrefix(state, warmedPrefix):
	default:
		return
	}
	if !l.logged[state] {
		l.logged[state] = true
		l.log.Info("no plan runs in this state", keyState, state)
	}
}

func (l *loop) setHooks(hooks []lifecycle.Hook) {
	l.hooks, l.hooksOK = hooks, true
	names := make([]string, len(hooks))
	for i, h := range hooks {
		names[i] = h.Name + " (" + transitionLabel(h.Transition) + ")"
	}
	l.log.Info("lifecycle hooks", "hooks", names)
}

// refreshHooks reads the group's hooks again for a new action; when that
// fails it falls back to the hooks read before, if any. ok is false when
// no hooks are known.
func (l *loop) refreshHooks() bool {
	if l.hooksFresh {
		return true
	}
	hooks, err := l.a.asg.Hooks(l.ctx, l.group)
	if err == nil {
		l.hkRetry.ok()
		l.setHooks(hooks)
		return true
	}
	if l.ctx.Err() == nil {
		l.log.Warn("describe lifecycle hooks failed", keyGroup, l.group, keyErr, err, "cached", l.hooksOK)
	}
	return l.hooksOK
}

// hookWaitPolls bounds, in poll intervals, how long an action waits for
// DescribeLifecycleHooks to list a hook its message named.
const hookWaitPolls = 5

// hooksListed reports whether the hooks read include every hook of
// transition t that a queue message named. A message proves its hook
// exists; when the hooks were read before the hook was put, the action
// waits for a fresh read, at most hookWaitPolls poll intervals (then it
// goes on with the hooks listed).
func (l *loop) hooksListed(t lifecycle.Transition) bool {
	if l.sqs == nil {
		return true
	}
	var missing []string
	for key := range l.sqs.got {
		if key.Transition == t && !slices.ContainsFunc(l.hooks, func(h lifecycle.Hook) bool { return h.Name == key.Hook && h.Transition == t }) {
			missing = append(missing, key.Hook)
		}
	}
	switch {
	case len(missing) == 0:
	case l.hookWait.IsZero():
		l.hookWait = time.Now()
		l.log.Info("lifecycle message names a hook DescribeLifecycleHooks did not list; reading the hooks again at the next poll", "hooks", missing)
		return false
	case time.Since(l.hookWait) < hookWaitPolls*time.Duration(l.a.cfg.IMDS.PollInterval):
		return false
	default:
		l.log.Warn("lifecycle message names a hook DescribeLifecycleHooks does not list; going on without it", "hooks", missing)
	}
	l.hookWait = time.Time{} // the next action waits afresh
	return true
}

// matching returns the hooks of transition t named name ("" = all).
func (l *loop) matching(t lifecycle.Transition, name string) []lifecycle.Hook {
	var out []lifecycle.Hook
	for _, h := range l.hooks {
		if h.Transition == t && (name == "" || h.Name == name) {
			out = append(out, h)
		}
	}
	return out
}

// decide starts what the state calls for. Hooks read by the poll before
// it are fresh for it only: a message that arrives later in the poll
// interval makes a new action read them again.
func (l *loop) decide() {
	defer func() { l.hooksFresh = false }()
	if l.instanceID == "" {
		if l.draining && !l.gaveUp {
			l.log.Warn("drain requested before the instance id was known; nothing to run")
			l.gaveUp = true
		}
		return
	}
	if l.term == nil {
		if reason, ok := l.terminateSign(); ok {
			l.startTerminate(reason)
		}
	}
	if l.term != nil {
		switch {
		case l.term.closed:
		case l.state == stateTerminatingWait || l.state == stateTerminatingProceed || l.state == stateTerminated:
			l.confirm("lifecycle state " + l.state)
		case l.messageTerminating():
			l.confirm("lifecycle message")
		}
		return
	}
	l.reapLaunch()
	if l.state == statePendingWait && l.launching == nil && !l.launched {
		l.startLaunch()
	}
}

// reapLaunch notes that the launch goroutine has returned.
func (l *loop) reapLaunch() {
	if l.launching == nil {
		return
	}
	l.a.mu.Lock()
	done := l.launching.done
	l.a.mu.Unlock()
	if done {
		l.launching = nil
	}
}

// startLaunch starts handling the pending launch.
func (l *loop) startLaunch() {
	if !l.refreshHooks() || !l.hooksListed(lifecycle.TransitionLaunching) {
		return // retried at the next poll
	}
	l.launched = true
	hooks := l.matching(lifecycle.TransitionLaunching, l.a.cfg.Launch.Hook)
	if len(hooks) == 0 {
		if l.a.cfg.Launch.Hook != "" {
			l.log.Warn("instance is in Pending:Wait but the launch hook is not on the group; nothing to complete", keyHook, l.a.cfg.Launch.Hook)
		} else {
			l.log.Warn("instance is in Pending:Wait but the group has no launch hook; nothing to complete")
		}
		return
	}
	now := time.Now()
	var actions []*actionState
	for _, h := range hooks {
		act := lifecycle.Action{InstanceID: l.instanceID, Group: l.group, Hook: h, Seen: now, Reason: lifecycle.ReasonLifecycleHook}
		act.Token = l.token(act.Key())
		if l.handled[act.Key()] {
			continue
		}
		l.handled[act.Key()] = true
		actions = append(actions, l.a.track(act, lifecycle.Plan{}, phaseProbing))
	}
	if len(actions) == 0 {
		return
	}
	l.log.Info("launch lifecycle action pending", "hooks", len(actions), "probes", len(l.a.probes))
	run := &launchRun{}
	l.launching = run
	l.wg.Go(func() {
		defer l.a.signal()
		defer func() {
			l.a.mu.Lock()
			run.done = true
			l.a.mu.Unlock()
		}()
		l.a.launch(l.ctx, l.log, actions)
	})
}

// backoff spaces the retries of a call made at polls: after failures in a
// row the call waits 1, 2, 4, … poll intervals, up to maxBackoff; a
// success resets it.
type backoff struct {
	interval time.Duration // the poll interval
	polls    int           // the current wait, in polls
	skip     int           // polls left to skip
}

// due reports whether the call is due at this poll; call it once per poll
// at which the call would be made.
func (b *backoff) due() bool {
	if b.skip > 0 {
		b.skip--
		return false
	}
	return true
}

func (b *backoff) ok() { b.polls, b.skip = 0, 0 }

// fail records a failure and returns the wait before the next attempt.
func (b *backoff) fail() time.Duration {
	limit := max(1, int(maxBackoff/b.interval))
	b.polls = min(max(1, 2*b.polls), limit)
	b.skip = b.polls - 1
	return time.Duration(b.polls) * b.interval
}
