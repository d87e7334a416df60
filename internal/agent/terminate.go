package agent

import (
	"context"
	"errors"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// terminateSign returns the first sign of termination, if there is one.
// Signs from IMDS and Auto Scaling wait until the group is known; a drain
// does not (its plan then runs with no hook).
func (l *loop) terminateSign() (lifecycle.Reason, bool) {
	switch {
	// A spot notice comes first: Auto Scaling starts terminating the
	// instance as soon as the notice is posted, so one poll sees both, and
	// the steps must learn the reason and the reclaim deadline.
	case l.group != "" && l.spot != nil:
		return lifecycle.ReasonSpotInterruption, true
	case l.group != "" && (l.target == stateTerminated || terminating(l.state)), l.messageTerminating():
		return lifecycle.ReasonLifecycleHook, true
	case l.draining:
		return lifecycle.ReasonSIGTERM, true
	}
	return "", false
}

// confirm closes the terminate actions' confirmed channel.
func (l *loop) confirm(why string) {
	l.log.Info("terminate lifecycle action confirmed", keyDetail, why)
	l.term.closed = true
	close(l.term.confirmed)
	l.a.update(func(s *snapshot) { s.Confirmed = true })
}

// startTerminate starts the terminate plan for every matching hook.
func (l *loop) startTerminate(reason lifecycle.Reason) {
	var hooks []lifecycle.Hook
	if l.group != "" {
		if !l.refreshHooks() || !l.hooksListed(lifecycle.TransitionTerminating) {
			return // retried at the next poll
		}
		hooks = l.matching(lifecycle.TransitionTerminating, l.a.cfg.Terminate.Hook)
	}
	t := &termination{reason: reason, confirmed: make(chan struct{})}
	l.term = t
	now := time.Now()
	l.log.Info("terminate transition seen", keyReason, string(reason), "hooks", len(hooks))
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
		act := lifecycle.Action{InstanceID: l.instanceID, Group: l.group, Hook: h, Seen: now, Reason: reason}
		act.Token = l.token(act.Key())
		if l.handled[act.Key()] {
			continue
		}
		l.handled[act.Key()] = true
		st := l.a.track(act, plan, phaseRunning)
		t.actions = append(t.actions, st)
		l.wg.Go(func() {
			defer l.a.signal()
			l.a.runAction(l.ctx, exec, act, plan, t.confirmed, st)
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

// planRan reports whether the journal shows st's plan ended: every step
// done, a failed step with on_failure abandon, or a result decided.
func (a *Agent) planRan(st *actionState) bool {
	rec, ok, err := a.journal.Load(st.key)
	if err != nil || !ok {
		return false
	}
	if rec.Completing != "" || rec.Completed {
		return true
	}
	for _, s := range st.plan.Steps {
		i := stepIndex(rec, s.Name)
		if i < 0 {
			return false
		}
		switch sr := rec.Steps[i]; sr.State {
		case lifecycle.StepSkipped:
		case lifecycle.StepFinished:
			if s.OnFailure == lifecycle.FailAbandon && (sr.ExitCode != 0 || sr.TimedOut || sr.Error != "") {
				return true
			}
		default:
			return false
		}
	}
	return true
}

func stepIndex(rec lifecycle.Record, name string) int {
	for i, s := range rec.Steps {
		if s.Name == name {
			return i
		}
	}
	return -1
}

// runAction runs e for act until the action is completed or gone, ctx
// ends, or its deadline passes, running the Executor again after an error
// (it resumes from the journal).
func (a *Agent) runAction(ctx context.Context, e *lifecycle.Executor, act lifecycle.Action, plan lifecycle.Plan, confirmed <-chan struct{}, st *actionState) {
	log := a.log.With(keyInstance, act.InstanceID, keyGroup, act.Group, keyHook, act.Hook.Name, keyTransition, string(act.Hook.Transition))
	wait := actionRetry
	for {
		a.setPhase(st, phaseRunning, "")
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
	if rec, ok, err := a.journal.Load(act.Key()); err == nil && ok {
		act.Seen = rec.Seen
	}
	return lifecycle.Deadline(act)
}

// stepEnv is the Executor's Env: the LIFEGUARD_* variables of act's steps.
// LIFEGUARD_DEADLINE is lifecycle.Deadline(act), or the spot interruption
// time when the reason is a spot notice and that comes first; it is empty
// for a NoHook action not interrupted by spot, and LIFEGUARD_HOOK is empty
// for NoHook actions.
func (a *Agent) stepEnv(act lifecycle.Action) []string {
	hook, deadline := act.Hook.Name, lifecycle.Deadline(act)
	if hook == NoHook {
		hook, deadline = "", time.Time{}
	}
	a.mu.Lock()
	spot := a.spot
	a.mu.Unlock()
	if act.Reason == lifecycle.ReasonSpotInterruption && spot != nil && !spot.Time.IsZero() && (deadline.IsZero() || spot.Time.Before(deadline)) {
		deadline = spot.Time
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
