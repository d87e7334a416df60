package lb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/lb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const instance = "i-0123456789abcdef0"

var (
	web     = lb.Target{Kind: lb.KindTargetGroup, Name: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef", Port: 8080}
	api     = lb.Target{Kind: lb.KindTargetGroup, Name: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/0123456789abcdef"}
	classic = lb.Target{Kind: lb.KindClassic, Name: "web-classic"}
)

// fakeLB is a load balancer in time: a registered target is initial, then
// healthy healthyAfter later (never when healthyAfter < 0: unhealthy); a
// deregistered one drains for drainFor, then is unused. Targets it was not
// given fail the test; so does any instance but instance. errs are
// returned, once each, by the next Health calls. Safe for concurrent use.
type fakeLB struct {
	t            *testing.T
	healthyAfter time.Duration
	drainFor     time.Duration
	known        map[string]bool // target names; a name set false is gone (not found)

	mu     sync.Mutex
	reg    map[string]time.Time // registered at
	dereg  map[string]time.Time // deregistered at
	errs   []error
	calls  []string
	regs   int
	deregs int
}

func newFake(t *testing.T, healthyAfter, drainFor time.Duration, targets ...lb.Target) *fakeLB {
	f := &fakeLB{t: t, healthyAfter: healthyAfter, drainFor: drainFor, known: map[string]bool{},
		reg: map[string]time.Time{}, dereg: map[string]time.Time{}}
	for _, tg := range targets {
		f.known[tg.Name] = true
	}
	return f
}

func (f *fakeLB) check(op, inst string, t lb.Target) error {
	f.calls = append(f.calls, op+" "+t.String())
	if inst != instance {
		f.t.Errorf("%s(%q), want instance %q", op, inst, instance)
	}
	ok, listed := f.known[t.Name]
	if !listed {
		f.t.Errorf("%s of unexpected target %s", op, t)
	}
	if !ok {
		return fmt.Errorf("target group %s: %w", t.Name, lb.ErrNotFound)
	}
	return nil
}

func (f *fakeLB) Register(_ context.Context, inst string, t lb.Target) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("register", inst, t); err != nil {
		return err
	}
	f.regs++
	if _, ok := f.reg[t.Name]; !ok {
		f.reg[t.Name] = time.Now()
	}
	delete(f.dereg, t.Name)
	return nil
}

func (f *fakeLB) Deregister(_ context.Context, inst string, t lb.Target) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("deregister", inst, t); err != nil {
		return err
	}
	f.deregs++
	if _, ok := f.reg[t.Name]; ok {
		delete(f.reg, t.Name)
		f.dereg[t.Name] = time.Now()
	}
	return nil
}

func (f *fakeLB) Health(_ context.Context, inst string, t lb.Target) (lb.Health, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("health", inst, t); err != nil {
		return lb.Health{}, err
	}
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return lb.Health{}, err
	}
	now := time.Now()
	if at, ok := f.reg[t.Name]; ok {
		switch {
		case f.healthyAfter < 0:
			return lb.Health{State: lb.StateUnhealthy, Reason: "Target.FailedHealthChecks"}, nil
		case now.Sub(at) < f.healthyAfter:
			return lb.Health{State: lb.StateInitial, Reason: "Elb.RegistrationInProgress"}, nil
		}
		return lb.Health{State: lb.StateHealthy}, nil
	}
	if at, ok := f.dereg[t.Name]; ok && now.Sub(at) < f.drainFor {
		return lb.Health{State: lb.StateDraining, Reason: "Target.DeregistrationInProgress"}, nil
	}
	return lb.Health{State: lb.StateUnused, Reason: "Target.NotRegistered"}, nil
}

func TestWaitHealthy(t *testing.T) {
	tests := []struct {
		name         string
		targets      []lb.Target
		healthyAfter time.Duration
		gone         string // a target that does not exist
		errs         []error
		timeout      time.Duration
		wantErr      error // nil, lb.ErrTimeout, lb.ErrNotFound
		wantTook     time.Duration
		wantInErr    string
	}{
		{name: "healthy after the health checks pass", targets: []lb.Target{web}, healthyAfter: 12 * time.Second, timeout: time.Minute, wantTook: 15 * time.Second},
		{name: "every kind healthy in the same read", targets: []lb.Target{web, api, classic}, healthyAfter: 20 * time.Second, timeout: time.Minute, wantTook: 20 * time.Second},
		{name: "already healthy", targets: []lb.Target{web}, timeout: time.Minute},
		{name: "never healthy times out with the last states", targets: []lb.Target{web, classic}, healthyAfter: -1, timeout: 30 * time.Second,
			wantErr: lb.ErrTimeout, wantTook: 30 * time.Second, wantInErr: "not healthy within 30s: targetgroup/web/0123456789abcdef:8080 unhealthy (Target.FailedHealthChecks) elb/web-classic unhealthy"},
		{name: "a failed read is read again", targets: []lb.Target{web}, errs: []error{errors.New("throttled")}, timeout: time.Minute, wantTook: 5 * time.Second},
		{name: "a missing target group fails at once", targets: []lb.Target{web, api}, gone: api.Name, timeout: time.Minute, wantErr: lb.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(t, tt.healthyAfter, 0, tt.targets...)
				if tt.gone != "" {
					f.known[tt.gone] = false
				}
				f.errs = tt.errs
				tr := &lb.Traffic{Registrars: map[lb.Kind]lb.Registrar{lb.KindTargetGroup: f, lb.KindClassic: f}}
				ctx := t.Context()
				if tt.gone == "" {
					if err := tr.Register(ctx, instance, tt.targets); err != nil {
						t.Fatalf("Register: %v", err)
					}
				}
				t0 := time.Now()
				err := tr.WaitHealthy(ctx, instance, tt.targets, tt.timeout)
				if took := time.Since(t0); took != tt.wantTook {
					t.Errorf("WaitHealthy took %v, want %v", took, tt.wantTook)
				}
				if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("WaitHealthy = %v, want %v", err, tt.wantErr)
				}
				if tt.wantInErr != "" && !strings.Contains(err.Error(), tt.wantInErr) {
					t.Errorf("WaitHealthy = %q, want it to contain %q", err, tt.wantInErr)
				}
				var we *lb.WaitError
				if errors.Is(err, lb.ErrTimeout) && (!errors.As(err, &we) || len(we.Last) != len(tt.targets)) {
					t.Errorf("WaitHealthy = %#v, want a *WaitError with every target's last read", err)
				}
			})
		})
	}
}

