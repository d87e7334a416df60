package lifecycle

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Completer is the subset of Auto Scaling the Executor needs. It is
// implemented by internal/awscloud; both methods return an error wrapping
// ErrNoActiveAction when Auto Scaling has no such pending action.
type Completer interface {
	// Heartbeat records a heartbeat for a (RecordLifecycleActionHeartbeat),
	// by token, or by instance id when a.Token is "".
	Heartbeat(ctx context.Context, a Action) error
	// Complete completes a with r (CompleteLifecycleAction).
	Complete(ctx context.Context, a Action, r Result) error
}

// StepRunner starts steps under supervisors that outlive the agent and
// record each step's exit status (implemented by internal/jobs). A step's
// supervisor, not the agent, owns its process group: it enforces
// Step.Timeout, and the agent never kills a step.
type StepRunner interface {
	// Start starts s as the step id with env added to its environment (the
	// later of two entries with the same name wins). ctx bounds the call,
	// not the step. An error means the step did not start. Start may be
	// called again for an id that Adopt found not adoptable
	// (InterruptRerun).
	Start(ctx context.Context, id StepID, s Step, env []string) (StepHandle, error)
	// Adopt reattaches to a step a previous agent started: (handle, true,
	// nil) while its supervisor runs or once it has recorded an exit
	// status; (nil, false, nil) when no supervisor runs and none recorded a
	// status (it died, or the step never started).
	Adopt(ctx context.Context, id StepID) (StepHandle, bool, error)
}

// StepPreparer is implemented by a StepRunner that can do the slow part of
// starting a step (starting its supervisor) ahead of the step itself. The
// Executor prepares a step while it sends the action's first heartbeat and
// journals it started, and starts it (PreparedStep.Go) only once the
// journal records it started: a step is never run before that record is
// durable.
type StepPreparer interface {
	// Prepare does what Start does for s, but run it. An error means
	// nothing was prepared; the Executor then calls Start. ctx bounds the
	// call.
	Prepare(ctx context.Context, id StepID, s Step, env []string) (PreparedStep, error)
}

// PreparedStep is a step prepared by a StepPreparer, which runs only once
// Go is called. A step prepared but never started (Release, or the agent
// died first) never runs: Adopt then reports it not adoptable, and Start
// may start it anew, as after a crash between the journal write and Start.
type PreparedStep interface {
	// Go starts the step, as StepRunner.Start would.
	Go(ctx context.Context) (StepHandle, error)
	// Release gives the step up without running it; after Go it does
	// nothing.
	Release()
}

// StepHandle is a started or adopted step.
type StepHandle interface {
	// Wait blocks until the step ends (exit, timeout or kill) and returns
	// how; it returns ctx's error if ctx ends first, leaving the step
	// running. The outcome it returns is durably recorded by the step's
	// supervisor: Adopt finds it after any crash (the Executor relies on
	// it to complete the action before it journals the step's end).
	Wait(ctx context.Context) (StepOutcome, error)
}

// StepOutcome is how a step ended: an exit code (non-zero when killed) and
// whether its supervisor stopped it at Step.Timeout.
type StepOutcome struct {
	ExitCode int
	TimedOut bool
}

const (
	// completeTimeout bounds one CompleteLifecycleAction call. The call runs
	// on a context detached from Run's (STYLE rule 8): once begun, the
	// obligation is not cut short by the agent shutting down.
	completeTimeout = 30 * time.Second
	// completeAttempts bounds the calls for one completion; retries also
	// stop at the action's Deadline.
	completeAttempts = 10
	// completeBackoff and completeMaxBackoff shape the exponential backoff
	// between completion attempts.
	completeBackoff    = time.Second
	completeMaxBackoff = 30 * time.Second
)

