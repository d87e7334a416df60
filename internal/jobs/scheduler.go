package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// FinishTimeout bounds the ledger write that records how a run ended. It
// runs on a context that outlives the leadership (the run has stopped by
// then; only its record is at stake), so that a run stopped by the loss
// of leadership is still recorded.
const FinishTimeout = 2 * time.Second

// Stop reasons of scheduled runs.
const (
	// StoppedOverlap: the next slot of the same job stopped the run
	// (overlap policy stop).
	StoppedOverlap StopReason = "overlapped by the next run"
	// StoppedFenced: the ledger refused a claim of the job with
	// ErrFenced, so a newer leader exists: the run was stopped at once,
	// before this leadership's context ended.
	StoppedFenced StopReason = "a newer leader claimed the job"
)

// Outcomes recorded for slots that started no command.
const (
	// OutcomeSkippedOverlap: the previous run was still going on (overlap
	// policy skip).
	OutcomeSkippedOverlap = "skipped (previous run still going on)"
	// outcomeNotStarted prefixes the reason a claimed run did not start.
	outcomeNotStarted = "not started: "
)

// Causes with which the scheduler stops a run before the leadership ends.
var (
	errOverlap = errors.New("stopped for the next run of the job")
	errFenced  = errors.New("stopped: a newer leader claimed the job")
)

// Attribute keys of the package's log records (STYLE rule 12).
const (
	keyJob     = "job"
	keySlot    = "slot"
	keyToken   = "token"
	keyOutcome = "outcome"
	keyPID     = "pid"
	keySkipped = "skipped"
	keyErr     = "err"
)

// Leadership is what the scheduler is told of the leadership it runs
// under; its context is Run's.
type Leadership struct {
	// Token is the leadership's fencing token (at least 1).
	Token uint64
	// Deadline is the lease's deadline when leadership started.
	Deadline time.Time
	// LeaseEnd, when not nil, returns the lease's current deadline, which
	// renewals move later; each run gets it in EnvLeaseDeadline. Nil means
	// Deadline. It must not block.
	LeaseEnd func() time.Time
}

func (l Leadership) deadline() time.Time {
	if l.LeaseEnd != nil {
		if d := l.LeaseEnd(); !d.IsZero() {
			return d
		}
	}
	return l.Deadline
}

// Runner runs one leader-only command; RunLeaderOnly is the one used when
// SchedulerConfig.Runner is nil.
type Runner func(ctx context.Context, s LeaderOnly) (RunResult, error)

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	// Jobs are the scheduled jobs; names must be distinct.
	Jobs []ScheduledJob
	// Ledger records every run; shared by all the instances that may lead.
	// Required.
	Ledger Ledger
	// Instance is this instance's identity, recorded with its runs.
	// Required.
	Instance string
	// Grace is the time between SIGTERM and SIGKILL when a run is stopped;
	// positive, and short enough that a run is gone before the lease could
	// expire on another instance (see LeaderOnly.Grace).
	Grace time.Duration
	// Env is the base environment of the commands; nil means the agent's
	// own. Each job's Env is added to it.
	Env []string
	// Output receives the commands' standard output and error; nil
	// discards them.
	Output io.Writer
	// Logger receives the scheduler's events; nil discards them.
	Logger *slog.Logger
	// Runner starts the commands; nil means RunLeaderOnly.
	Runner Runner
}

// Validate checks c, naming each bad field and job.
func (c SchedulerConfig) Validate() error {
	_, err := c.compile()
	return err
}

