package lifecycletest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// Behavior is what a step does when the fake StepRunner starts it.
type Behavior struct {
	Duration time.Duration // how long it runs (simulated time under synctest)
	ExitCode int
	TimedOut bool
	StartErr error // when set, Start fails with it and nothing runs
}

// Supervisor describes a supervisor a previous agent left behind, for
// StepRunner.Supervise.
type Supervisor struct {
	// Dead says the supervisor died without recording an exit status: Adopt
	// reports the step not adoptable.
	Dead bool
	// Remaining is how much longer the step runs; 0 means it has ended and
	// its supervisor recorded ExitCode and TimedOut.
	Remaining time.Duration
	ExitCode  int
	TimedOut  bool
}

// StepCall is one call to a fake StepRunner.
type StepCall struct {
	Op  string // "start" or "adopt" (and "prepare", "release": PreparingStepRunner)
	At  time.Time
	ID  lifecycle.StepID
	Env []string // for "start"
}

// StepRunner is a fake lifecycle.StepRunner. Its supervisors outlive the
// executor that started them, as real ones outlive an agent: share one
// StepRunner between the Executors of a simulated restart. Steps take
// simulated time, so use it inside a synctest bubble.
//
// Starting a step not listed in Steps, starting a step whose supervisor is
// alive or has recorded an exit status (a second start), or adopting a step
// it never heard of fails the test (through T). Safe for concurrent use.
type StepRunner struct {
	T testing.TB
	// Steps says what each step does, by step name.
	Steps map[string]Behavior

	mu    sync.Mutex
	procs map[lifecycle.StepID]*proc
	calls []StepCall
}

var _ lifecycle.StepRunner = (*StepRunner)(nil)

// proc is one step under its fake supervisor.
type proc struct {
	end  time.Time
	out  lifecycle.StepOutcome
	dead bool
}

// Wait blocks until the step's end or ctx's.
func (p *proc) Wait(ctx context.Context) (lifecycle.StepOutcome, error) {
	if d := time.Until(p.end); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return lifecycle.StepOutcome{}, ctx.Err()
		case <-t.C:
		}
	}
	return p.out, nil
}

// Supervise records that a previous agent started id under a supervisor in
// state s.
func (r *StepRunner) Supervise(id lifecycle.StepID, s Supervisor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.procsLocked()[id] = &proc{
		end:  time.Now().Add(s.Remaining),
		out:  lifecycle.StepOutcome{ExitCode: s.ExitCode, TimedOut: s.TimedOut},
		dead: s.Dead,
	}
}

func (r *StepRunner) procsLocked() map[lifecycle.StepID]*proc {
	if r.procs == nil {
		r.procs = make(map[lifecycle.StepID]*proc)
	}
	return r.procs
}

// Start starts the step as its Behavior says.
func (r *StepRunner) Start(_ context.Context, id lifecycle.StepID, s lifecycle.Step, env []string) (lifecycle.StepHandle, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, StepCall{Op: "start", At: time.Now(), ID: id, Env: slices.Clone(env)})
	b, ok := r.Steps[s.Name]
	if !ok {
		r.T.Errorf("unexpected Start of step %q (%v)", s.Name, id)
		return nil, errUnexpected
	}
	if id.Step != s.Name {
		r.T.Errorf("Start(%v) of step %q: the id names another step", id, s.Name)
	}
	if p, ok := r.procsLocked()[id]; ok && !p.dead {
		r.T.Errorf("step %v started twice (its supervisor runs or has recorded an exit status)", id)
		return nil, fmt.Errorf("step %v: %w", id, errUnexpected)
	}
	if b.StartErr != nil {
		return nil, b.StartErr
	}
	p := &proc{end: time.Now().Add(b.Duration), out: lifecycle.StepOutcome{ExitCode: b.ExitCode, TimedOut: b.TimedOut}}
	r.procs[id] = p
	return p, nil
}