// Executor runs plans for lifecycle actions: it runs the plan's steps,
// heartbeats the action and completes it exactly once, journaling progress
// before acting so that an agent restarted at any point (even by kill -9)
// neither starts a step twice nor loses the action.
//
// Completer, Steps and Journal are required; Log may be nil (no logging);
// Env may be nil (steps get no LIFEGUARD_* variables). Set the fields before
// the first Run and do not copy an Executor after that. Run may be called
// concurrently: calls for different actions run in parallel, calls for the
// same Key one after the other.
type Executor struct {
	Completer Completer
	Steps     StepRunner
	Journal   *Journal
	Log       *slog.Logger
	// Env returns the environment variables describing a (LIFEGUARD_*) to
	// step s, called just before s starts (also when it starts again), and
	// given to it before the step's own Env.
	Env func(a Action, s Step) []string
	// Heartbeated, when set, is called after every heartbeat call with its
	// error (nil: Auto Scaling accepted it), for metrics.
	Heartbeated func(a Action, err error)
	// Hooks, when set, returns the latest definition of the hook of an
	// action's key, as the caller last read it (ok false: not known), and
	// a channel closed once a newer one may be known. An action may start
	// with a definition read earlier (a message named the hook): its
	// heartbeat schedule and deadline follow the latest as soon as it is
	// known.
	Hooks func(Key) (h Hook, ok bool, changed <-chan struct{})

	mu      sync.Mutex
	running map[Key]chan struct{} // closed when the Run holding the key returns
}

