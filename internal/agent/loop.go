package agent

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// spotPollInterval is how often a spot instance reads its interruption
// notice, at the poll after the interval has passed, besides at start and
// whenever the target lifecycle state changes. The notice comes two
// minutes before the reclaim, so this leaves the plan at least a minute of
// it, and Auto Scaling, which starts terminating the instance on the
// notice, turns its target state at once; reading the notice at every poll
// would double the idle agent's metadata calls for nothing. An instance
// whose instance-life-cycle says it is not a spot instance (on-demand,
// scheduled, capacity-block) gets no notice: it reads it only at start and
// when its target state changes.
const spotPollInterval = time.Minute

// sqsMetadataEvery is how many poll intervals apart an agent of source
// sqs reads the instance metadata while it is settled (InService, no
// action, the queue open, not draining): the queue brings every
// transition with its token, and the metadata is its backstop, for a
// subscription gone quiet. With the default 5 s polls that is a read
// every 15 s, a third of an idle agent's metadata calls and of their CPU;
// anything else (a transition under way, a queue that cannot be read)
// has the metadata read at every poll.
const sqsMetadataEvery = 3

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
	spotAt     time.Time // when the spot notice was last read; zero: never
	notSpot    bool      // instance-life-cycle says no spot notice can come
	idRetry    backoff
	mbRetry    backoff
	hkRetry    backoff
	logged     map[string]bool // no-plan states already logged

	handled   map[lifecycle.Key]bool
	launching *launchRun // the launch being handled, nil if none
	launched  bool       // the launch was handled while the instance is Pending
	// launchMessage: a launch message arrived while the instance was not
	// known to be past Pending (source sqs); reset when it leaves them.
	launchMessage bool
	sqs           *sqsLoop // source sqs; nil for source imds
	term          *termination
	draining      bool
	gaveUp        bool // drained before anything could be done
	// quietTicks counts the poll intervals a settled agent of source sqs
	// let pass without reading the metadata (sqsMetadataEvery).
	quietTicks int
}

