// Package sandbox is lifeguard's local AWS: one HTTP listener that speaks
// the real wire protocols of Auto Scaling, EC2, SQS (JSON and query), SNS
// and EventBridge, an Auto Scaling simulator whose instances are local
// processes running their user data, a per-instance IMDSv2, fault
// injection and an event log.
//
// The Server wires the state owners together: the event log they all
// append to (eventlog), the world (Auto Scaling and EC2) and the messaging
// broker (SQS, SNS, EventBridge), which the world reaches only through its
// Messaging interface. Lock order: world → messaging → event log; see
// docs/architecture.md. Lambda's functions owner is reached by the broker
// through its Invoker interface, never under the broker's lock, so its
// lock is taken inside no other owner's (functions → event log).
//
// It shares no code with lifeguard's client side and none with the AWS
// SDK's generated serializers: the two meet only on the wire.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/autoscaling"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/balancers"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/dynamodb"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/ec2"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/elb"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/elbv2"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/events"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/functions"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/instance"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/lambda"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/lbproxy"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sns"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sqs"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/tables"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// DefaultListen is the sandbox's default address (LocalStack's port, which
// AWS tooling users already know).
const DefaultListen = "127.0.0.1:4566"

// Config configures a sandbox.
type Config struct {
	// Listen is the API address; DefaultListen when empty. Port 0 picks one.
	// It must be a loopback address unless AllowNonLoopback is set.
	Listen string
	// AllowNonLoopback accepts a Listen address other networks can reach.
	// Whoever reaches the API can create instances whose user data runs on
	// this host as the sandbox's user: set it only on a network you trust.
	AllowNonLoopback bool
	// StateDir holds instance working directories,
	// StateDir/instances/<instance-id>/. It must be empty or not exist yet
	// (it is created), so that one run's instances never find another's
	// files; it is kept after Close. When empty, a temporary directory is
	// used and removed on Close.
	StateDir string
	// Region and Account of the simulated account (us-east-1, 123456789012).
	Region, Account string
	// RelaxLimits lowers every time minimum to one second.
	RelaxLimits bool
	// Seed makes random choices and fault sampling repeatable.
	Seed uint64
	// NoProcesses gives instances IMDS and API ports but runs no user data.
	NoProcesses bool
	// InMemory opens no socket: the API, and each instance's API and IMDS,
	// are reached through Transport, and no user data runs (NoProcesses).
	// Listen is ignored. A sandbox built in memory inside a testing/synctest
	// bubble runs on the bubble's clock: AWS's real timeouts pass in
	// microseconds.
	InMemory bool
	// StopGrace is the SIGTERM→SIGKILL grace for terminating instances (10 s).
	StopGrace time.Duration
	// FunctionIdle stops a Lambda execution environment idle this long
	// (5 minutes).
	FunctionIdle time.Duration
	// Logger receives the sandbox's logs; discarded when nil.
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Listen != "" && !c.InMemory {
		host, _, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return fmt.Errorf("listen: %q is not host:port (for example 127.0.0.1:4566): %w", c.Listen, err)
		}
		if !c.AllowNonLoopback && !loopback(host) {
			return fmt.Errorf("listen: %q is not a loopback address: whoever reaches the API can run code on this host as this user (user data runs as the sandbox's own processes); use 127.0.0.1:PORT, or pass --allow-non-loopback to expose it on purpose", c.Listen)
		}
	}
	if c.StateDir != "" {
		if err := checkStateDir(c.StateDir); err != nil {
			return err
		}
	}
	if c.Account != "" {
		if len(c.Account) != 12 || !allDigits(c.Account) {
			return fmt.Errorf("account: %q is not a 12-digit AWS account id", c.Account)
		}
	}
	if c.Region != "" && !regionPattern(c.Region) {
		return fmt.Errorf("region: %q is not a region name such as us-east-1", c.Region)
	}
	if c.StopGrace < 0 {
		return fmt.Errorf("stop-grace: %s is negative; give the time between SIGTERM and SIGKILL, such as 10s", c.StopGrace)
	}
	return nil
}