// Run runs plan p for action a to completion and returns the result sent to
// Auto Scaling, in this call or by an earlier one. It blocks until then, or
// until ctx ends. confirmed must be closed once the action is known to exist
// in Auto Scaling (Pending:Wait or Terminating:Wait observed, or a
// notification carrying its token): steps may start before (IMDS runs ahead
// of the action), heartbeats and completion wait for it. It must not be nil.
//
// Run, in order:
//
//  1. Loads a.Key()'s journal record. A completed record ends Run at once
//     with its outcome, without any AWS call or step (exactly once). A record
//     with a different token than a.Token (both known) belongs to an earlier
//     action and is replaced by a fresh one. Otherwise the record's Seen is
//     kept (so Deadline does not move on restart) and its token is used when
//     a.Token is "". The journal cannot tell an earlier action from the
//     current one without tokens: the caller removes a completed record once
//     the instance has left the transition (Journal.Forget).
//  2. Runs the steps in order. A step journaled finished or skipped is not
//     run again. A step journaled started (the previous agent stopped while
//     it ran) is adopted from its supervisor and waited for; when it cannot
//     be adopted, OnInterrupt decides: rerun starts it again, skip (the
//     default) records it skipped. Any other step is journaled started
//     before StepRunner.Start is called, so a crash in between leads to
//     adoption, never to a second start, and journaled finished with its
//     exit status once it ends. A failed step (non-zero exit, timeout, or
//     failure to start) with FailAbandon stops the plan with ABANDON;
//     otherwise the plan goes on and ends with p.Result (CONTINUE if "").
//     A built-in step (Step.Builtin) is journaled the same way but runs in
//     the agent's process: journaled started, it is run again from its
//     start (whatever OnInterrupt says), since nothing of it outlives the
//     agent; it fails when it returns an error.
//     An Unverified action (only a notification told of it) journals no
//     step started, and starts none, before Auto Scaling has accepted a
//     heartbeat for it, which is sent at once (once confirmed is closed);
//     a step journaled started was verified by an earlier Run.
//  3. Meanwhile, while steps run (or are waited for after adoption) and
//     from the moment confirmed is closed, heartbeats the action: at once
//     (a restarted agent does not know when its predecessor last did),
//     then every HeartbeatInterval(a.Hook, p.HeartbeatInterval), retrying a
//     failed heartbeat sooner (a quarter of the interval, 1 s to 1 min),
//     and never at or after Deadline(a). ErrNoActiveAction from a heartbeat means the
//     action was completed elsewhere or timed out: Run stops waiting for
//     the plan, starts no further step, journals the action as gone and
//     returns without calling Complete.
//  4. Waits for confirmed, journals the decided result (Completing), then
//     calls Complete on a context detached from ctx and bounded per call,
//     retrying transient errors with exponential backoff until
//     Deadline(a) or a bounded number of attempts, and journals the action
//     completed. A record found with Completing set but not completed (the
//     previous agent stopped while completing) skips straight to this step
//     and calls Complete again. When the plan ended with a step run under
//     a supervisor and confirmed was closed by then, the step's end and
//     the result are not journaled before the first Complete call but with
//     its outcome (success, ErrNoActiveAction), or right after a failed
//     attempt, or when Run stops: the supervisor has durably recorded the
//     step's exit status, so an agent that stops in between adopts the
//     step, finds that status, decides the same result and completes
//     again (and learns that Auto Scaling no longer has the action).
//
// A StepRunner that implements StepPreparer has each new step prepared
// while its first heartbeat is sent and its record written, and started
// (PreparedStep.Go) only once the record says it started.
//
// Outcomes:
//   - (r, nil): the action was completed with r, now or by an earlier Run.
//   - (r, err) with errors.Is(err, ErrNoActiveAction): Auto Scaling no
//     longer had the action (completed elsewhere, by a first Complete whose
//     answer was lost, or timed out with DefaultResult); r is the result
//     this agent decided, "" if the plan had not ended. This is journaled,
//     and later Runs return the same.
//   - ("", ctx.Err()): ctx ended first. Nothing was completed (unless a
//     Complete call was already under way), running steps keep running
//     under their supervisors, and a later Run resumes where this one
//     stopped.
//   - ("", err): a or p is invalid, the journal or the StepRunner failed, or
//     Complete kept failing; what was done is journaled, and a later Run
//     resumes.
//   - (r, err) with any other err: the action was completed with r but the
//     journal could not record it; a later Run calls Complete again and
//     returns ErrNoActiveAction.
func (e *Executor) Run(ctx context.Context, a Action, p Plan, confirmed <-chan struct{}) (Result, error) {
	if err := e.check(a, p, confirmed); err != nil {
		return "", err
	}
	k := a.Key()
	release, err := e.lock(ctx, k)
	if err != nil {
		return "", err
	}
	defer release()

	log := e.logger().With(keyInstance, a.InstanceID, keyGroup, a.Group, keyHook, a.Hook.Name, keyTransition, string(a.Hook.Transition))
	rec, resumed, saving, err := e.begin(log, a)
	if err != nil {
		return "", err
	}
	a.Seen = rec.Seen
	if a.Token == "" {
		a.Token = rec.Token
	}
	if a.Token != "" {
		log = log.With(keyToken, a.Token)
	}
	if rec.Completed {
		log.Info("lifecycle action already completed", keyResult, string(rec.Completing))
		return finished(rec)
	}

	result := rec.Completing
	if result != "" {
		log.Info("lifecycle action resumed", keyResult, string(result), keyDeadline, Deadline(a))
	} else {
		msg := "lifecycle action started"
		if resumed {
			msg = "lifecycle action resumed"
		}
		log.Info(msg, keyReason, string(a.Reason), keyDeadline, Deadline(a), "step_count", len(p.Steps))
		result, err = e.runPlan(ctx, log, a, p, &rec, confirmed, saving)
		switch {
		case errors.Is(err, ErrNoActiveAction):
			return e.gone(&rec, "", err)
		case err != nil:
			return "", e.stopped(&rec, err)
		}
	}

	select {
	case <-confirmed:
	case <-ctx.Done():
	}
	if err := ctx.Err(); err != nil {
		return "", e.stopped(&rec, err)
	}
	if rec.Completing == "" {
		rec.Completing = result
		if err := e.Journal.Save(rec); err != nil {
			return "", err
		}
	}
	err = e.complete(ctx, log, a, result, func() error { return e.savePending(&rec) })
	switch {
	case errors.Is(err, ErrNoActiveAction):
		return e.gone(&rec, result, err)
	case err != nil:
		return "", err
	}
	rec.Completed, rec.CompletedAt = true, time.Now()
	if err := e.Journal.Save(rec); err != nil {
		// Auto Scaling has the result; a later Run calls Complete again and
		// learns that the action is gone.
		return result, fmt.Errorf("lifecycle action %v completed with %s: %w", k, result, err)
	}
	log.Info("lifecycle action completed", keyResult, string(result))
	return result, nil
}

// check validates Run's arguments and the Executor's fields.
func (e *Executor) check(a Action, p Plan, confirmed <-chan struct{}) error {
	var errs []error
	if e.Completer == nil || e.Steps == nil || e.Journal == nil {
		errs = append(errs, errors.New("executor needs a Completer, a StepRunner and a Journal"))
	}
	if confirmed == nil {
		errs = append(errs, errors.New("confirmed channel is nil: pass a closed channel when the action is known to exist"))
	}
	if err := a.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := p.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("run lifecycle action: %w", err)
	}
	return nil
}

