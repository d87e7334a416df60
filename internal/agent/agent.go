package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// Metadata is what the agent reads from the instance metadata service.
// It is implemented by internal/awscloud over IMDSv2.
type Metadata interface {
	// InstanceID returns this instance's id.
	InstanceID(ctx context.Context) (string, error)
	// TargetLifecycleState returns autoscaling/target-lifecycle-state; ""
	// when IMDS has none yet (404).
	TargetLifecycleState(ctx context.Context) (string, error)
	// SpotInterruption returns the spot/instance-action notice; nil when
	// there is none (404).
	SpotInterruption(ctx context.Context) (*SpotNotice, error)
	// LifeCycle returns instance-life-cycle, the instance's purchasing
	// option: "on-demand", "spot", "scheduled", "capacity-block"; "" when
	// IMDS has none (404).
	LifeCycle(ctx context.Context) (string, error)
}

// SpotNotice is a spot interruption notice: what EC2 will do to the
// instance (terminate, stop, hibernate) and when.
type SpotNotice struct {
	Action string
	Time   time.Time
}

// Group is what the agent asks Auto Scaling. It is implemented by
// internal/awscloud.
type Group interface {
	// Instance returns the instance's group and lifecycle state
	// (DescribeAutoScalingInstances), or an error wrapping ErrNotInGroup
	// when Auto Scaling does not list the instance.
	Instance(ctx context.Context, instanceID string) (Membership, error)
	// Hooks returns the group's lifecycle hooks (DescribeLifecycleHooks).
	Hooks(ctx context.Context, group string) ([]lifecycle.Hook, error)
}

// Membership is an instance's place in Auto Scaling.
type Membership struct {
	Group          string
	LifecycleState string // such as "Pending:Wait", "InService", "Terminating:Wait"
}

// ErrNotInGroup means DescribeAutoScalingInstances does not list the
// instance: it is not (or not yet) part of an Auto Scaling group.
var ErrNotInGroup = errors.New("instance is not in an Auto Scaling group")

// NoHook is the hook name under which the terminate plan is journaled when
// the group has no matching terminate hook: the plan runs, and nothing is
// completed. AWS does not allow ':' in hook names, so it names no real hook.
const NoHook = "lifeguard:no-hook"

// Deps are the agent's connections to the world.
type Deps struct {
	Metadata  Metadata
	Group     Group
	Completer lifecycle.Completer
	// Steps runs the terminate plan's steps; nil means the supervisors of
	// internal/jobs under cfg.Paths.JournalDir (NewStepRunner).
	Steps lifecycle.StepRunner
	// Inbox opens the queue of source sqs; required for it, unused
	// otherwise.
	Inbox Inbox

	// Status, when set, is where Run serves Handler (status.listen); Run
	// closes it.
	Status net.Listener
	// SIGTERM, when set, delivers the process's SIGTERM: Run then acts on
	// on_sigterm (exit: return; drain: Drain).
	SIGTERM <-chan os.Signal
	// Components run beside the lifecycle loop for as long as Run does
	// (such as an elector with its leader-only jobs, or traffic
	// registration).
	Components []Component
	// Metrics are registered in the agent's registry and served at
	// /metrics with its own, such as internal/awscloud's count of AWS
	// calls (lifeguard_aws_calls_total).
	Metrics []prometheus.Collector
	// Leader is what leader election needs (leader.mode lease).
	Leader LeaderDeps
	// Traffic is what the traffic section needs when it is on.
	Traffic TrafficDeps
	// Build labels lifeguard_build_info.
	Build BuildInfo
	// Settled, when set, is called from the lifecycle loop while the agent
	// is settled (the instance is InService as Auto Scaling said, no
	// lifecycle action runs, and with source sqs the queue is open): first
	// when start-up is over, then, unless Release is set, again on the
	// loop's next turn (its metadata poll) after any garbage collection
	// has run since the last call, and at least every 110 s, before the
	// Go runtime would force a collection of its own (every two minutes).
	// What start-up alone needed, and what the collector's walk of the
	// goroutine stacks mapped again, can then be given back (lifeguard
	// agent collects, returns free heap pages and drops its mappings of
	// the program's pages). It must return quickly.
	Settled func()
	// Release, when set, is called from the lifecycle loop while the
	// agent is settled, after Settled, on the loop's second turn after
	// any garbage collection (past the next metadata poll, which grows
	// again the stack the collection shrank): what the collection and the
	// stack's growth mapped of the program can then be given back
	// without collecting again (Settled's later calls collect, which
	// shrinks the stacks once more). Set, it replaces Settled's calls
	// after the first. It must return quickly.
	Release func()
	// Waiting, when set, is called with source sqs while the agent is
	// settled, each time the receiver's long poll has been sent and waits
	// for its answer (up to sqs.wait_time), from the HTTP client's
	// goroutine: what the agent mapped of the program since the last
	// call can be given back for most of the wait (lifeguard agent gives
	// back its mappings of the program's read-only data, which every
	// round of polls maps again a little all over). It must return
	// quickly and be safe to call from any goroutine.
	Waiting func()
}

