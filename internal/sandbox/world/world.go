// Package world is the owner of the sandbox's Auto Scaling and EC2 state:
// launch configurations and templates, Auto Scaling groups, their instances,
// lifecycle hooks and actions, tags and scaling activities.
//
// Every change goes through a method of World, or of its EC2 side
// (World.EC2: instances as EC2 sees them, EC2 tags, launch templates),
// under the world's mutex and
// appends an Event to the sandbox's shared, ordered log (package
// eventlog). Protocol handlers (package autoscaling, ec2, imds) are
// stateless translators from the wire to these methods; the Host interface
// lets the sandbox boot and stop the processes behind instances.
//
// The world owns no queue, topic or bus. It reaches SQS, SNS and
// EventBridge only through the Messaging interface it declares here, which
// the sandbox wires to the messaging owner.
//
// The world owns no load balancer either: it registers instances with
// target groups and classic load balancers through the Balancers interface,
// wired to the load balancers' owner.
//
// Lock order: the world's lock, then the messaging owner's or the load
// balancers' owner's, then the event log's. The world calls Messaging and
// Balancers while holding its lock (so that PutLifecycleHook's test
// notification, which validates the target, stays synchronous); neither
// calls back into the world under its own lock (Balancers' draining
// callbacks come without any lock and re-enter the world through its
// lock), and the Host is called without the lock.
//
// The behaviour follows AWS as documented in the reference notes on
// lifecycle semantics; every deliberate difference is listed in Deviations.
package world

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// Config sets the world's identity and its few knobs.
type Config struct {
	Region  string // default us-east-1
	Account string // default 123456789012
	// RelaxLimits lowers every time minimum (heartbeat timeout, name-reuse
	// waits, launch back-off) to one second so scenarios run in seconds.
	RelaxLimits bool
	// Seed makes random choices (termination ties, fault sampling) repeatable.
	Seed uint64
	// StopGrace is how long a terminating instance's processes get between
	// SIGTERM and SIGKILL. Default 10 s.
	StopGrace time.Duration
	// Events is the log the world appends to; a log of its own when nil.
	Events *eventlog.Log
	// Messaging delivers Auto Scaling's notifications and events; without
	// it, every notification target is missing.
	Messaging Messaging
	// Balancers registers instances with load balancers and target groups;
	// without it, none exists.
	Balancers Balancers
}

// Messaging is what Auto Scaling needs from SQS, SNS and EventBridge. The
// world calls it with its own lock held: an implementation must never call
// back into the world.
type Messaging interface {
	// Notify delivers a notification body from Auto Scaling to an SQS
	// queue, or publishes it with the subject to an SNS topic, both named by
	// ARN. It fails when the target does not exist.
	Notify(targetARN, subject, body string) error
	// PutAutoScalingEvent puts an aws.autoscaling event on the default
	// EventBridge bus.
	PutAutoScalingEvent(detailType string, resources []string, detail map[string]any)
}

// Host boots and stops what backs an instance (its processes, its IMDS and
// its API port). The world calls it without holding its lock.
type Host interface {
	// Boot starts the instance and returns once it is running.
	Boot(b Boot) error
	// Stop terminates the instance's processes and releases its ports; it
	// returns when they are gone.
	Stop(instanceID string, grace time.Duration) error
	// Console returns the instance's console output so far.
	Console(instanceID string) []byte
}

// Forgetter is a Host that holds something of an instance after Stop
// (its console output): Forget is called, under the world's lock, once
// the instance has aged out of EC2's view, and must not call the world.
type Forgetter interface {
	Forget(instanceID string)
}

// Boot is what a Host needs to start an instance.
type Boot struct {
	InstanceID string
	Group      string
	PrivateIP  string
	UserData   []byte // decoded
}

// World is the simulated AWS account and region. Create it with New; stop
// it with Close, which terminates every instance's processes.
type World struct {
	cfg   Config
	clock simclock.Clock
	host  Host
	log   *slog.Logger

	wg    sync.WaitGroup // host calls and timers in flight
	boots bootQueue      // instances waiting to boot, and their workers

	events *eventlog.Log
	msg    Messaging
	bal    Balancers
	ec2    EC2

	mu      sync.Mutex
	closed  bool
	rng     *rand.Rand
	lcs     map[string]*LaunchConfiguration
	lts     map[string]*LaunchTemplate // by id
	groups  map[string]*Group
	deleted map[string]*Group // deleted groups, for IncludeDeletedGroups
	insts   map[string]*Instance
	ips     ipPool
	// History, kept as long as AWS shows it (history.go).
	acts      history[*Activity]             // the activities of the last six weeks, oldest first
	groupActs map[string]*history[*Activity] // the same by group name
	order     []*Instance                    // instances by launch time, then id; may hold forgotten ones
	forgotten int                            // how many of order are no longer in insts
	instsPeak int                            // the most instances insts held since it was allocated
	gone      history[*Instance]             // terminated instances, in termination order

	healthTimer simclock.Timer // ELB health checks, while a group needs them
}

