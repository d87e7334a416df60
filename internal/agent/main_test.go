package agent_test

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
	"github.com/lifeguardhq/lifeguard/internal/proc"
)

func TestMain(m *testing.M) {
	proc.Main()
	goleak.VerifyTestMain(m)
}

const (
	instanceID = "i-0123456789abcdef0"
	groupName  = "web"
)

// fakeMetadata is a scriptable instance metadata service: tests change
// the target state and the spot notice as the instance would see them. Safe
// for concurrent use.
type fakeMetadata struct {
	mu        sync.Mutex
	target    string
	spot      *agent.SpotNotice
	lifeCycle string // instance-life-cycle; "" as from an IMDS without it
	// calls counts the calls by path.
	calls map[string]int
}

func (m *fakeMetadata) count(path string) {
	if m.calls == nil {
		m.calls = map[string]int{}
	}
	m.calls[path]++
}

// callCounts returns the calls so far by path.
func (m *fakeMetadata) callCounts() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.calls)
}

var _ agent.Metadata = (*fakeMetadata)(nil)

func (m *fakeMetadata) InstanceID(context.Context) (string, error) { return instanceID, nil }

func (m *fakeMetadata) TargetLifecycleState(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count("autoscaling/target-lifecycle-state")
	return m.target, nil
}

func (m *fakeMetadata) SpotInterruption(context.Context) (*agent.SpotNotice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count("spot/instance-action")
	return m.spot, nil
}

func (m *fakeMetadata) LifeCycle(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count("instance-life-cycle")
	return m.lifeCycle, nil
}

func (m *fakeMetadata) setTarget(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.target = s
}

func (m *fakeMetadata) setSpot(n *agent.SpotNotice) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.spot = n
}

// fakeGroup is a scriptable Auto Scaling: the instance's lifecycle state
// and the group's hooks. The instance is not listed while notListed > 0
// (each call counts it down). A call about another instance or group fails
// the test. Safe for concurrent use.
type fakeGroup struct {
	t         testing.TB
	mu        sync.Mutex
	state     string
	hooks     []lifecycle.Hook
	notListed int
	instances int // calls to Instance
	hookCalls int // calls to Hooks
	// hooksDelay is how long Hooks takes (simulated time); set it before
	// the agent starts.
	hooksDelay time.Duration
}

var _ agent.Group = (*fakeGroup)(nil)

func (g *fakeGroup) Instance(_ context.Context, id string) (agent.Membership, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.instances++
	if id != instanceID {
		g.t.Errorf("Instance(%q), want %q", id, instanceID)
	}
	if g.notListed > 0 {
		g.notListed--
		return agent.Membership{}, agent.ErrNotInGroup
	}
	return agent.Membership{Group: groupName, LifecycleState: g.state}, nil
}

func (g *fakeGroup) Hooks(_ context.Context, group string) ([]lifecycle.Hook, error) {
	time.Sleep(g.hooksDelay)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hookCalls++
	if group != groupName {
		g.t.Errorf("Hooks(%q), want %q", group, groupName)
	}
	return slices.Clone(g.hooks), nil
}

func (g *fakeGroup) setState(s string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.state = s
}

func (g *fakeGroup) setHooks(hooks ...lifecycle.Hook) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hooks = hooks
}

func (g *fakeGroup) calls() (instances, hooks int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.instances, g.hookCalls
}

func launchHook(name string, timeout time.Duration) lifecycle.Hook {
	return lifecycle.Hook{Name: name, Transition: lifecycle.TransitionLaunching, HeartbeatTimeout: timeout, DefaultResult: lifecycle.Abandon}
}

func terminateHook(name string, timeout time.Duration) lifecycle.Hook {
	return lifecycle.Hook{Name: name, Transition: lifecycle.TransitionTerminating, HeartbeatTimeout: timeout, DefaultResult: lifecycle.Continue, NotificationMetadata: "meta-" + name}
}

// newConfig returns the default configuration with a journal in a fresh
// directory.
func newConfig(t *testing.T) config.Agent {
	c := config.DefaultAgent()
	c.Paths.JournalDir = t.TempDir()
	return c
}

// step returns a terminate step of the configuration.
func step(name string) config.Step {
	return config.Step{Name: name, Command: []string{"/usr/local/bin/" + name}, Timeout: config.Duration(time.Hour),
		OnFailure: config.FailureContinue, OnInterrupt: config.InterruptRerun}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newAgent(t *testing.T, cfg config.Agent, deps agent.Deps) *agent.Agent {
	t.Helper()
	a, err := agent.New(cfg, deps, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// running is an Agent's Run in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	at     time.Time // when Run returned
}

func start(t *testing.T, a *agent.Agent) *running {
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = a.Run(ctx)
		r.at = time.Now()
	}()
	return r
}

// returned reports whether Run has returned (call after synctest.Wait, or
// wait for it with stop).
func (r *running) returned() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// stop cancels Run and waits for it; it returns Run's error.
func (r *running) stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// offsets returns when each call happened, relative to t0.
func offsets(t0 time.Time, calls []lifecycletest.Call) []time.Duration {
	out := []time.Duration{}
	for _, c := range calls {
		out = append(out, c.At.Sub(t0))
	}
	return out
}

func startOffsets(t0 time.Time, calls []lifecycletest.StepCall) []time.Duration {
	out := []time.Duration{}
	for _, c := range calls {
		if c.Op == "start" {
			out = append(out, c.At.Sub(t0))
		}
	}
	return out
}

// envOf returns the LIFEGUARD_* and other added variables of the first
// Start of step name, as a map.
func envOf(t *testing.T, calls []lifecycletest.StepCall, name string) map[string]string {
	t.Helper()
	for _, c := range calls {
		if c.Op == "start" && c.ID.Step == name {
			env := map[string]string{}
			for _, kv := range c.Env {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			return env
		}
	}
	t.Fatalf("step %s was not started", name)
	return nil
}

// noCalls is a Completer that fails the test on any call.
func noCalls(t *testing.T) *lifecycletest.Completer { return &lifecycletest.Completer{T: t} }

func okCompleter(t *testing.T) *lifecycletest.Completer {
	return &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK, OnComplete: lifecycletest.CompleteOK}
}