// Component is a part of the agent that runs as long as the agent does.
// Run blocks until ctx ends (then it returns nil: cancellation is not an
// error) or it fails; an error stops the whole agent and is Run's.
type Component interface {
	Run(ctx context.Context) error
}

// ComponentFunc adapts a function to Component.
type ComponentFunc func(ctx context.Context) error

// Run calls f.
func (f ComponentFunc) Run(ctx context.Context) error { return f(ctx) }

// Lifecycle states (DescribeAutoScalingInstances) and target states (IMDS)
// the agent acts on.
const (
	statePending            = "Pending"
	statePendingWait        = "Pending:Wait"
	statePendingProceed     = "Pending:Proceed"
	stateTerminating        = "Terminating"
	stateTerminatingWait    = "Terminating:Wait"
	stateTerminatingProceed = "Terminating:Proceed"
	stateTerminated         = "Terminated"
	stateEnteringStandby    = "EnteringStandby"
	stateStandby            = "Standby"
	stateDetaching          = "Detaching"
	stateDetached           = "Detached"
	warmedPrefix            = "Warmed:"
)

const (
	// actionsDir is the journal's subdirectory of paths.journal_dir.
	actionsDir = "actions"
	// maxBackoff caps the wait between retries of a failing call.
	maxBackoff = time.Minute
	// actionRetry is the first wait before running a failed lifecycle
	// action again (doubling up to maxBackoff).
	actionRetry = 5 * time.Second
	// statusShutdownBound bounds the status server's graceful shutdown.
	statusShutdownBound = 5 * time.Second
	// statusReadHeaderTimeout bounds reading a status request's header.
	statusReadHeaderTimeout = 5 * time.Second
	// noHookHeartbeatTimeout sizes the pseudo hook of NoHook actions: a
	// 48 h deadline and one no-op heartbeat an hour.
	noHookHeartbeatTimeout = 2 * time.Hour
)

// Agent is the per-instance daemon. Create it with New, serve Handler,
// call Run once; Drain may be called at any time from any goroutine.
type Agent struct {
	cfg       config.Agent
	log       *slog.Logger
	md        Metadata
	asg       Group
	completer lifecycle.Completer
	inbox     Inbox // source sqs
	journal   *lifecycle.Journal
	exec      *lifecycle.Executor // completes through Auto Scaling
	hookDefs  hookDefs            // the hooks as last read, for exec's heartbeats
	noHook    *lifecycle.Executor // completes nothing (NoHook)
	plan      lifecycle.Plan      // the terminate plan
	probes    []prober
	client    *http.Client // HTTP probes
	metrics   *metrics
	status    net.Listener
	sigterm   <-chan os.Signal
	parts     []Component
	leader    *leader  // nil unless leader election is on
	traffic   *traffic // nil unless the traffic section is on
	lock      *journalLock
	unlock    sync.Once
	settled   func() // Deps.Settled
	release   func() // Deps.Release
	waiting   func() // Deps.Waiting
	// quiet says the agent is settled and past its first Settled call:
	// the receiver may call waiting while its long poll waits.
	quiet atomic.Bool

	ran       atomic.Bool
	started   time.Time // when Run started; set before Run starts goroutines
	drainOnce sync.Once
	drainCh   chan struct{} // closed by Drain
	wake      chan struct{} // an action ended; buffered 1

	mu      sync.Mutex
	snap    snapshot
	actions []*actionState // every action handled, in order
	spot    *SpotNotice
}

// New checks cfg and deps and returns an Agent. It locks the journal
// directory, cfg.Paths.JournalDir, for the agent's life (an exclusive
// flock on its agent.lock, holding the pid): when another agent, in this
// process or another, holds it, New fails at once with an error wrapping
// ErrJournalLocked that names the directory and the holder's pid. The lock
// is released when Run returns, or by Close. It opens (creating) the
// journal in <cfg.Paths.JournalDir>/actions. Source sqs needs
// deps.Inbox. log may be nil.
func New(cfg config.Agent, deps Deps, log *slog.Logger) (*Agent, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if sqsSource(cfg) && deps.Inbox == nil {
		errs = append(errs, errors.New("source sqs needs deps.Inbox"))
	}
	if deps.Metadata == nil || deps.Group == nil || deps.Completer == nil {
		errs = append(errs, errors.New("deps need Metadata, Group and Completer"))
	}
	plan := terminatePlan(cfg.Terminate)
	if err := plan.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("terminate plan: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("new agent: %w", err)
	}
	lock, err := lockJournal(cfg.Paths.JournalDir)
	if err != nil {
		return nil, fmt.Errorf("new agent: %w", err)
	}
	a, err := newAgent(cfg, deps, log)
	if err != nil {
		lock.release()
		return nil, err
	}
	a.lock = lock
	return a, nil
}