// New returns an empty world. A nil host runs instances without processes.
func New(cfg Config, clock simclock.Clock, host Host, log *slog.Logger) *World {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "123456789012"
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 10 * time.Second
	}
	if clock == nil {
		clock = simclock.Real{}
	}
	if host == nil {
		host = nopHost{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &World{
		cfg:     cfg,
		clock:   clock,
		host:    host,
		log:     log,
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		lcs:     map[string]*LaunchConfiguration{},
		lts:     map[string]*LaunchTemplate{},
		groups:  map[string]*Group{},
		deleted: map[string]*Group{},
		insts:   map[string]*Instance{},

		groupActs: map[string]*history[*Activity]{},
	}
	w.events, w.msg = cfg.Events, cfg.Messaging
	if w.events == nil {
		w.events = eventlog.New(eventlog.Config{}, clock, log)
	}
	if w.msg == nil {
		w.msg = noMessaging{}
	}
	w.bal = cfg.Balancers
	if w.bal == nil {
		w.bal = noBalancers{}
	}
	w.ec2.w = w
	return w
}

// EC2 is the world's EC2 side: instances as EC2 sees them, their tags, and
// launch templates. It shares the world's state and lock; get it with
// World.EC2.
type EC2 struct {
	w *World
}

// EC2 returns the world's EC2 side.
func (w *World) EC2() *EC2 { return &w.ec2 }

// Region returns the simulated region.
func (w *World) Region() string { return w.cfg.Region }

// Account returns the simulated account id.
func (w *World) Account() string { return w.cfg.Account }

// Close terminates every running instance (without lifecycle hooks, as when
// the account is closed) and waits for all background work to end.
func (w *World) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.wg.Wait()
		return
	}
	w.closed = true
	if w.healthTimer != nil {
		w.healthTimer.Stop()
	}
	w.mu.Unlock()
	// Boots in flight end (the queued ones are skipped), so that every
	// instance booted is among those stopped below.
	w.boots.idle.Wait()
	w.mu.Lock()
	var ids []string
	for id, in := range w.insts {
		if in.EC2State != EC2Terminated {
			ids = append(ids, id)
		}
	}
	w.mu.Unlock()
	var stops sync.WaitGroup
	for _, id := range ids {
		stops.Go(func() { _ = w.host.Stop(id, w.cfg.StopGrace) })
	}
	stops.Wait()
	w.wg.Wait()
}

// minimum returns AWS's minimum for a time limit, or one second when limits
// are relaxed.
func (w *World) minimum(aws int) int {
	if w.cfg.RelaxLimits && aws > 1 {
		return 1
	}
	return aws
}

// after schedules f under the world's lock once d has elapsed on its clock.
// The callback is skipped once the world is closed.
func (w *World) after(d time.Duration, f func()) simclock.Timer {
	return w.clock.AfterFunc(d, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.closed {
			return
		}
		f()
	})
}

// goHost runs a host call in the background, owned by the world's WaitGroup.
func (w *World) goHost(f func()) { w.wg.Go(f) }

// bootWorkers bounds the instances booting at once. A group of 1,000 is
// booted by this many goroutines, not a thousand: the rest wait in order
// in the queue rather than in the scheduler, on the world's lock and in
// threads blocked on system calls (each boot creates files and ports and
// may start a process).
const bootWorkers = 16

// bootQueue holds the boots waiting for a worker.
type bootQueue struct {
	mu      sync.Mutex
	pending []func()
	workers int
	idle    sync.WaitGroup // one per worker running
}

// bootLater queues a boot; a worker runs it. It may be called under the
// world's lock (world → boot queue).
func (w *World) bootLater(f func()) {
	q := &w.boots
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, f)
	if q.workers < bootWorkers {
		q.workers++
		q.idle.Add(1)
		w.wg.Go(w.bootWorker)
	}
}

// bootWorker runs queued boots until none is left.
func (w *World) bootWorker() {
	q := &w.boots
	defer q.idle.Done()
	for {
		q.mu.Lock()
		if len(q.pending) == 0 {
			q.pending = nil // the drained array goes
			q.workers--
			q.mu.Unlock()
			return
		}
		f := q.pending[0]
		q.pending[0] = nil
		q.pending = q.pending[1:]
		q.mu.Unlock()
		f()
	}
}

// noMessaging is the Messaging of a world wired to none: every target is
// missing and events go nowhere.
type noMessaging struct{}

func (noMessaging) Notify(target, _, _ string) error {
	return fmt.Errorf("%s does not exist: this sandbox has no SQS, SNS or EventBridge", target)
}
func (noMessaging) PutAutoScalingEvent(string, []string, map[string]any) {}

type nopHost struct{}

func (nopHost) Boot(Boot) error                  { return nil }
func (nopHost) Stop(string, time.Duration) error { return nil }
func (nopHost) Console(string) []byte            { return nil }