// termination is the terminate transition being handled.
type termination struct {
	reason    lifecycle.Reason
	confirmed chan struct{}
	closed    bool // confirmed is closed
	actions   []*actionState
	// unverified: only queue messages told of it (decision.unverified).
	unverified bool
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
		// Read once: an instance's purchasing option never changes. When
		// it cannot be read, the notice is polled as for a spot instance.
		if lc, err := a.md.LifeCycle(ctx); err == nil && lc != "" && lc != "spot" {
			l.notSpot = true
		}
		l.log = l.log.With(keyInstance, id)
		l.log.Info("instance identified")
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
		l.spotAt = time.Time{} // a reclaim turns the target state too: learn the reason now
	}

	if l.term == nil && l.spot == nil && (l.spotAt.IsZero() || !l.notSpot && time.Since(l.spotAt) >= spotPollInterval) {
		l.spotAt = time.Now()
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
// the instance is Pending (Pending:Wait may follow), once its launch was
// handled until it has left the Pending states (IMDS's target state is
// InService already in Pending:Wait, so nothing else tells of the move),
// and while a terminate action waits for Terminating:Wait.
func (l *loop) needDescribe() bool {
	pending := l.state == statePending && l.sqs == nil // source sqs: the launch message says Pending:Wait
	settling := l.launched && l.launching == nil && pendingState(l.state) || l.state == statePendingProceed
	return !l.observed || l.describe || pending || settling || (l.term != nil && !l.term.closed)
}

// pendingState reports whether state is one of the launch's states.
func pendingState(state string) bool {
	return state == statePending || state == statePendingWait || state == statePendingProceed
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
	if !pendingState(l.state) && l.launching == nil {
		l.launched, l.launchMessage = false, false
		l.forgetRecords(lifecycle.TransitionLaunching)
	}
	if first && l.term == nil && l.spot == nil && l.target != stateTerminated && !terminating(l.state) {
		l.forgetRecords(lifecycle.TransitionTerminating)
	}
}

func (l *loop) forgetRecords(t lifecycle.Transition) {
	keys, err := l.a.journal.Forget(l.instanceID, t)
	for _, k := range keys {
		delete(l.handled, k)
		l.log.Info("journaled lifecycle action forgotten", keyHook, k.Hook, keyTransition, string(t), keyState, l.state)
	}
	if err != nil {
		l.log.Warn("forget journaled lifecycle actions failed", keyErr, err)
	}
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
	l.a.hookDefs.set(hooks)
	names := make([]string, len(hooks))
	for i, h := range hooks {
		names[i] = h.Name + " (" + transitionLabel(h.Transition) + ")"
	}
	l.log.Info("lifecycle hooks", "hooks", names)
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

// view returns what the loop has observed, for decide.
func (l *loop) view() view {
	v := view{
		now: time.Now(), instanceID: l.instanceID, group: l.group, state: l.state, target: l.target,
		spot: l.spot != nil, draining: l.draining, gaveUp: l.gaveUp,
		terminating: l.term != nil, confirmed: l.term != nil && l.term.closed,
		launching: l.launching != nil, launched: l.launched, launchMessage: l.launchMessage,
		hooks: l.hooks, hooksFresh: l.hooksFresh, hooksKnown: l.hooksOK, hookWait: l.hookWait,
		pollInterval:  time.Duration(l.a.cfg.IMDS.PollInterval),
		launchHook:    l.a.cfg.Launch.Hook,
		terminateHook: l.a.cfg.Terminate.Hook,
	}
	if l.sqs != nil {
		v.messages = slices.Collect(maps.Keys(l.sqs.got))
	}
	return v
}

// step decides and does what the observations call for, until nothing
// more is called for. Hooks read by the poll before it are fresh for this
// step only: a message that arrives later in the poll interval makes a new
// action read them again.
func (l *loop) step() {
	defer func() { l.hooksFresh = false }()
	// Hooks read before the sign started an action: read them again once
	// nothing more is called for, so that the confirmation, which lets the
	// first heartbeat go, does not wait for DescribeLifecycleHooks.
	stale := false
	defer func() {
		if stale {
			l.refreshHooks()
		}
	}()
	l.reapLaunch()
	l.dropUnverified()
	for {
		d := decide(l.view())
		switch d.act {
		case actNone:
			return
		case actGiveUp:
			l.log.Warn("drain requested before the instance id was known; nothing to run")
			l.gaveUp = true
		case actReadHooks:
			if !l.readHooks() {
				return // retried at the next poll
			}
		case actWaitForHook:
			if l.hookWait.IsZero() {
				l.hookWait = time.Now()
				l.log.Info("lifecycle message names a hook DescribeLifecycleHooks did not list; reading the hooks again at the next poll", "hooks", d.missing)
			}
			return
		case actStartTerminate:
			l.started(d)
			l.startTerminate(d.reason, d.hooks, d.unverified)
			l.term.unverified = d.unverified
			stale = stale || d.stale
		case actConfirm:
			l.confirm(d.why)
		case actStartLaunch:
			l.started(d)
			l.startLaunch(d.hooks, d.unverified)
			stale = stale || d.stale
		}
	}
}

// settled reports whether start-up is over: the instance is in service
// (as Auto Scaling said), no action runs, and the queue of source sqs is
// open.
func (l *loop) settled() bool {
	return l.state == "InService" && l.term == nil && l.launching == nil && (l.sqs == nil || l.sqs.q != nil)
}

// pollDue reports whether this poll interval reads the metadata: every
// one, except for a settled agent of source sqs (sqsMetadataEvery).
func (l *loop) pollDue() bool {
	if l.sqs == nil || l.draining || !l.settled() {
		l.quietTicks = 0
		return true
	}
	l.quietTicks++
	if l.quietTicks < sqsMetadataEvery {
		return false
	}
	l.quietTicks = 0
	return true
}

// started notes that an action starts: the next one waits afresh for a
// hook its message names.
func (l *loop) started(d decision) {
	if len(d.missing) > 0 {
		l.log.Warn("lifecycle message names a hook DescribeLifecycleHooks does not list; going on without it", "hooks", d.missing)
	}
	l.hookWait = time.Time{}
}

// readHooks reads the group's hooks again for a new action; when that
// fails it falls back to the hooks read before, if any. It returns false
// when no hooks are known.
func (l *loop) readHooks() bool {
	hooks, err := l.a.asg.Hooks(l.ctx, l.group)
	switch {
	case err == nil:
		l.hkRetry.ok()
		l.setHooks(hooks)
	case l.ctx.Err() == nil:
		l.log.Warn("describe lifecycle hooks failed", keyGroup, l.group, keyErr, err, "cached", l.hooksOK)
	}
	l.hooksFresh = l.hooksOK
	return l.hooksOK
}

// dropUnverified ends a termination only queue messages told of once Auto
// Scaling has turned down the first heartbeat of each of its actions, so
// that none ran a step: the messages were stale or misdirected, and the
// instance is not in Terminating:Wait. Their messages are deleted (the
// actions have ended), their records forgotten, and the agent watches the
// instance on: a real termination later starts afresh.
func (l *loop) dropUnverified() {
	t := l.term
	if t == nil || !t.unverified || l.draining || len(t.actions) == 0 {
		return
	}
	for _, st := range t.actions {
		l.a.mu.Lock()
		done, phase := st.done, st.phase
		l.a.mu.Unlock()
		if !done || phase != phaseGone {
			return
		}
		pr, ok, err := l.a.journal.Progress(st.key, st.plan)
		if err != nil || !ok || pr.Started > 0 {
			return
		}
	}
	l.log.Warn("lifecycle message for a terminate action Auto Scaling does not have; nothing ran, and the agent watches on")
	for _, st := range t.actions {
		delete(l.handled, st.key)
		if l.sqs != nil {
			delete(l.sqs.got, st.key)
			delete(l.sqs.tokens, st.key)
		}
	}
	l.term = nil
	l.forgetRecords(lifecycle.TransitionTerminating)
	l.a.update(func(s *snapshot) { s.Terminating, s.Reason, s.Confirmed = false, "", false })
}

// refreshHooks reads the hooks again after actions started with hooks
// read before their sign: the running actions' heartbeats follow what it
// reads (Agent.hookDefs), and a terminate hook it finds that no action
// runs for yet gets its action.
func (l *loop) refreshHooks() {
	if !l.readHooks() || l.term == nil || len(l.term.actions) == 0 {
		return
	}
	var more []lifecycle.Hook
	for _, h := range l.hooks {
		key := lifecycle.Key{Instance: l.instanceID, Transition: h.Transition, Hook: h.Name}
		if h.Transition == lifecycle.TransitionTerminating && (l.a.cfg.Terminate.Hook == "" || h.Name == l.a.cfg.Terminate.Hook) && !l.handled[key] {
			more = append(more, h)
		}
	}
	if len(more) == 0 {
		return
	}
	l.log.Info("terminate hooks found after the plan started", "hook_count", len(more))
	t, first := l.term, l.a.actionOf(l.term.actions[0])
	for _, h := range more {
		act := lifecycle.Action{InstanceID: l.instanceID, Group: l.group, Hook: h, Seen: first.Seen, Reason: first.Reason, Unverified: first.Unverified}
		act.Token = l.token(act.Key())
		l.handled[act.Key()] = true
		st := l.a.track(act, l.a.plan, phaseRunning)
		t.actions = append(t.actions, st)
		l.wg.Go(func() {
			defer l.a.signal()
			l.a.runAction(l.ctx, l.a.exec, act, l.a.plan, t.confirmed, st, phaseRunning)
		})
	}
}

// hookDefs holds the hooks as last read, for the Executor's heartbeats
// (lifecycle.Executor.Hooks). Safe for concurrent use.
type hookDefs struct {
	mu      sync.Mutex
	hooks   map[lifecycle.Key]lifecycle.Hook // Instance ""
	changed chan struct{}                    // closed and replaced by set
}

// set records hooks as the latest read.
func (d *hookDefs) set(hooks []lifecycle.Hook) {
	m := make(map[lifecycle.Key]lifecycle.Hook, len(hooks))
	for _, h := range hooks {
		m[lifecycle.Key{Transition: h.Transition, Hook: h.Name}] = h
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hooks = m
	if d.changed != nil {
		close(d.changed)
	}
	d.changed = make(chan struct{})
}

// lookup is lifecycle.Executor.Hooks.
func (d *hookDefs) lookup(k lifecycle.Key) (lifecycle.Hook, bool, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.changed == nil {
		d.changed = make(chan struct{})
	}
	h, ok := d.hooks[lifecycle.Key{Transition: k.Transition, Hook: k.Hook}]
	return h, ok, d.changed
}

// startLaunch starts handling the pending launch for hooks; unverified
// says only a message told of it.
func (l *loop) startLaunch(hooks []lifecycle.Hook, unverified bool) {
	l.launched = true
	if len(hooks) == 0 {
		if l.a.cfg.Launch.Hook != "" {
			l.log.Warn("instance is in Pending:Wait but the launch hook is not on the group; nothing to complete", keyHook, l.a.cfg.Launch.Hook)
		} else {
			l.log.Warn("instance is in Pending:Wait but the group has no launch hook; nothing to complete")
		}
		return
	}
	now := time.Now()
	r := &readiness{a: l.a, log: l.log}
	plan := l.a.launchPlan(r)
	var actions []*actionState
	for _, h := range hooks {
		act := lifecycle.Action{InstanceID: l.instanceID, Group: l.group, Hook: h, Seen: now, Reason: lifecycle.ReasonLifecycleHook, Unverified: unverified}
		act.Token = l.token(act.Key())
		if l.handled[act.Key()] {
			continue
		}
		l.handled[act.Key()] = true
		actions = append(actions, l.a.track(act, plan, phaseProbing))
	}
	if len(actions) == 0 {
		return
	}
	r.states = actions
	l.log.Info("launch lifecycle action pending", "hook_count", len(actions), "probe_count", len(l.a.probes))
	run := &launchRun{}
	l.launching = run
	l.wg.Go(func() {
		defer l.a.signal()
		defer func() {
			l.a.mu.Lock()
			run.done = true
			l.a.mu.Unlock()
		}()
		l.a.launch(l.ctx, l.log, r, plan, actions)
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