// newAgent is New past the checks, with the journal directory locked.
func newAgent(cfg config.Agent, deps Deps, log *slog.Logger) (*Agent, error) {
	plan := terminatePlan(cfg.Terminate)
	j, err := lifecycle.OpenJournal(filepath.Join(cfg.Paths.JournalDir, actionsDir))
	if err != nil {
		return nil, fmt.Errorf("new agent: %w", err)
	}
	steps := deps.Steps
	if steps == nil {
		steps = NewStepRunner(cfg.Paths.JournalDir, log)
	}
	m, err := newMetrics(deps.Build, deps.Metrics...)
	if err != nil {
		return nil, fmt.Errorf("new agent: %w", err)
	}
	a := &Agent{
		cfg:       cfg,
		log:       log,
		md:        deps.Metadata,
		asg:       deps.Group,
		completer: deps.Completer,
		inbox:     deps.Inbox,
		journal:   j,
		plan:      plan,
		client:    newProbeClient(),
		metrics:   m,
		status:    deps.Status,
		sigterm:   deps.SIGTERM,
		parts:     slices.Clone(deps.Components),
		drainCh:   make(chan struct{}),
		wake:      make(chan struct{}, 1),
		settled:   deps.Settled,
		release:   deps.Release,
		waiting:   deps.Waiting,
	}
	for _, p := range cfg.Launch.Probes {
		a.probes = append(a.probes, prober{name: p.Name, cfg: p, client: a.client})
	}
	if cfg.Leader.On() {
		if a.leader, err = newLeader(a, deps.Leader); err != nil {
			return nil, fmt.Errorf("new agent: %w", err)
		}
		// Leadership is handed off before the user's steps run.
		a.plan.Steps = append([]lifecycle.Step{a.leader.handOffStep()}, a.plan.Steps...)
	}
	if cfg.Traffic.On() {
		if a.traffic, err = newTraffic(cfg.Traffic, deps.Traffic, log); err != nil {
			return nil, fmt.Errorf("new agent: %w", err)
		}
		// Drained after the hand-off, before the user's steps.
		at := 0
		if a.leader != nil {
			at = 1
		}
		a.plan.Steps = slices.Insert(a.plan.Steps, at, a.traffic.deregisterStep())
	}
	runner := metered(steps, m)
	a.exec = &lifecycle.Executor{Completer: a.completer, Steps: runner, Journal: j, Log: log, Env: a.stepEnv, Heartbeated: m.heartbeat, Hooks: a.hookDefs.lookup}
	a.noHook = &lifecycle.Executor{Completer: nopCompleter{}, Steps: runner, Journal: j, Log: log, Env: a.stepEnv}
	return a, nil
}

// terminatePlan turns the terminate configuration into a plan.
func terminatePlan(t config.Terminate) lifecycle.Plan {
	p := lifecycle.Plan{Result: lifecycle.Result(t.Result), HeartbeatInterval: time.Duration(t.HeartbeatInterval)}
	for _, s := range t.Steps {
		step := lifecycle.Step{Name: s.Name, Argv: s.Command, Timeout: time.Duration(s.Timeout), Env: s.Env}
		switch s.OnFailure {
		case config.FailureAbandon:
			step.OnFailure = lifecycle.FailAbandon
		case config.FailureContinue:
			step.OnFailure = lifecycle.FailContinue
		default:
			step.OnFailure = lifecycle.FailurePolicy(s.OnFailure)
		}
		switch s.OnInterrupt {
		case config.InterruptRerun:
			step.OnInterrupt = lifecycle.InterruptRerun
		case config.InterruptSkip:
			step.OnInterrupt = lifecycle.InterruptSkip
		default:
			step.OnInterrupt = lifecycle.InterruptPolicy(s.OnInterrupt)
		}
		p.Steps = append(p.Steps, step)
	}
	return p
}

// nopCompleter completes NoHook actions: there is nothing in Auto Scaling
// to heartbeat or complete.
type nopCompleter struct{}

func (nopCompleter) Heartbeat(context.Context, lifecycle.Action) error { return nil }
func (nopCompleter) Complete(context.Context, lifecycle.Action, lifecycle.Result) error {
	return nil
}

// Drain starts the terminate plan as if the transition had been seen, with
// reason sigterm (on_sigterm: drain), and makes Run return once the plan
// has run (see the package documentation). It does not block; calling it
// again does nothing.
func (a *Agent) Drain() {
	a.drainOnce.Do(func() { close(a.drainCh) })
}