func (e *Executor) logger() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

// lock waits until no other Run works on k, then claims k until release is
// called.
func (e *Executor) lock(ctx context.Context, k Key) (release func(), err error) {
	for {
		e.mu.Lock()
		busy, ok := e.running[k]
		if !ok {
			if e.running == nil {
				e.running = make(map[Key]chan struct{})
			}
			done := make(chan struct{})
			e.running[k] = done
			e.mu.Unlock()
			return func() {
				e.mu.Lock()
				delete(e.running, k)
				e.mu.Unlock()
				close(done)
			}, nil
		}
		e.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// begin loads a's record, or journals a fresh one; resumed says a record of
// this action was found.
//
// The fresh record of an Unverified action is saved in the background
// (saving delivers the outcome, once): the action's first heartbeat,
// which its first step waits for, goes out meanwhile, so that the step
// waits for the longer of the two rather than for both. Nothing is lost
// by it: until the step is journaled started (after the save, see
// runPlan) nothing has run, and an agent that stops before the save lands
// finds no record and takes the action as new from its notification,
// which is not deleted before the action ends.
func (e *Executor) begin(log *slog.Logger, a Action) (rec Record, resumed bool, saving <-chan error, err error) {
	k := a.Key()
	rec, ok, err := e.Journal.Load(k)
	if err != nil {
		return Record{}, false, nil, err
	}
	if ok && (a.Token == "" || rec.Token == "" || a.Token == rec.Token) {
		if rec.Token == "" && a.Token != "" && !rec.Completed {
			rec.Token = a.Token
			if err := e.Journal.Save(rec); err != nil {
				return Record{}, false, nil, err
			}
		}
		return rec, true, nil, nil
	}
	if ok {
		log.Info("journaled lifecycle action replaced by a new one", "old_token", rec.Token, "old_completed", rec.Completed)
	}
	seen := a.Seen
	if seen.IsZero() {
		seen = time.Now()
	}
	rec = Record{Key: k, ID: rand.Text(), Token: a.Token, Seen: seen}
	if a.Unverified {
		saved := make(chan error, 1)
		go func(r Record) { saved <- e.Journal.Save(r) }(rec)
		return rec, false, saved, nil
	}
	if err := e.Journal.Save(rec); err != nil {
		return Record{}, false, nil, err
	}
	return rec, false, nil, nil
}

// savePending journals the end of the step that ended the plan, and the
// decided result, if that was left for the completion (Record.pending).
func (e *Executor) savePending(rec *Record) error {
	if !rec.pending {
		return nil
	}
	if err := e.Journal.Save(*rec); err != nil {
		return err
	}
	rec.pending = false
	return nil
}

// stopped returns err, Run's reason to stop before completing, after
// journaling what savePending would.
func (e *Executor) stopped(rec *Record, err error) error {
	if serr := e.savePending(rec); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}

// finished returns the outcome of a completed record.
func finished(rec Record) (Result, error) {
	if rec.Gone {
		return rec.Completing, fmt.Errorf("lifecycle action %v was no longer active at %s: %w",
			rec.Key, rec.CompletedAt.Format(time.RFC3339), ErrNoActiveAction)
	}
	return rec.Completing, nil
}

// gone journals that Auto Scaling no longer has the action; cause wraps
// ErrNoActiveAction.
func (e *Executor) gone(rec *Record, decided Result, cause error) (Result, error) {
	rec.Completed, rec.Gone, rec.CompletedAt = true, true, time.Now()
	if err := e.Journal.Save(*rec); err != nil {
		return decided, errors.Join(cause, err)
	}
	return decided, cause
}

// runPlan runs the steps while a goroutine heartbeats the action. It
// returns the result to send, or an error wrapping ErrNoActiveAction when a
// heartbeat found the action gone. Heartbeats start with the first step
// that runs (or is adopted), so a plan already done sends none.
//
// saving, when not nil, delivers the outcome of the save of the fresh
// record that begin started: it is waited for before any other write of
// the record (the first step's, or Run's after runPlan), so that the two
// writes cannot land out of order.
func (e *Executor) runPlan(ctx context.Context, log *slog.Logger, a Action, p Plan, rec *Record, confirmed <-chan struct{}, saving <-chan error) (Result, error) {
	planCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var saveErr error
	saved := func() error {
		if saving != nil {
			saveErr, saving = <-saving, nil
		}
		return saveErr
	}
	interval := HeartbeatInterval(a.Hook, p.HeartbeatInterval)
	var (
		gone      error
		wg        sync.WaitGroup
		beating   sync.Once
		verifying sync.Once
	)
	// verified is closed once the action is known to be pending in Auto
	// Scaling: at once, unless only a notification told of it.
	verified := make(chan struct{})
	accepted := func() { verifying.Do(func() { close(verified) }) }
	if !a.Unverified {
		accepted()
	}
	startHeartbeats := func() {
		beating.Do(func() {
			wg.Go(func() {
				hb := heartbeater{c: e.Completer, log: log, a: a, interval: interval, sent: e.Heartbeated, ok: accepted,
					configured: p.HeartbeatInterval, hook: e.Hooks}
				if gone = hb.run(planCtx, confirmed); gone != nil {
					stop(gone) // ends the wait for a running step
				}
			})
		})
	}
	if a.Unverified {
		startHeartbeats() // the first step waits for its answer
	}
	ready := func() error {
		if err := saved(); err != nil {
			return err
		}
		select {
		case <-verified:
			return nil
		default:
		}
		log.Info("waiting for Auto Scaling to accept a heartbeat before the first step: only a notification told of the action")
		select {
		case <-verified:
			return nil
		case <-planCtx.Done():
			return planCtx.Err()
		}
	}
	result, err := e.runSteps(planCtx, log, a, p, rec, startHeartbeats, ready, confirmed)
	stop(nil)
	wg.Wait()
	if err := saved(); err != nil {
		return "", err // nothing ran: the step waits for the save
	}
	switch {
	case gone != nil:
		return "", gone
	case ctx.Err() != nil:
		return "", ctx.Err()
	}
	return result, err
}

// runSteps runs p's steps as the journal record allows and returns the
// result the plan decided. It calls startHeartbeats before running a step,
// and ready before journaling a step started for the first time.
//
// The step that ends the plan (the last, or a failed one that abandons
// it) is journaled finished in the same save as the decided result
// (Completing) when the action is confirmed by then, so that completion
// follows the step's exit with one durable write, not two.
func (e *Executor) runSteps(ctx context.Context, log *slog.Logger, a Action, p Plan, rec *Record, startHeartbeats func(), ready func() error, confirmed <-chan struct{}) (Result, error) {
	for i, s := range p.Steps {
		conclude := func(sr StepRecord) {
			select {
			case <-confirmed:
			default:
				return // Run journals the result once confirmed
			}
			switch {
			case sr.failed() && s.OnFailure == FailAbandon:
				rec.Completing = Abandon
			case i == len(p.Steps)-1:
				rec.Completing = p.result()
			}
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		stepLog := log.With(keyStep, s.Name)
		id := StepID{Key: rec.Key, Action: rec.ID, Step: s.Name}
		var sr StepRecord
		if i := rec.step(s.Name); i >= 0 {
			sr = rec.Steps[i]
		}
		var err error
		switch {
		case (sr.State == "" || sr.State == StepStarted) && s.Builtin != nil:
			startHeartbeats()
			if sr.State == StepStarted {
				stepLog.Warn("built-in step interrupted; running it again from its start")
			} else if err := ready(); err != nil {
				return "", err
			}
			sr, err = e.runBuiltin(ctx, stepLog, a, s, rec, conclude)
		case sr.State == "":
			startHeartbeats()
			prep := e.prepare(ctx, a, s, id)
			if err := ready(); err != nil {
				prep.release(stepLog)
				return "", err
			}
			sr, err = e.start(ctx, stepLog, a, s, id, rec, conclude, prep.get(stepLog))
		case sr.State == StepStarted:
			startHeartbeats()
			sr, err = e.resume(ctx, stepLog, a, s, id, rec, conclude)
		case sr.State == StepFinished, sr.State == StepSkipped:
			stepLog.Info("step already done", "state", string(sr.State), keyExitCode, sr.ExitCode)
		default:
			return "", fmt.Errorf("%w of %v: step %s has unknown state %q", ErrCorruptRecord, rec.Key, s.Name, sr.State)
		}
		if err != nil {
			return "", err
		}
		if sr.failed() && s.OnFailure == FailAbandon {
			stepLog.Warn("plan abandoned after failed step", keyResult, string(Abandon))
			return Abandon, nil
		}
	}
	return p.result(), nil
}

// preparing is a step being prepared in the background (StepPreparer),
// from prepare until get or release, which wait for it.
type preparing struct {
	done chan struct{}
	p    PreparedStep
	err  error
}

// prepare starts preparing s when the StepRunner can; nil when it cannot.
func (e *Executor) prepare(ctx context.Context, a Action, s Step, id StepID) *preparing {
	sp, ok := e.Steps.(StepPreparer)
	if !ok {
		return nil
	}
	pr := &preparing{done: make(chan struct{})}
	env := e.env(a, s)
	go func() {
		defer close(pr.done)
		pr.p, pr.err = sp.Prepare(ctx, id, s, env)
	}()
	return pr
}

// get waits for the preparation and returns the prepared step; nil when
// there is none (the step is then started with Start).
func (pr *preparing) get(log *slog.Logger) PreparedStep {
	if pr == nil {
		return nil
	}
	<-pr.done
	if pr.err != nil {
		log.Debug("step not prepared; starting it without", keyErr, pr.err)
		return nil
	}
	return pr.p
}

// release waits for the preparation and gives the prepared step up.
func (pr *preparing) release(log *slog.Logger) {
	if p := pr.get(log); p != nil {
		p.Release()
	}
}

// start journals s as started, starts it (prep, when not nil, is s
// prepared: it is started with Go, or released) and waits for it.
// conclude is called with how the step ended just before that is
// journaled, and may add to the record.
func (e *Executor) start(ctx context.Context, log *slog.Logger, a Action, s Step, id StepID, rec *Record, conclude func(StepRecord), prep PreparedStep) (StepRecord, error) {
	sr := StepRecord{Name: s.Name, State: StepStarted, Started: time.Now()}
	rec.setStep(sr)
	if err := e.Journal.Save(*rec); err != nil {
		if prep != nil {
			prep.Release()
		}
		return sr, err
	}
	var h StepHandle
	var err error
	if prep != nil {
		h, err = prep.Go(ctx)
	} else {
		h, err = e.Steps.Start(ctx, id, s, e.env(a, s))
	}
	if err != nil {
		if ctx.Err() != nil {
			// Whether it started is unknown: the next Run adopts it or
			// applies OnInterrupt.
			return sr, ctx.Err()
		}
		log.Warn("step failed to start", keyErr, err)
		sr.State, sr.ExitCode, sr.Error, sr.Ended = StepFinished, -1, err.Error(), time.Now()
		rec.setStep(sr)
		return sr, e.Journal.Save(*rec)
	}
	log.Info("step started")
	return e.wait(ctx, log, h, sr, rec, conclude)
}

// runBuiltin journals the built-in step s as started, runs it in process
// (bounded by s.Timeout) and journals how it ended. When ctx ends first
// the step stays journaled started, and the next Run runs it again from
// its start.
func (e *Executor) runBuiltin(ctx context.Context, log *slog.Logger, a Action, s Step, rec *Record, conclude func(StepRecord)) (StepRecord, error) {
	sr := StepRecord{Name: s.Name, State: StepStarted, Started: time.Now()}
	rec.setStep(sr)
	if err := e.Journal.Save(*rec); err != nil {
		return sr, err
	}
	log.Info("built-in step started")
	sctx, cancel := ctx, context.CancelFunc(func() {})
	if s.Timeout > 0 {
		sctx, cancel = context.WithTimeout(ctx, s.Timeout)
	}
	err := s.Builtin(sctx, a)
	timedOut := err != nil && errors.Is(sctx.Err(), context.DeadlineExceeded)
	cancel()
	if ctx.Err() != nil {
		return sr, ctx.Err()
	}
	sr.State, sr.Ended = StepFinished, time.Now()
	if err != nil {
		sr.ExitCode, sr.TimedOut, sr.Error = 1, timedOut, err.Error()
	}
	rec.setStep(sr)
	conclude(sr)
	if err := e.Journal.Save(*rec); err != nil {
		return sr, err
	}
	if err != nil {
		log.Warn("built-in step failed", keyErr, err, keyTimedOut, timedOut)
	} else {
		log.Info("built-in step finished")
	}
	return sr, nil
}

// resume adopts s, which a previous agent started, or applies its
// OnInterrupt policy when it cannot be adopted.
func (e *Executor) resume(ctx context.Context, log *slog.Logger, a Action, s Step, id StepID, rec *Record, conclude func(StepRecord)) (StepRecord, error) {
	sr := rec.Steps[rec.step(s.Name)]
	h, ok, err := e.Steps.Adopt(ctx, id)
	switch {
	case err != nil && ctx.Err() != nil:
		return sr, ctx.Err()
	case err != nil:
		return sr, fmt.Errorf("adopt step %s of %v: %w", s.Name, rec.Key, err)
	case ok:
		log.Info("step adopted")
		return e.wait(ctx, log, h, sr, rec, conclude)
	case s.OnInterrupt == InterruptRerun:
		log.Warn("step interrupted", "policy", string(InterruptRerun))
		return e.start(ctx, log, a, s, id, rec, conclude, nil)
	default:
		log.Warn("step interrupted", "policy", string(InterruptSkip))
		sr.State, sr.Ended = StepSkipped, time.Now()
		rec.setStep(sr)
		return sr, e.Journal.Save(*rec)
	}
}

// wait waits for a started or adopted step and journals how it ended.
func (e *Executor) wait(ctx context.Context, log *slog.Logger, h StepHandle, sr StepRecord, rec *Record, conclude func(StepRecord)) (StepRecord, error) {
	out, err := h.Wait(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return sr, ctx.Err() // the step runs on under its supervisor
		}
		return sr, fmt.Errorf("wait for step %s of %v: %w", sr.Name, rec.Key, err)
	}
	sr.State, sr.ExitCode, sr.TimedOut, sr.Ended = StepFinished, out.ExitCode, out.TimedOut, time.Now()
	rec.setStep(sr)
	conclude(sr)
	// The step that ends the plan, with the action confirmed (conclude
	// decided the result), is journaled together with the completion,
	// after CompleteLifecycleAction: its supervisor has durably recorded
	// the outcome, so an agent that stops in between adopts the step,
	// finds the same outcome, decides the same result and completes again
	// (Auto Scaling then has no active action: done). Any other step's end
	// is journaled now.
	if rec.Completing != "" {
		rec.pending = true
	} else if err := e.Journal.Save(*rec); err != nil {
		return sr, err
	}
	level := slog.LevelInfo
	if out.failed() {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, "step finished", keyExitCode, out.ExitCode, keyTimedOut, out.TimedOut)
	return sr, nil
}

// env returns the environment additions for s: the action's, then the
// step's own in name order.
func (e *Executor) env(a Action, s Step) []string {
	var env []string
	if e.Env != nil {
		env = slices.Clone(e.Env(a, s))
	}
	for _, name := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, name+"="+s.Env[name])
	}
	return env
}