func (c SchedulerConfig) compile() ([]*job, error) {
	var errs []error
	if c.Ledger == nil {
		errs = append(errs, errors.New("ledger: required (where runs are recorded, shared by every instance that may lead)"))
	}
	if c.Instance == "" {
		errs = append(errs, errors.New("instance: required (this instance's id)"))
	}
	if c.Grace <= 0 {
		errs = append(errs, fmt.Errorf("grace: %s; must be positive, and fit inside the lease", c.Grace))
	}
	var compiled []*job
	seen := map[string]int{}
	for i, sj := range c.Jobs {
		j, err := sj.compile()
		if err != nil {
			errs = append(errs, fmt.Errorf("jobs[%d]: %w", i, err))
			continue
		}
		if prev, ok := seen[sj.Name]; ok {
			errs = append(errs, fmt.Errorf("jobs[%d]: name: %q is also the name of jobs[%d]; job names must be distinct", i, sj.Name, prev))
			continue
		}
		seen[sj.Name] = i
		compiled = append(compiled, j)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return compiled, nil
}

// Scheduler runs scheduled jobs while its instance leads. Create it with
// NewScheduler.
type Scheduler struct {
	jobs     []*job
	ledger   Ledger
	instance string
	grace    time.Duration
	env      []string
	out      io.Writer
	log      *slog.Logger
	runner   Runner
	active   atomic.Bool
}

// NewScheduler validates cfg and returns its scheduler.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	jobs, err := cfg.compile()
	if err != nil {
		return nil, fmt.Errorf("scheduled jobs: %w", err)
	}
	s := &Scheduler{
		jobs: jobs, ledger: cfg.Ledger, instance: cfg.Instance, grace: cfg.Grace,
		env: cfg.Env, out: cfg.Output, log: cfg.Logger, runner: cfg.Runner,
	}
	if s.env == nil {
		s.env = os.Environ()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.runner == nil {
		s.runner = RunLeaderOnly
	}
	return s, nil
}

// Run runs the jobs for one leadership: ctx is the leadership, done when it
// ends. Each job's slot is claimed in the ledger with l.Token before it
// starts, so a slot another leader claimed does not start again; on
// taking over, a job with MissedRunOnce first runs its most recent slot
// within its window, if nobody claimed it. Ledger errors are logged and
// cost the slot (it does not start unless claimed).
//
// Run blocks until ctx is done and every run it started has been stopped
// and has returned (see RunLeaderOnly), and their outcomes recorded (each
// within FinishTimeout); then it returns nil. A claim refused with
// ErrFenced proves that a newer leader exists: the job's run in progress,
// if any, is stopped at once. It returns an error at once
// when l is invalid or another Run of s is going on.
func (s *Scheduler) Run(ctx context.Context, l Leadership) error {
	if l.Token == 0 || l.Deadline.IsZero() {
		return fmt.Errorf("run scheduled jobs: leadership needs a token (got %d) and a deadline (got %v)", l.Token, l.Deadline)
	}
	if !s.active.CompareAndSwap(false, true) {
		return errors.New("run scheduled jobs: already running for another leadership")
	}
	defer s.active.Store(false)
	var wg sync.WaitGroup
	for _, j := range s.jobs {
		wg.Go(func() { s.runJob(ctx, l, j) })
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// running is a run in progress; done is closed once it has returned and
// its outcome has been recorded.
type running struct {
	slot   time.Time
	cancel context.CancelCauseFunc
	done   chan struct{}
}

func (r *running) over() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// runJob schedules one job until ctx is done, then waits for its run.
func (s *Scheduler) runJob(ctx context.Context, l Leadership, j *job) {
	var cur *running
	defer func() {
		if cur != nil {
			<-cur.done // ctx is done: the run is being stopped
		}
	}()
	now := time.Now()
	if j.Missed == MissedRunOnce {
		if slot, ok := j.latest(now, j.MissedWindow); ok {
			cur = s.fire(ctx, l, j, slot, cur)
		}
	}
	next := j.next(now)
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		cur = s.fire(ctx, l, j, next, cur)
		following := j.next(next)
		if now := time.Now(); !following.After(now) {
			// Behind schedule (a slow ledger, a long stop): go on with
			// the latest slot that has come, skipping those before it.
			latest, _ := j.latest(now, now.Sub(following))
			s.log.Warn("scheduled slots skipped: behind schedule", keyJob, j.Name, keySlot, following, keySkipped, latest)
			following = latest
		}
		next = following
		timer.Reset(time.Until(next))
	}
}

// fire handles one slot of j: it claims it and starts its run, or skips it
// for the run in progress, and returns the job's run in progress.
func (s *Scheduler) fire(ctx context.Context, l Leadership, j *job, slot time.Time, cur *running) *running {
	if cur != nil && cur.over() {
		cur = nil
	}
	claimed, err := s.ledger.Claim(ctx, j.Name, slot, l.Token, s.instance)
	switch {
	case err != nil && claimed:
		s.log.Warn("scheduled run claimed; ledger bookkeeping failed", keyJob, j.Name, keySlot, slot, keyErr, err)
	case errors.Is(err, ErrFenced):
		s.log.Warn("scheduled run not claimed: a newer leader claimed the job", keyJob, j.Name, keySlot, slot, keyToken, l.Token, keyErr, err)
		if cur != nil {
			cur.cancel(errFenced)
			<-cur.done
		}
		return nil
	case err != nil:
		if ctx.Err() == nil {
			s.log.Error("scheduled run not claimed", keyJob, j.Name, keySlot, slot, keyToken, l.Token, keyErr, err)
		}
		return cur
	case !claimed:
		s.log.Debug("scheduled run claimed by another leader", keyJob, j.Name, keySlot, slot)
		return cur
	}
	if cur != nil {
		if j.Overlap == OverlapSkip {
			s.finish(ctx, j, slot, OutcomeSkippedOverlap, time.Now())
			s.log.Info("scheduled run skipped: previous run still going on", keyJob, j.Name, keySlot, slot, "previous", cur.slot)
			return cur
		}
		cur.cancel(errOverlap)
		<-cur.done
	}
	if ctx.Err() != nil {
		s.finish(ctx, j, slot, outcomeNotStarted+string(StoppedLeadership), time.Now())
		return nil
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	r := &running{slot: slot, cancel: cancel, done: make(chan struct{})}
	go s.execute(runCtx, l, j, r) // waited for through r.done by runJob
	return r
}

// execute runs r's command and records its outcome, then closes r.done.
func (s *Scheduler) execute(ctx context.Context, l Leadership, j *job, r *running) {
	defer close(r.done)
	defer r.cancel(nil)
	env := append(s.env[:len(s.env):len(s.env)], j.Env...)
	env = append(env, EnvJob+"="+j.Name, EnvScheduledTime+"="+r.slot.UTC().Format(time.RFC3339Nano))
	s.log.Debug("scheduled run starting", keyJob, j.Name, keySlot, r.slot, keyToken, l.Token)
	res, err := s.runner(ctx, LeaderOnly{
		Argv: j.Command, Env: env, Stdout: s.out, Stderr: s.out,
		Token: l.Token, Deadline: l.deadline(), Grace: s.grace, Timeout: j.Timeout,
	})
	var outcome string
	if err != nil {
		outcome = outcomeNotStarted + err.Error()
		s.log.Error("scheduled run not started", keyJob, j.Name, keySlot, r.slot, keyErr, err)
	} else {
		if res.Stopped == StoppedLeadership {
			switch cause := context.Cause(ctx); {
			case errors.Is(cause, errOverlap):
				res.Stopped = StoppedOverlap
			case errors.Is(cause, errFenced):
				res.Stopped = StoppedFenced
			}
		}
		outcome = res.String()
		s.log.Info("scheduled run ended", keyJob, j.Name, keySlot, r.slot, keyToken, l.Token, keyPID, res.PID, keyOutcome, outcome)
	}
	s.finish(ctx, j, r.slot, outcome, cmpTime(res.Ended))
}

// finish records a run's outcome on a context that outlives the
// leadership, bounded by FinishTimeout.
func (s *Scheduler) finish(ctx context.Context, j *job, slot time.Time, outcome string, ended time.Time) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FinishTimeout)
	defer cancel()
	if err := s.ledger.Finish(fctx, j.Name, slot, outcome, ended); err != nil {
		s.log.Error("scheduled run outcome not recorded", keyJob, j.Name, keySlot, slot, keyOutcome, outcome, keyErr, err)
	}
}

// cmpTime returns t, or now when t is zero.
func cmpTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