// Run runs the agent until ctx ends (it then returns nil: cancellation is
// not an error; running steps go on under their supervisors and the next
// agent resumes from the journal), until the instance's termination has
// been completed (nil: the instance is going away), after Drain until the
// terminate plan has run (nil), or until a SIGTERM with on_sigterm exit
// (nil). Its components run under one owner: the lifecycle loop, the
// status server (Deps.Status), the SIGTERM watcher (Deps.SIGTERM) and
// Deps.Components; when the lifecycle loop returns, or any component
// fails, the others are stopped, and Run returns once every goroutine it
// started has. It returns an error when called twice, when a component
// fails, and with source sqs when the shared queue has a RedrivePolicy
// (wrapping ErrSharedRedrive).
func (a *Agent) Run(ctx context.Context) error {
	if !a.ran.CompareAndSwap(false, true) {
		return errors.New("agent: Run called more than once")
	}
	defer a.Close()
	a.started = time.Now()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer stop() // the lifecycle loop is done: so is the agent
		return a.runLoop(ctx)
	})
	if a.status != nil {
		g.Go(func() error { return a.serveStatus(ctx) })
	}
	if a.sigterm != nil {
		g.Go(func() error { return a.watchSIGTERM(ctx, stop) })
	}
	if a.leader != nil {
		g.Go(func() error { return a.leader.run(ctx) })
	}
	for _, c := range a.parts {
		g.Go(func() error { return c.Run(ctx) })
	}
	return g.Wait()
}

// Close releases the journal directory's lock, for an Agent that is not
// run (Run releases it when it returns); it does not stop Run. Calling it
// again does nothing.
func (a *Agent) Close() {
	a.unlock.Do(func() {
		if a.lock != nil {
			a.lock.release()
		}
	})
}

// watchSIGTERM acts on each SIGTERM as on_sigterm says: drain starts the
// terminate plan (Drain), exit stops the agent (stop); the next agent
// resumes from the journal.
func (a *Agent) watchSIGTERM(ctx context.Context, stop context.CancelFunc) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.sigterm:
		}
		if a.cfg.OnSIGTERM == config.SIGTERMDrain {
			a.log.Info("SIGTERM: draining (on_sigterm: drain)")
			a.Drain()
			continue
		}
		a.log.Info("SIGTERM: exiting; the next agent resumes from the journal (on_sigterm: exit)")
		stop()
		return nil
	}
}

// serveStatus serves Handler on Deps.Status until ctx ends, then shuts the
// server down gracefully (bounded by statusShutdownBound).
func (a *Agent) serveStatus(ctx context.Context) error {
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: statusReadHeaderTimeout}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(a.status) }()
	select {
	case err := <-served:
		return fmt.Errorf("status server on %s: %w", a.status.Addr(), err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusShutdownBound)
	defer cancel()
	_ = srv.Shutdown(shut) // past the bound, open connections are dropped with the process
	<-served
	return nil
}

// runLoop is the lifecycle loop: it observes the instance (IMDS, Auto
// Scaling, the queue), decides, and starts and tracks the lifecycle
// actions, until ctx ends, the termination has completed or a drain has
// run. Every goroutine it starts has returned when it returns.
func (a *Agent) runLoop(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		a.client.CloseIdleConnections()
	}()
	interval := time.Duration(a.cfg.IMDS.PollInterval)
	l := &loop{
		a:       a,
		ctx:     ctx,
		wg:      &wg,
		log:     a.log,
		handled: make(map[lifecycle.Key]bool),
		logged:  make(map[string]bool),
		idRetry: backoff{interval: interval},
		mbRetry: backoff{interval: interval},
		hkRetry: backoff{interval: interval},
	}
	if sqsSource(a.cfg) {
		l.sqs = newSQSLoop(interval)
		// After the actions' goroutines have returned, also when ctx
		// ended just after the last completion (the instance's shutdown
		// SIGTERM): the receiver is stopped knowing how the actions ended.
		defer func() { cancel(); wg.Wait(); l.stopReceiving(); l.closeQueue() }()
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	drain := a.drainCh
	idle := newUpkeep(a.settled, a.release)
	l.poll()
	for {
		l.openQueue()
		if err := l.sqsFatal(); err != nil {
			return err
		}
		l.step()
		l.settleMessages()
		if l.finished() {
			return nil
		}
		if l.settled() {
			idle.settled()
		}
		a.quiet.Store(l.settled() && idle.called)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if l.pollDue() {
				l.poll()
			}
		case <-drain:
			drain = nil
			l.draining = true
			l.log.Info("drain requested", keyReason, string(lifecycle.ReasonSIGTERM))
			a.update(func(s *snapshot) { s.Draining = true })
		case <-a.wake:
		case n := <-l.noticeC():
			l.onNotice(n)
		case <-l.keepC():
			l.keepHeld()
		}
	}
}

// signal wakes Run: an action ended.
func (a *Agent) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}