// complete calls Complete until it succeeds, reports ErrNoActiveAction, or
// the attempts or the action's deadline run out. Each call runs on a fresh
// context bounded by completeTimeout and detached from ctx; ctx only cuts
// short the waits between attempts. failed is called after each failed
// attempt, before the wait; its error ends complete.
func (e *Executor) complete(ctx context.Context, log *slog.Logger, a Action, r Result, failed func() error) error {
	deadline := Deadline(a)
	backoff := completeBackoff
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), completeTimeout)
		err := e.Completer.Complete(cctx, a, r)
		cancel()
		if err == nil || errors.Is(err, ErrNoActiveAction) {
			if err != nil {
				return fmt.Errorf("complete lifecycle action %v with %s: %w", a.Key(), r, err)
			}
			return nil
		}
		if ferr := failed(); ferr != nil {
			return errors.Join(fmt.Errorf("complete lifecycle action %v with %s: %w", a.Key(), r, err), ferr)
		}
		if attempt == completeAttempts || !time.Now().Add(backoff).Before(deadline) {
			return fmt.Errorf("complete lifecycle action %v with %s (%d attempts): %w", a.Key(), r, attempt, err)
		}
		log.Warn("complete lifecycle action failed", keyErr, err, keyResult, string(r), keyRetryIn, backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, completeMaxBackoff)
	}
}
