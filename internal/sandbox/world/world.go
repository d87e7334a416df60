// Package world is the single owner of the sandbox's simulated AWS state:
// launch configurations and templates, Auto Scaling groups, their instances,
// lifecycle hooks and actions, tags and scaling activities.
//
// Every change goes through a World method under one mutex and appends an
// Event to an ordered log. Protocol handlers (package autoscaling, ec2, …)
// are stateless translators from the wire to these methods; the Host
// interface lets the sandbox boot and stop the processes behind instances.
//
// The behaviour follows AWS as documented in the reference notes on
// lifecycle semantics; every deliberate difference is listed in Deviations.
package world

import (
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

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

	wg sync.WaitGroup // host calls and timers in flight

	mu      sync.Mutex
	closed  bool
	rng     *rand.Rand
	events  eventLog
	lcs     map[string]*LaunchConfiguration
	lts     map[string]*LaunchTemplate // by id
	groups  map[string]*Group
	deleted map[string]*Group // deleted groups, for IncludeDeletedGroups
	insts   map[string]*Instance
	ips     ipPool
	acts    []*Activity // all activities, oldest first

	sqs sqsState
	sns snsState
	bus busState
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
	}
	w.events.changed = make(chan struct{})
	w.sqs.init()
	w.sns.init()
	w.bus.init()
	return w
}

// Region returns the simulated region.
func (w *World) Region() string { return w.cfg.Region }

// Account returns the simulated account id.
func (w *World) Account() string { return w.cfg.Account }

// Now returns the world's current time.
func (w *World) Now() time.Time { return w.clock.Now() }

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

type nopHost struct{}

func (nopHost) Boot(Boot) error                  { return nil }
func (nopHost) Stop(string, time.Duration) error { return nil }
func (nopHost) Console(string) []byte            { return nil }
