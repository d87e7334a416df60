package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// probesStep names the launch plan's built-in step that waits for the
// readiness probes.
const probesStep = "readiness-probes"

// launchPlan returns the plan of one launch's actions: its readiness
// checks, in order, as built-in steps that abandon the plan when they
// fail, so that the Executor journals, heartbeats, resumes and completes a
// launch exactly as it does a termination: the probes, then, with the
// traffic section on, registration and health in the load balancers
// (RegisterStep). With none the plan has no step, and the Executor
// completes CONTINUE at once.
func (a *Agent) launchPlan(r *readiness) lifecycle.Plan {
	p := lifecycle.Plan{Result: lifecycle.Continue}
	if len(a.probes) > 0 {
		p.Steps = append(p.Steps, lifecycle.Step{Name: probesStep, Builtin: r.check, OnFailure: lifecycle.FailAbandon})
	}
	if a.traffic != nil {
		p.Steps = append(p.Steps, a.traffic.registerStep())
	}
	return p
}

// launch runs the Executor with plan (launchPlan(r)) for each of one
// launch's actions, concurrently, and returns when each is completed or
// gone, or ctx ends, and r's probing has stopped.
func (a *Agent) launch(ctx context.Context, log *slog.Logger, r *readiness, plan lifecycle.Plan, states []*actionState) {
	if len(plan.Steps) == 0 {
		log.Info("launch ready: no probes or traffic configured", keyResult, string(lifecycle.Continue))
	}
	closed := make(chan struct{})
	close(closed) // Pending:Wait was observed: the actions exist
	var wg sync.WaitGroup
	for _, st := range states {
		act := a.actionOf(st)
		wg.Go(func() { a.runAction(ctx, a.exec, act, plan, closed, st, phaseProbing) })
	}
	wg.Wait()
	r.wait()
}

// readiness runs one launch's readiness probes once for all its actions:
// the built-in step of each action's plan (check) joins the run under way,
// or starts one, and waits for its verdict. A run stops when every action
// waiting for it has stopped waiting (Auto Scaling no longer has them, or
// the agent stops); the next check starts afresh. launch.timeout counts
// from the earliest first sighting (Seen, as journaled) of the actions.
type readiness struct {
	a      *Agent
	log    *slog.Logger
	states []*actionState

	wg      sync.WaitGroup // the runs
	mu      sync.Mutex
	start   time.Time
	waiting int
	cur     *probeRun
}

// probeRun is one run of the probes.
type probeRun struct {
	done     chan struct{}
	cancel   context.CancelFunc
	canceled bool  // nobody waits for it any more; guarded by readiness.mu
	err      error // the verdict; set before done is closed
}

// check is the probes' lifecycle.Builtin: nil when the instance is ready
// (or launch.timeout passed with on_timeout continue), an error when it
// timed out with on_timeout abandon or a probe failed fatally with
// on_fatal abandon. It is idempotent: run again, it probes afresh.
func (r *readiness) check(ctx context.Context, act lifecycle.Action) error {
	r.mu.Lock()
	if r.start.IsZero() || act.Seen.Before(r.start) {
		r.start = act.Seen
	}
	run := r.cur
	if run == nil || run.canceled {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		run = &probeRun{done: make(chan struct{}), cancel: cancel}
		r.cur = run
		r.wg.Go(func() {
			defer cancel()
			run.err = r.probe(rctx)
			close(run.done)
		})
	}
	r.waiting++
	r.mu.Unlock()
	select {
	case <-run.done:
		r.mu.Lock()
		r.waiting--
		r.mu.Unlock()
		return run.err
	case <-ctx.Done():
		r.mu.Lock()
		if r.waiting--; r.waiting == 0 {
			run.canceled = true
			run.cancel()
		}
		r.mu.Unlock()
		return ctx.Err()
	}
}

// wait waits for the runs to return; call it once no check runs.
func (r *readiness) wait() { r.wg.Wait() }

// deadline is when launch.timeout passes.
func (r *readiness) deadline() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.start.Add(time.Duration(r.a.cfg.Launch.Timeout))
}

// probe runs rounds of every probe, a launch.interval apart (start to
// start), until launch.consecutive_passes rounds in a row pass (nil),
// launch.timeout passes (nil with on_timeout continue, else an error), or
// a probe fails fatally with launch.on_fatal abandon (an error). A round is
// cut short at the timeout. It returns ctx's error when ctx ends first.
func (r *readiness) probe(ctx context.Context) error {
	a, log := r.a, r.log
	cfg := a.cfg.Launch
	interval := time.Duration(cfg.Interval)
	passes := 0
	last := make([]string, len(a.probes)) // last failure of each probe; "" = passed or never ran
	ran := false
	next := time.Now()
	for {
		now, deadline := time.Now(), r.deadline()
		if !now.Before(deadline) {
			res := lifecycle.Abandon
			if cfg.OnTimeout == config.TimeoutContinue {
				res = lifecycle.Continue
			}
			log.Warn("launch readiness timed out", "timeout", time.Duration(cfg.Timeout).String(), keyPasses, passes, keyResult, string(res))
			if res == lifecycle.Continue {
				return nil
			}
			return fmt.Errorf("launch readiness timed out after %v (%d passing rounds in a row)", time.Duration(cfg.Timeout), passes)
		}
		if wait := next.Sub(now); wait > 0 {
			t := time.NewTimer(min(wait, deadline.Sub(now)))
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			continue
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		results := a.round(rctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
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
			return fmt.Errorf("launch readiness failed fatally: %s", fatal)
		}
		if pass {
			passes++
		} else {
			passes = 0
		}
		a.mu.Lock()
		for _, st := range r.states {
			st.passes = passes
		}
		a.mu.Unlock()
		if passes >= cfg.ConsecutivePasses {
			log.Info("launch ready", keyPasses, passes, keyResult, string(lifecycle.Continue))
			return nil
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
