// Package balancers is the sandbox's owner of load balancers: ELBv2
// application load balancers, their listeners and target groups with the
// targets' health, and classic ELBs with their instances. It runs the
// health checks (real HTTP GETs, or TCP connects for a classic TCP
// target, on each group's interval) and decides, for the data plane
// (package lbproxy), which target serves each request: round robin over
// the healthy ones, none to a draining target.
//
// Every change goes through a method of Balancers under its one mutex and
// appends to the sandbox's event log: load balancers, target groups,
// listeners, registrations and health changes to the control stream,
// proxied requests to the data stream (counted per kind; per-target counts
// are in Stats).
//
// Lock order: world's lock, then this owner's, then the data plane's, then
// the event log's. The world calls the methods of world.go (Register,
// Deregister, Healthy, Check*) while holding its own lock; this owner
// never calls the world while holding its lock (Config.Resolve is called
// before the lock is taken) and calls done callbacks without it. The data
// plane's Open and Close are called under this owner's lock; the data
// plane never holds its own lock when calling Route.
package balancers

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// Config sets the owner's identity and how it reaches targets.
type Config struct {
	Region  string // default us-east-1
	Account string // default 123456789012
	// Seed makes ids repeatable.
	Seed uint64
	// Resolve returns an EC2 instance's private IP and EC2 state
	// ("running", …), ok false when the instance does not exist. It is
	// called without the owner's lock (it reaches the world). Nil: every
	// instance id is unknown.
	Resolve func(instanceID string) (privateIP, state string, ok bool)
	// Transport sends the HTTP health checks; a transport of the owner's
	// own when nil.
	Transport http.RoundTripper
	// Dial makes the TCP health checks of classic ELBs; a net.Dialer when
	// nil.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DataPlane opens and closes the listening side of a listener: package
// lbproxy implements it. Open returns the address clients connect to.
// Both are called under the owner's lock; the data plane must not call the
// owner from them.
type DataPlane interface {
	Open(key string) (addr string, err error)
	Close(key string)
}

// Balancers owns the sandbox's load balancers. Create it with New; stop it
// with Close, which waits for health checks in flight.
type Balancers struct {
	cfg    Config
	clock  simclock.Clock
	events *eventlog.Log
	log    *slog.Logger
	client *http.Client
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	ctx    context.Context // ends at Close: health checks in flight stop
	cancel context.CancelFunc

	wg sync.WaitGroup // health checks in flight

	mu        sync.Mutex
	closed    bool
	rng       *rand.Rand
	dp        DataPlane
	lbs       map[string]*loadBalancer // by ARN
	tgs       map[string]*targetGroup  // by ARN
	listeners map[string]*listener     // by ARN
	classics  map[string]*classic      // by name
	keys      map[string]route         // data-plane key → listener
	regs      uint64                   // the last member's registration number
}

// route is what a data-plane key serves: an ALB listener or a classic
// listener.
type route struct {
	listener *listener
	classic  *classic
	port     int     // classic: the instance port
	counts   *counts // classic: the listener's counts
}

// New returns an empty owner appending to events (a log of its own when
// nil), on clock (real time when nil).
func New(cfg Config, clock simclock.Clock, events *eventlog.Log, log *slog.Logger) *Balancers {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "123456789012"
	}
	if clock == nil {
		clock = simclock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if events == nil {
		events = eventlog.New(eventlog.Config{}, clock, log)
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{Proxy: nil, DisableKeepAlives: true}
	}
	dial := cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Balancers{
		cfg: cfg, clock: clock, events: events, log: log,
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		dial:   dial, ctx: ctx, cancel: cancel,
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x510e527fade682d1)),
		lbs:       map[string]*loadBalancer{},
		tgs:       map[string]*targetGroup{},
		listeners: map[string]*listener{},
		classics:  map[string]*classic{},
		keys:      map[string]route{},
	}
}

