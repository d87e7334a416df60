package agent

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// launch handles the pending launch actions: it journals them, waits for
// readiness while heartbeating them, then has the Executor complete each
// with the decided result (a plan of no steps). It returns when every
// action is completed or gone, or ctx ends.
//
// Probing is not a step of the plan: steps run under supervisors outside
// the agent and are never rerun, while probes are cheap checks the agent
// repeats. So the agent heartbeats the actions itself while probing, and
// runs the Executor only once the result is known; the journal record
// written before probing keeps the first sighting (Seen), so launch.timeout
// and the action's deadline do not restart with the agent.
func (a *Agent) launch(ctx context.Context, log *slog.Logger, states []*actionState) {
	var probing []*actionState
	for _, st := range states {
		rec, ok, err := a.journal.Load(st.key)
		switch {
		case err != nil:
			// The Executor reports the journal's error; probe meanwhile.
			log.Warn("read journaled launch action failed", keyHook, st.key.Hook, keyErr, err)
			probing = append(probing, st)
		case ok && (rec.Completed || rec.Completing != ""):
			// Decided by an earlier agent: the Executor completes it with
			// the journaled result, or reports it done, without probing.
			log.Info("launch lifecycle action already decided", keyHook, st.key.Hook, keyResult, string(rec.Completing))
		case ok:
			a.mu.Lock()
			st.action.Seen = rec.Seen
			a.mu.Unlock()
			probing = append(probing, st)
		default:
			act := a.actionOf(st)
			if err := a.journal.Save(lifecycle.Record{Key: st.key, ID: rand.Text(), Seen: act.Seen}); err != nil {
				log.Warn("journal launch action failed", keyHook, st.key.Hook, keyErr, err)
			}
			probing = append(probing, st)
		}
	}

	result := lifecycle.Continue
	if len(probing) > 0 {
		var ok bool
		if result, ok = a.ready(ctx, log, probing); !ok {
			return
		}
	}

	closed := make(chan struct{})
	close(closed) // Pending:Wait was observed: the actions exist
	var wg sync.WaitGroup
	for _, st := range states {
		a.mu.Lock()
		done := st.done
		a.mu.Unlock()
		if done {
			continue // gone while probing
		}
		act := a.actionOf(st)
		wg.Go(func() { a.runAction(ctx, a.exec, act, lifecycle.Plan{Result: result}, closed, st) })
	}
	wg.Wait()
}

// ready probes until the instance is ready, the launch timeout passes or a
// probe fails fatally, heartbeating the actions meanwhile. ok is false when
// ctx ended or Auto Scaling no longer has any of the actions.
func (a *Agent) ready(ctx context.Context, log *slog.Logger, states []*actionState) (r lifecycle.Result, ok bool) {
	start := a.actionOf(states[0]).Seen
	for _, st := range states[1:] {
		if seen := a.actionOf(st).Seen; seen.Before(start) {
			start = seen
		}
	}
	if len(a.probes) == 0 {
		log.Info("launch ready: no probes configured", keyResult, string(lifecycle.Continue))
		return lifecycle.Continue, true
	}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		wg    sync.WaitGroup
		alive atomic.Int32
	)
	alive.Store(int32(len(states)))
	for _, st := range states {
		act := a.actionOf(st)
		wg.Go(func() {
			err := a.keepAlive(pctx, log, act)
			if err == nil {
				return
			}
			log.Warn("launch lifecycle action no longer active; it will not be completed", keyHook, act.Hook.Name, keyErr, err)
			a.finish(st, phaseGone, "", err.Error())
			if alive.Add(-1) == 0 {
				stop() // nothing left to probe for
			}
		})
	}
	r, ok = a.probe(pctx, log, start, states)
	stop()
	wg.Wait()
	if ctx.Err() != nil || alive.Load() == 0 {
		return "", false
	}
	return r, ok
}

