package agent

import (
	"context"
	"errors"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// confirm closes the terminate actions' confirmed channel.
func (l *loop) confirm(why string) {
	l.log.Info("terminate lifecycle action confirmed", keyDetail, why)
	l.term.closed = true
	close(l.term.confirmed)
	l.a.update(func(s *snapshot) { s.Confirmed = true })
}

// startTerminate starts the terminate plan for each of hooks, or, when
// there is none, once under NoHook with nothing to complete; unverified
// says only queue messages told of the actions.
func (l *loop) startTerminate(reason lifecycle.Reason, hooks []lifecycle.Hook, unverified bool) {
	t := &termination{reason: reason, confirmed: make(chan struct{})}
	l.term = t
	now := time.Now()
	l.log.Info("terminate transition seen", keyReason, string(reason), "hook_count", len(hooks))
	exec := l.a.exec
	if len(hooks) == 0 {
		switch {
		case l.group == "":
			l.log.Warn("terminate plan runs with no lifecycle action: the instance's group is not known", keyReason, string(reason))
		case l.a.cfg.Terminate.Hook != "":
			l.log.Warn("terminate hook not found on the group; the plan runs with nothing to complete", keyHook, l.a.cfg.Terminate.Hook)
		default:
			l.log.Info("the group has no terminate hook; the plan runs with nothing to complete")
		}
		hooks = []lifecycle.Hook{{Name: NoHook, Transition: lifecycle.TransitionTerminating, HeartbeatTimeout: noHookHeartbeatTimeout, DefaultResult: lifecycle.Continue}}
		exec = l.a.noHook
		t.closed = true
		close(t.confirmed)
	}
	plan := l.a.plan
	if exec == l.a.noHook {
		plan.HeartbeatInterval = 0
	}
	for _, h := range hooks {
		act := lifecycle.Action{InstanceID: l.instanceID, Group: l.group, Hook: h, Seen: now, Reason: reason, Unverified: unverified && exec != l.a.noHook}
		act.Token = l.token(act.Key())
		if l.handled[act.Key()] {
			continue
		}
		l.handled[act.Key()] = true
		st := l.a.track(act, plan, phaseRunning)
		t.actions = append(t.actions, st)
		l.wg.Go(func() {
			defer l.a.signal()
			l.a.runAction(l.ctx, exec, act, plan, t.confirmed, st, phaseRunning)
		})
	}
	l.a.update(func(s *snapshot) { s.Terminating, s.Reason, s.Confirmed = true, string(reason), t.closed })
}

// finished reports whether Run is done: the termination was completed, or
// after Drain, the plan has run.
func (l *loop) finished() bool {
	if l.gaveUp {
		return true
	}
	if l.term == nil {
		return false
	}
	for _, st := range l.term.actions {
		l.a.mu.Lock()
		done := st.done
		l.a.mu.Unlock()
		if done {
			continue
		}
		if !l.draining || l.term.closed || !l.a.planRan(st) {
			return false
		}
	}
	if l.draining {
		l.log.Info("drain done: the terminate plan has run")
	} else {
		l.log.Info("termination completed")
	}
	return true
}

// planRan reports whether the journal shows that st's plan has run.
func (a *Agent) planRan(st *actionState) bool {
	pr, ok, err := a.journal.Progress(st.key, st.plan)
	return err == nil && ok && pr.Ended
}

// runAction runs e for act until the action is completed or gone, ctx
// ends, or its deadline passes, running the Executor again after an error
// (it resumes from the journal). phase is st's phase while the Executor
// runs.
func (a *Agent) runAction(ctx context.Context, e *lifecycle.Executor, act lifecycle.Action, plan lifecycle.Plan, confirmed <-chan struct{}, st *actionState, phase string) {
	log := a.log.With(keyInstance, act.InstanceID, keyGroup, act.Group, keyHook, act.Hook.Name, keyTransition, string(act.Hook.Transition))
	if act.Hook.Name != NoHook {
		inProgress := a.metrics.inProgress.WithLabelValues(transitionLabel(act.Hook.Transition))
		inProgress.Inc()
		defer inProgress.Dec()
	}
	wait := actionRetry
	for {
		a.setPhase(st, phase, "")
		r, err := e.Run(ctx, act, plan, confirmed)
		switch {
		case err == nil:
			a.finish(st, phaseCompleted, r, "")
			return
		case errors.Is(err, lifecycle.ErrNoActiveAction):
			log.Warn("lifecycle action no longer active", keyErr, err, keyResult, string(r))
			a.finish(st, phaseGone, r, err.Error())
			return
		case ctx.Err() != nil:
			return
		}
		if deadline := a.deadline(act); !time.Now().Add(wait).Before(deadline) {
			log.Error("lifecycle action failed; giving up at its deadline", keyErr, err, keyDeadline, deadline)
			a.finish(st, phaseFailed, "", err.Error())
			return
		}
		log.Error("lifecycle action failed; running it again", keyErr, err, keyRetryIn, wait)
		a.setPhase(st, phaseRetrying, err.Error())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, maxBackoff)
	}
}

// deadline returns act's deadline, counted from its journaled Seen.
func (a *Agent) deadline(act lifecycle.Action) time.Time {
	if pr, ok, err := a.journal.Progress(act.Key(), lifecycle.Plan{}); err == nil && ok {
		act.Seen = pr.Seen
	}
	return lifecycle.Deadline(act)
}

// stepEnv is the Executor's Env: the LIFEGUARD_* variables of step s of
// act, computed as s starts.
//
// LIFEGUARD_HOOK names the hook once a lifecycle action is known: the
// plan started for a lifecycle action (reason lifecycle-hook), or Auto
// Scaling confirmed it before s starts. It is empty while none is (a spot
// notice or SIGTERM ahead of Auto Scaling) and for NoHook actions.
//
// LIFEGUARD_DEADLINE is the earliest of when s will be stopped (now plus
// its timeout), the action's deadline (lifecycle.Deadline, when the action
// is known) and the spot reclaim time (when a spot notice was seen); empty
// when none applies.
func (a *Agent) stepEnv(act lifecycle.Action, s lifecycle.Step) []string {
	a.mu.Lock()
	spot, confirmed := a.spot, a.snap.Confirmed
	a.mu.Unlock()
	hook := ""
	known := act.Hook.Name != NoHook && (act.Reason == lifecycle.ReasonLifecycleHook || confirmed)
	if known {
		hook = act.Hook.Name
	}
	var deadline time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (deadline.IsZero() || t.Before(deadline)) {
			deadline = t
		}
	}
	if s.Timeout > 0 {
		earliest(time.Now().Add(s.Timeout))
	}
	if known {
		earliest(lifecycle.Deadline(act))
	}
	if spot != nil {
		earliest(spot.Time)
	}
	d := ""
	if !deadline.IsZero() {
		d = deadline.UTC().Format(time.RFC3339)
	}
	return []string{
		"LIFEGUARD_INSTANCE_ID=" + act.InstanceID,
		"LIFEGUARD_GROUP=" + act.Group,
		"LIFEGUARD_HOOK=" + hook,
		"LIFEGUARD_TRANSITION=" + string(act.Hook.Transition),
		"LIFEGUARD_LIFECYCLE_TOKEN=" + act.Token,
		"LIFEGUARD_DEADLINE=" + d,
		"LIFEGUARD_NOTIFICATION_METADATA=" + act.Hook.NotificationMetadata,
		"LIFEGUARD_REASON=" + string(act.Reason),
	}
}