// SetDataPlane connects the data plane: listeners created from now on
// are opened on it. Listeners that exist already are opened now.
func (b *Balancers) SetDataPlane(dp DataPlane) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dp = dp
	for _, l := range b.listeners {
		if err := b.openLocked(l.ARN, &l.Address); err != nil {
			return err
		}
	}
	for _, c := range b.classics {
		for i := range c.Listeners {
			if err := b.openLocked(c.key(c.Listeners[i].LoadBalancerPort), &c.Listeners[i].Address); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *Balancers) openLocked(key string, addr *string) error {
	if b.dp == nil {
		return nil
	}
	a, err := b.dp.Open(key)
	if err != nil {
		return fmt.Errorf("open the listener's loopback port: %w", err)
	}
	*addr = a
	return nil
}

func (b *Balancers) closeKeyLocked(key string) {
	delete(b.keys, key)
	if b.dp != nil {
		b.dp.Close(key)
	}
}

// Close stops health checks and timers, waits for checks in flight, and
// calls every pending deregistration's done callback.
func (b *Balancers) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	var done []func()
	for _, tg := range b.tgs {
		for _, t := range tg.targets {
			t.stop()
			done = append(done, t.waiters...)
			t.waiters = nil
		}
	}
	for _, c := range b.classics {
		for _, in := range c.instances {
			in.stop()
			done = append(done, in.waiters...)
			in.waiters = nil
		}
	}
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
	for _, f := range done {
		f()
	}
}

// Log returns the event log the owner appends to.
func (b *Balancers) Log() *eventlog.Log { return b.events }

// after schedules f under the owner's lock once d has elapsed on its
// clock; f returns callbacks to call once the lock is released. The
// callback is skipped once the owner is closed.
func (b *Balancers) after(d time.Duration, f func() []func()) simclock.Timer {
	return b.clock.AfterFunc(d, func() {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return
		}
		calls := f()
		b.mu.Unlock()
		for _, c := range calls {
			c()
		}
	})
}

// Event kinds. docs/sandbox.md lists them.
const (
	EvELBv2   = "elbv2"      // a load balancer, target group or listener created, changed or deleted
	EvTarget  = "lb-target"  // a target or instance registered, deregistered, drained, or its health changed
	EvELB     = "elb"        // a classic load balancer created, changed or deleted
	EvRequest = "lb-request" // (data) a request proxied by a load balancer
	// EvHealthCheck (data) is one health check sent: Result is "ok" or the
	// reason it failed.
	EvHealthCheck = "lb-health-check"
)

func (b *Balancers) control(service, kind, resource, instance, detail string, attrs map[string]string) {
	b.events.Append(eventlog.Event{Service: service, Kind: kind, Resource: resource, Instance: instance, Detail: detail, Attrs: attrs})
}

func (b *Balancers) hexLocked(n int) string {
	const hexd = "0123456789abcdef"
	var s strings.Builder
	for range n {
		s.WriteByte(hexd[b.rng.IntN(16)])
	}
	return s.String()
}

func (b *Balancers) digitsLocked(n int) string {
	var s strings.Builder
	s.WriteByte(byte('1' + b.rng.IntN(9)))
	for range n - 1 {
		s.WriteByte(byte('0' + b.rng.IntN(10)))
	}
	return s.String()
}

func (b *Balancers) arn(resource string) string {
	return "arn:aws:elasticloadbalancing:" + b.cfg.Region + ":" + b.cfg.Account + ":" + resource
}

// subnetZone maps a subnet to zone a, b or c of the region as the world
// does (FNV-1a of the id modulo 3), so a subnet lands in the same zone
// for instances and load balancers.
func (b *Balancers) subnetZone(subnet string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(subnet))
	return b.cfg.Region + string(rune('a'+h.Sum32()%3))
}

// resolve looks instances up without the owner's lock.
func (b *Balancers) resolve(id string) (ip, state string, ok bool) {
	if b.cfg.Resolve == nil {
		return "", "", false
	}
	return b.cfg.Resolve(id)
}