// loopback reports whether a listen host is reachable from this host only.
// An empty host is every interface.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkStateDir accepts a state directory that does not exist yet or is
// empty: instance ids repeat across runs with the same seed, so a second
// run in the same directory would find the first run's files and
// journals in its instances' directories.
func checkStateDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("state-dir: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("state-dir: %s is not empty (it holds %s): instance ids repeat across runs, so this run's instances would find files and journals that are not theirs; remove it, or name a new directory for each run", dir, entries[0].Name())
	}
	return nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func regionPattern(s string) bool {
	// two letters, dashes, a word, a digit: us-east-1, ap-southeast-2, us-gov-west-1
	n := len(s)
	return n >= 9 && s[2] == '-' && s[n-2] == '-' && s[n-1] >= '0' && s[n-1] <= '9'
}

// Server is a running sandbox. Create it with New, then Listen and Run, or
// use Handler directly (in-memory transports in tests).
type Server struct {
	cfg     Config
	log     *slog.Logger
	clock   *simclock.Sim
	events  *eventlog.Log
	msg     *messaging.Broker
	tables  *tables.Tables
	fns     *functions.Functions
	world   *world.World
	lbs     *balancers.Balancers
	proxy   *lbproxy.Proxy // the load balancers' data plane; nil in memory
	host    *host
	faults  *faults
	handler http.Handler

	advanceMu sync.Mutex // one clock advance at a time: the overflow check and the advance are one step

	tempDir bool
	ln      net.Listener
	mem     *memNet // InMemory

	closeOnce sync.Once
}