func TestDeregisterAndWaitDrained(t *testing.T) {
	tests := []struct {
		name       string
		targets    []lb.Target
		registered bool
		drainFor   time.Duration
		gone       string
		timeout    time.Duration
		wantErr    error
		wantTook   time.Duration
	}{
		{name: "drained after the deregistration delay", targets: []lb.Target{web, classic}, registered: true, drainFor: 30 * time.Second, timeout: time.Minute, wantTook: 30 * time.Second},
		{name: "not registered is drained at once", targets: []lb.Target{web}, timeout: time.Minute},
		{name: "a deleted target group has nothing to drain", targets: []lb.Target{web, api}, registered: true, drainFor: 10 * time.Second, gone: api.Name, timeout: time.Minute, wantTook: 10 * time.Second},
		{name: "draining past the bound times out", targets: []lb.Target{web}, registered: true, drainFor: 5 * time.Minute, timeout: time.Minute, wantErr: lb.ErrTimeout, wantTook: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(t, 0, tt.drainFor, tt.targets...)
				tr := &lb.Traffic{Registrars: map[lb.Kind]lb.Registrar{lb.KindTargetGroup: f, lb.KindClassic: f}}
				ctx := t.Context()
				if tt.registered {
					if err := tr.Register(ctx, instance, tt.targets); err != nil {
						t.Fatal(err)
					}
				}
				if tt.gone != "" {
					f.known[tt.gone] = false
				}
				t0 := time.Now()
				if err := tr.Deregister(ctx, instance, tt.targets); err != nil {
					t.Fatalf("Deregister: %v", err)
				}
				err := tr.WaitDrained(ctx, instance, tt.targets, tt.timeout)
				if took := time.Since(t0); took != tt.wantTook {
					t.Errorf("drain took %v, want %v", took, tt.wantTook)
				}
				if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("WaitDrained = %v, want %v", err, tt.wantErr)
				}
				// Deregistering again is harmless: the step runs again after a restart.
				if err := tr.Deregister(ctx, instance, tt.targets); err != nil {
					t.Errorf("second Deregister: %v", err)
				}
			})
		})
	}
}

func TestWaitEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t, -1, 0, web)
		tr := &lb.Traffic{Registrars: map[lb.Kind]lb.Registrar{lb.KindTargetGroup: f}, Interval: time.Second}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(10*time.Second, cancel)
		if err := tr.Register(ctx, instance, []lb.Target{web}); err != nil {
			t.Fatal(err)
		}
		err := tr.WaitHealthy(ctx, instance, []lb.Target{web}, time.Hour)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("WaitHealthy = %v, want context.Canceled", err)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if got := len(f.calls); got != 1+11 { // the registration, then a read a second from 0s to 10s
			t.Errorf("calls = %d %q, want 12", got, f.calls)
		}
	})
}

func TestMissingRegistrar(t *testing.T) {
	tr := &lb.Traffic{Registrars: map[lb.Kind]lb.Registrar{}}
	if err := tr.Register(t.Context(), instance, []lb.Target{classic}); err == nil || !strings.Contains(err.Error(), "no registrar for classic") {
		t.Errorf("Register = %v, want an error naming the missing kind", err)
	}
}

func TestAttachments(t *testing.T) {
	a := lb.Attachments{TargetGroupARNs: []string{web.Name}, LoadBalancerNames: []string{"other"}}
	for _, tt := range []struct {
		t    lb.Target
		want bool
	}{{web, true}, {api, false}, {classic, false}, {lb.Target{Kind: lb.KindClassic, Name: "other"}, true}} {
		if got := a.Attached(tt.t); got != tt.want {
			t.Errorf("Attached(%s) = %v, want %v", tt.t, got, tt.want)
		}
	}
}
