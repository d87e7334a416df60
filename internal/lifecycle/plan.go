package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// FailurePolicy says what a failed step (non-zero exit, timeout, or failure
// to start) does to the rest of the plan.
type FailurePolicy string

// Failure policies. The zero value means FailContinue.
const (
	FailContinue FailurePolicy = "continue" // go on with the next step
	FailAbandon  FailurePolicy = "abandon"  // stop the plan and complete the action with ABANDON
)

// InterruptPolicy says what to do with a step a previous agent started when
// its supervisor died too, without recording an exit status: the step may
// have run partly, fully, or not at all.
type InterruptPolicy string

// Interrupt policies. The zero value means InterruptSkip: a step is never
// started twice for one action unless its configuration says so.
const (
	InterruptSkip  InterruptPolicy = "skip"  // record the step as skipped and go on
	InterruptRerun InterruptPolicy = "rerun" // start the step again
)

// Builtin is the body of a built-in step: work the agent does in its own
// process (wait for readiness, deregister from load balancers and wait
// drained, hand off leadership) rather than a command under a supervisor.
//
// The contract: it returns nil when the work is done, an error when it
// failed (the step then fails, as a command exiting non-zero does), and
// ctx's error soon after ctx ends. It must be idempotent: it is journaled
// like a command step, but nothing of it outlives the agent, so when the
// agent stops (or crashes) while it runs, the next agent runs it again
// from its start. a is the action, with the Seen and Token the journal
// holds.
type Builtin func(ctx context.Context, a Action) error

// Step is one step of a plan: a command (Argv), or a built-in step
// (Builtin), never both.
type Step struct {
	// Name identifies the step within its plan; the journal records progress
	// by name, so it must be unique and stable across agent restarts.
	Name string
	Argv []string
	// Builtin, when set, makes the step a built-in one: it runs in the
	// agent's process, and Argv and Env must be empty.
	Builtin Builtin
	// Timeout bounds the step's run; for a command it is enforced by the
	// StepRunner's supervisor (which outlives the agent), for a built-in
	// step by the context it runs under. 0 means none.
	Timeout time.Duration
	// Env is added to the action's environment (Executor.Env); it wins over
	// it for the same name.
	Env       map[string]string
	OnFailure FailurePolicy
	// OnInterrupt applies to commands only: a built-in step is always run
	// again after an interruption.
	OnInterrupt InterruptPolicy
}

// failed reports whether outcome counts as a failure of the step.
func (o StepOutcome) failed() bool { return o.ExitCode != 0 || o.TimedOut }

// Plan is what the agent does for one lifecycle action.
type Plan struct {
	Steps []Step
	// Result is sent when every step succeeded or failed with FailContinue;
	// "" means CONTINUE.
	Result Result
	// HeartbeatInterval overrides the interval between heartbeats; 0 means
	// the hook's HeartbeatTimeout/2 (see HeartbeatInterval).
	HeartbeatInterval time.Duration
}

// result returns the result to send when no step abandoned the plan.
func (p Plan) result() Result {
	if p.Result == "" {
		return Continue
	}
	return p.Result
}

// Validate checks the plan: a known result, a non-negative heartbeat
// interval, and steps with unique non-empty names, a command or a built-in
// body (not both), a non-negative timeout and known policies.
func (p Plan) Validate() error {
	var errs []error
	if p.Result != "" && !p.Result.Valid() {
		errs = append(errs, fmt.Errorf("plan result %q is neither %s nor %s", p.Result, Continue, Abandon))
	}
	if p.HeartbeatInterval < 0 {
		errs = append(errs, fmt.Errorf("plan heartbeat interval %v is negative", p.HeartbeatInterval))
	}
	seen := make(map[string]bool, len(p.Steps))
	for i, s := range p.Steps {
		what := fmt.Sprintf("step %d (%q)", i+1, s.Name)
		switch {
		case s.Name == "":
			errs = append(errs, fmt.Errorf("step %d has no name", i+1))
		case seen[s.Name]:
			errs = append(errs, fmt.Errorf("%s: name used twice; step names must be unique", what))
		}
		seen[s.Name] = true
		switch {
		case s.Builtin != nil && (len(s.Argv) > 0 || len(s.Env) > 0):
			errs = append(errs, fmt.Errorf("%s is built in and also has a command or environment; give it one or the other", what))
		case s.Builtin == nil && (len(s.Argv) == 0 || s.Argv[0] == ""):
			errs = append(errs, fmt.Errorf("%s has no command", what))
		}
		if s.Timeout < 0 {
			errs = append(errs, fmt.Errorf("%s: timeout %v is negative", what, s.Timeout))
		}
		switch s.OnFailure {
		case "", FailContinue, FailAbandon:
		default:
			errs = append(errs, fmt.Errorf("%s: on_failure %q is neither %s nor %s", what, s.OnFailure, FailContinue, FailAbandon))
		}
		switch s.OnInterrupt {
		case "", InterruptSkip, InterruptRerun:
		default:
			errs = append(errs, fmt.Errorf("%s: on_interrupt %q is neither %s nor %s", what, s.OnInterrupt, InterruptRerun, InterruptSkip))
		}
	}
	return errors.Join(errs...)
}