// New builds a sandbox: its world, services and admin API. Nothing listens
// until Listen.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "123456789012"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, clock: simclock.NewSim(), faults: newFaults(cfg.Seed)}
	if cfg.StateDir == "" {
		dir, err := os.MkdirTemp("", "lifeguard-sandbox-")
		if err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		s.cfg.StateDir, s.tempDir = dir, true
	} else if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", cfg.StateDir, err)
	}
	s.host = &host{dir: s.cfg.StateDir, region: cfg.Region, log: log, processes: !cfg.NoProcesses && !cfg.InMemory}
	if s.host.processes {
		s.host.sup = instance.NewSupervisor(filepath.Join(s.cfg.StateDir, "instances"), log)
	}
	if cfg.InMemory {
		s.mem = &memNet{}
		s.host.mem = s.mem
	}
	s.events = eventlog.New(eventlog.Config{}, s.clock, log)
	s.msg = messaging.New(messaging.Config{
		Region: cfg.Region, Account: cfg.Account, RelaxLimits: cfg.RelaxLimits, Seed: cfg.Seed,
	}, s.clock, s.events, log)
	retry := [2]time.Duration{time.Minute, 2 * time.Minute}
	if cfg.RelaxLimits {
		retry = [2]time.Duration{time.Second, time.Second}
	}
	s.fns = functions.New(functions.Config{
		Region: cfg.Region, Account: cfg.Account, Dir: filepath.Join(s.cfg.StateDir, "functions"),
		Processes: !cfg.NoProcesses && !cfg.InMemory, Endpoint: s.Endpoint, IdleTimeout: cfg.FunctionIdle,
		RetryDelays: retry, Events: s.events, Logger: log, Seed: cfg.Seed,
	}, s.clock)
	s.msg.SetInvoker(s.fns) // SNS lambda subscriptions and EventBridge Lambda targets
	s.tables = tables.New(tables.Config{Region: cfg.Region, Account: cfg.Account}, s.clock, tableEvents{s.events})
	s.lbs = balancers.New(s.balancersConfig(), s.clock, s.events, log)
	if s.mem == nil {
		s.proxy = lbproxy.New(s.lbs, "127.0.0.1")
		if err := s.lbs.SetDataPlane(s.proxy); err != nil {
			return nil, err
		}
	}
	s.world = world.New(world.Config{
		Region: cfg.Region, Account: cfg.Account, RelaxLimits: cfg.RelaxLimits, Seed: cfg.Seed, StopGrace: cfg.StopGrace,
		Events: s.events, Messaging: s.msg, Balancers: s.lbs,
	}, s.clock, s.host, log)
	s.host.src = s.world
	queues := sqs.New(s.msg.Queues())
	rt := &router{byVersion: map[string]*service{}, byTarget: map[string]*service{}, byPath: map[string]*service{}, faults: s.faults, admin: s.adminHandler()}
	for _, svc := range []*service{
		{name: "autoscaling", version: "2011-01-01", throttle: "Throttling", handler: autoscaling.New(s.world)},
		{name: "ec2", version: "2016-11-15", throttle: "RequestLimitExceeded", handler: ec2.New(s.world)},
		// SQS speaks both protocols: JSON for current SDKs, query for older clients.
		{name: "sqs", target: sqs.TargetPrefix, throttle: "RequestThrottled", handler: queues.JSON()},
		{name: "sqs", version: "2012-11-05", throttle: "RequestThrottled", handler: queues.Query()},
		{name: "sns", version: "2010-03-31", throttle: "Throttling", handler: sns.New(s.msg.Topics())},
		{name: "events", target: events.TargetPrefix, throttle: "ThrottlingException", handler: events.New(s.msg.Buses())},
		{name: "dynamodb", target: dynamodb.TargetPrefix, throttle: "ThrottlingException", handler: dynamodb.New(s.tables)},
		// ELBv2 and classic ELB share a signing name: only Version tells them apart.
		{name: "elbv2", version: elbv2.Version, throttle: "Throttling", handler: elbv2.New(s.lbs)},
		{name: "elb", version: elb.Version, throttle: "Throttling", handler: elb.New(s.lbs)},
		{name: "lambda", paths: lambda.PathPrefixes, throttle: "TooManyRequestsException", handler: lambda.New(s.fns, s.Endpoint)},
	} {
		if svc.version != "" {
			rt.byVersion[svc.version] = svc
		}
		if svc.target != "" {
			rt.byTarget[svc.target] = svc
		}
		for _, p := range svc.paths {
			rt.byPath[p] = svc
		}
	}
	s.handler = rt
	s.host.api = rt
	if s.mem != nil {
		s.mem.handle(memDomain, rt)
	}
	return s, nil
}

// Transport reaches an in-memory sandbox (Config.InMemory): its Endpoint
// and the endpoints of its running instances' API and IMDS. It is nil for
// a sandbox that listens.
func (s *Server) Transport() http.RoundTripper {
	if s.mem == nil {
		return nil
	}
	return s.mem
}

// ServeInMemory makes h answer the requests for host ("10.0.0.5:8080",
// an instance's private address and port) on an in-memory sandbox's
// network (Config.InMemory): a test stands in for an instance's app, so
// that load balancer health checks find it. It fails on a sandbox that
// listens, whose instances serve on real sockets.
func (s *Server) ServeInMemory(host string, h http.Handler) error {
	if s.mem == nil {
		return errors.New("ServeInMemory needs an in-memory sandbox (Config.InMemory)")
	}
	s.mem.handle(host, h)
	return nil
}

// Handler returns the sandbox's HTTP handler (every service and /_sandbox/).
func (s *Server) Handler() http.Handler { return s.handler }

// World returns the Auto Scaling and EC2 state (for the demo and tests).
func (s *Server) World() *world.World { return s.world }

// Messaging returns the SQS, SNS and EventBridge state (for tests).
func (s *Server) Messaging() *messaging.Broker { return s.msg }

// Functions returns the Lambda state (for tests).
func (s *Server) Functions() *functions.Functions { return s.fns }

// Balancers returns the load balancers' state (for tests).
func (s *Server) Balancers() *balancers.Balancers { return s.lbs }