// keepAlive heartbeats act every lifecycle.HeartbeatInterval (the first at
// once: a restarted agent does not know when its predecessor last did),
// retrying a failed heartbeat sooner, until ctx ends or the action's
// deadline. It returns an error wrapping lifecycle.ErrNoActiveAction when
// Auto Scaling no longer has the action, else nil.
func (a *Agent) keepAlive(ctx context.Context, log *slog.Logger, act lifecycle.Action) error {
	interval := lifecycle.HeartbeatInterval(act.Hook, 0)
	deadline := lifecycle.Deadline(act)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if !time.Now().Before(deadline) {
			log.Warn("heartbeats stopped at global timeout", keyHook, act.Hook.Name, keyDeadline, deadline)
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, min(interval, heartbeatCallTimeout))
		err := a.completer.Heartbeat(cctx, act)
		cancel()
		next := interval
		switch {
		case err == nil:
			log.Info("heartbeat sent while probing", keyHook, act.Hook.Name, keyDeadline, deadline)
		case errors.Is(err, lifecycle.ErrNoActiveAction):
			return err
		case ctx.Err() != nil:
			return nil
		default:
			next = max(interval/4, time.Second)
			log.Warn("heartbeat failed", keyHook, act.Hook.Name, keyErr, err, keyRetryIn, next)
		}
		t.Reset(min(next, time.Until(deadline)))
	}
}

// probe runs rounds of every probe, a launch.interval apart (start to
// start), until launch.consecutive_passes rounds in a row pass (CONTINUE),
// launch.timeout after start passes (launch.on_timeout), or a probe fails
// fatally with launch.on_fatal abandon (ABANDON). A round is cut short at
// the timeout. ok is false when ctx ended first.
func (a *Agent) probe(ctx context.Context, log *slog.Logger, start time.Time, states []*actionState) (r lifecycle.Result, ok bool) {
	cfg := a.cfg.Launch
	deadline := start.Add(time.Duration(cfg.Timeout))
	interval := time.Duration(cfg.Interval)
	passes := 0
	last := make([]string, len(a.probes)) // last failure of each probe; "" = passed or never ran
	ran := false
	next := time.Now()
	for {
		now := time.Now()
		if !now.Before(deadline) {
			r := lifecycle.Abandon
			if cfg.OnTimeout == config.TimeoutContinue {
				r = lifecycle.Continue
			}
			log.Warn("launch readiness timed out", "timeout", time.Duration(cfg.Timeout), keyPasses, passes, keyResult, string(r))
			return r, true
		}
		if wait := next.Sub(now); wait > 0 {
			t := time.NewTimer(min(wait, deadline.Sub(now)))
			select {
			case <-ctx.Done():
				t.Stop()
				return "", false
			case <-t.C:
			}
			continue
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		results := a.round(rctx)
		cancel()
		if ctx.Err() != nil {
			return "", false
		}
		pass, fatal := true, ""
		for i, res := range results {
			name := a.probes[i].name
			a.metrics.probes.WithLabelValues(name, res.result).Inc()
			if res.result != resultPass {
				pass = false
				if res.result == resultFatal && fatal == "" {
					fatal = name + ": " + res.detail
				}
			}
			switch {
			case res.result != resultPass && res.detail != last[i]:
				log.Info("probe failed", keyProbe, name, keyResult, res.result, keyDetail, res.detail)
			case res.result == resultPass && (last[i] != "" || !ran):
				log.Info("probe passed", keyProbe, name)
			}
			last[i] = res.detail
		}
		ran = true
		if fatal != "" && cfg.OnFatal == config.FatalAbandon {
			log.Warn("launch readiness failed fatally", keyDetail, fatal, keyResult, string(lifecycle.Abandon))
			return lifecycle.Abandon, true
		}
		if pass {
			passes++
		} else {
			passes = 0
		}
		a.mu.Lock()
		for _, st := range states {
			st.passes = passes
		}
		a.mu.Unlock()
		if passes >= cfg.ConsecutivePasses {
			log.Info("launch ready", keyPasses, passes, keyResult, string(lifecycle.Continue))
			return lifecycle.Continue, true
		}
		next = now.Add(interval)
	}
}

// round checks every probe once, concurrently.
func (a *Agent) round(ctx context.Context) []probeResult {
	results := make([]probeResult, len(a.probes))
	var wg sync.WaitGroup
	for i, p := range a.probes {
		wg.Go(func() { results[i] = p.check(ctx) })
	}
	wg.Wait()
	return results
}