// Adopt reattaches to a step started earlier (by Start or Supervise).
func (r *StepRunner) Adopt(_ context.Context, id lifecycle.StepID) (lifecycle.StepHandle, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, StepCall{Op: "adopt", At: time.Now(), ID: id})
	p, ok := r.procsLocked()[id]
	switch {
	case !ok:
		r.T.Errorf("unexpected Adopt of step %v: it was never started", id)
		return nil, false, errUnexpected
	case p.dead:
		return nil, false, nil
	}
	return p, true, nil
}

// Calls returns every call so far, in order.
func (r *StepRunner) Calls() []StepCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Started returns the names of the steps started so far, in order.
func (r *StepRunner) Started() []string { return r.names("start") }

// Adopted returns the names of the steps adopted (or found not adoptable)
// so far, in order.
func (r *StepRunner) Adopted() []string { return r.names("adopt") }

func (r *StepRunner) names(op string) []string {
	var out []string
	for _, c := range r.Calls() {
		if c.Op == op {
			out = append(out, c.ID.Step)
		}
	}
	return out
}

// Running reports whether step id has a live supervisor whose step has not
// ended yet.
func (r *StepRunner) Running(id lifecycle.StepID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.procs[id]
	return ok && !p.dead && time.Now().Before(p.end)
}

// PreparingStepRunner is a StepRunner that also prepares steps
// (lifecycle.StepPreparer). A prepared step runs only once Go is called;
// until then, and for good once released or dropped (its agent died),
// Adopt reports it not adoptable and Start may start it. Prepare calls
// are listed as "prepare", Go as "start", Release as "release".
type PreparingStepRunner struct {
	*StepRunner
	// BeforeGo, when set, is called by Go before the step starts; an
	// error makes Go fail with it, without starting the step (a crash
	// between the journal write and the start when ctx ended).
	BeforeGo func(ctx context.Context, id lifecycle.StepID) error
}

var _ lifecycle.StepPreparer = PreparingStepRunner{}

// Prepare prepares the step.
func (r PreparingStepRunner) Prepare(_ context.Context, id lifecycle.StepID, s lifecycle.Step, env []string) (lifecycle.PreparedStep, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, StepCall{Op: "prepare", At: time.Now(), ID: id, Env: slices.Clone(env)})
	if p, ok := r.procsLocked()[id]; ok && !p.dead {
		r.T.Errorf("step %v prepared while its supervisor runs or has recorded an exit status", id)
		return nil, fmt.Errorf("step %v: %w", id, errUnexpected)
	}
	// Adopt finds a supervisor that has run nothing: not adoptable.
	r.procs[id] = &proc{dead: true}
	return &prepared{r: r, id: id, s: s, env: env}, nil
}

// Prepared returns the names of the steps prepared so far, in order.
func (r *StepRunner) Prepared() []string { return r.names("prepare") }

type prepared struct {
	r   PreparingStepRunner
	id  lifecycle.StepID
	s   lifecycle.Step
	env []string

	mu   sync.Mutex
	used bool
}

func (p *prepared) use() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	used := p.used
	p.used = true
	return !used
}

// Go starts the prepared step, as Start.
func (p *prepared) Go(ctx context.Context) (lifecycle.StepHandle, error) {
	if !p.use() {
		p.r.T.Errorf("Go of step %v after Go or Release", p.id)
		return nil, errUnexpected
	}
	if p.r.BeforeGo != nil {
		if err := p.r.BeforeGo(ctx, p.id); err != nil {
			return nil, err
		}
	}
	return p.r.Start(ctx, p.id, p.s, p.env)
}

// Release gives the step up; it never runs. Listed as "release".
func (p *prepared) Release() {
	if !p.use() {
		return
	}
	p.r.mu.Lock()
	defer p.r.mu.Unlock()
	p.r.calls = append(p.r.calls, StepCall{Op: "release", At: time.Now(), ID: p.id})
}