// Tables returns the DynamoDB state (for tests).
func (s *Server) Tables() *tables.Tables { return s.tables }

// tableEvents records the tables owner's events in the shared log: table
// changes as control events, item writes as counted data-plane traffic.
type tableEvents struct{ log *eventlog.Log }

func (r tableEvents) Control(kind string, attrs map[string]string) {
	r.log.Append(eventlog.Event{Service: "dynamodb", Kind: kind, Resource: attrs["table"], Attrs: attrs})
}

func (r tableEvents) Data(kind string) {
	r.log.AppendData(eventlog.Event{Service: "dynamodb", Kind: kind})
}

// Events returns the event log every state owner appends to.
func (s *Server) Events() *eventlog.Log { return s.events }

// Clock returns the sandbox's clock, which Advance pushes forward.
func (s *Server) Clock() *simclock.Sim { return s.clock }

// StateDir returns the directory holding instance working directories.
func (s *Server) StateDir() string { return s.cfg.StateDir }

// Listen binds the API address and returns the endpoint URL; in memory it
// binds nothing.
func (s *Server) Listen() (string, error) {
	if s.mem != nil {
		return s.Endpoint(), nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	return s.Endpoint(), nil
}

// Endpoint returns the API endpoint URL once listening (in memory: a host
// only Transport reaches). For a listener on every interface (0.0.0.0,
// [::]) it is the loopback URL, which this host reaches; Addresses lists
// the others.
func (s *Server) Endpoint() string {
	if s.mem != nil {
		return "http://" + memDomain
	}
	if s.ln == nil {
		return ""
	}
	ap := s.addrPort()
	if ap.Addr().IsUnspecified() {
		return "http://" + netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ap.Port()).String()
	}
	return "http://" + s.ln.Addr().String()
}

func (s *Server) addrPort() netip.AddrPort {
	if a, ok := s.ln.Addr().(*net.TCPAddr); ok {
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// Addresses returns every URL the API is reachable at: the endpoint
// first, then, for a listener on every interface, one per address of this
// host's interfaces (IPv6 link-local addresses left out). It is empty
// before Listen.
func (s *Server) Addresses() []string {
	ep := s.Endpoint()
	if ep == "" || s.mem != nil {
		return nil
	}
	out := []string{ep}
	ap := s.addrPort()
	if !ap.Addr().IsUnspecified() {
		return out
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || (ap.Addr().Is4() && !ip.Is4()) {
			continue
		}
		out = append(out, "http://"+netip.AddrPortFrom(ip, ap.Port()).String())
	}
	return out
}

// Run serves until ctx ends, then shuts down: it stops taking requests,
// terminates every instance (processes included) and removes a temporary
// state directory. Call Listen first.
func (s *Server) Run(ctx context.Context) error {
	if s.mem != nil {
		<-ctx.Done()
		s.Close()
		return nil
	}
	if s.ln == nil {
		return errors.New("sandbox: Run before Listen")
	}
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shut); serr != nil {
		_ = srv.Close()
	}
	if err == nil {
		err = <-errc
	}
	s.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Start listens and serves in a goroutine of its own until stop is
// called. stop shuts the sandbox down as Run does when its context ends,
// waits for it and returns Run's error; calling it again returns the same
// error. When Listen fails, the sandbox is closed.
func (s *Server) Start() (endpoint string, stop func() error, err error) {
	endpoint, err = s.Listen()
	if err != nil {
		s.Close()
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var runErr error
	return endpoint, func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}, nil
}

// Close terminates every instance and removes a temporary state directory.
// It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.world.Close()
		s.host.close()     // after the world, which stops every instance
		s.closeBalancers() // after the world, which registers instances
		s.msg.Close()
		s.fns.Close() // after the broker, which invokes functions
		s.tables.Close()
		if s.tempDir {
			_ = os.RemoveAll(s.cfg.StateDir)
		}
	})
}
