package balancers_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/balancers"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitBound = 10 * time.Second

// healthyBackend answers 200 on 127.0.0.N until the test ends.
func healthyBackend(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), ReadHeaderTimeout: time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).Port
}

func newOwner(t *testing.T) (*balancers.Balancers, *simclock.Sim, *eventlog.Log) {
	t.Helper()
	clock := simclock.NewSim()
	log := eventlog.New(eventlog.Config{}, clock, nil)
	b := balancers.New(balancers.Config{}, clock, log, nil)
	t.Cleanup(b.Close)
	return b, clock, log
}

// waitChecks waits for n more health checks of resource after *seq.
func waitChecks(t *testing.T, log *eventlog.Log, seq *int64, resource string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	for n > 0 {
		evs, err := log.Wait(ctx, *seq, eventlog.All)
		if err != nil {
			t.Fatalf("waiting for %d health checks of %s: %v", n, resource, err)
		}
		for _, e := range evs {
			*seq = e.Seq
			if e.Kind == balancers.EvHealthCheck && e.Resource == resource {
				n--
			}
		}
	}
}

// TestWorldInterface drives what Auto Scaling calls: checks, registration
// at the group's port, health known only after the checks, and
// deregistration whose done waits for the request in flight up to the
// delay.
func TestWorldInterface(t *testing.T) {
	b, clock, log := newOwner(t)
	port := healthyBackend(t, "127.0.0.41")
	lb, err := b.CreateLoadBalancer(balancers.CreateLoadBalancerInput{Name: "web", Subnets: []string{"subnet-a1", "subnet-b2", "subnet-c3", "subnet-d4"}})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := b.CreateTargetGroup(balancers.CreateTargetGroupInput{Name: "web", Protocol: "HTTP", Port: port, VPCID: "vpc-1",
		HealthCheck: balancers.HealthCheck{Interval: 5, Timeout: 2, HealthyThreshold: 2}, Set: map[string]bool{"HealthCheckIntervalSeconds": true, "HealthCheckTimeoutSeconds": true, "HealthyThresholdCount": true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateListener(lb.ARN, "HTTP", 80, "forward", tg.ARN); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ModifyTargetGroupAttributes(tg.ARN, []balancers.Tag{{Key: "deregistration_delay.timeout_seconds", Value: "30"}}); err != nil {
		t.Fatal(err)
	}

	if err := b.CheckTargetGroups([]string{tg.ARN}); err != nil {
		t.Errorf("CheckTargetGroups of an existing group: %v", err)
	}
	if err := b.CheckTargetGroups([]string{tg.ARN, tg.ARN + "0"}); err == nil || err.Error() != "TargetGroupNotFound: One or more target groups not found" {
		t.Errorf("CheckTargetGroups of a missing group: %v", err)
	}
	if err := b.CheckLoadBalancers([]string{"nope"}); err == nil || err.Error() != "LoadBalancerNotFound: There is no ACTIVE Load Balancer named 'nope'" {
		t.Errorf("CheckLoadBalancers of a missing one: %v", err)
	}

	var seq int64
	b.Register([]string{tg.ARN}, nil, "i-1", "127.0.0.41")
	if _, known := b.Healthy([]string{tg.ARN}, nil, "i-1"); known {
		t.Error("health known before any check")
	}
	th, _ := b.TargetHealth(tg.ARN, nil)
	if len(th) != 1 || th[0].Port != port {
		t.Fatalf("registered at the group's port: %+v", th)
	}
	waitChecks(t, log, &seq, tg.ARN, 1)
	clock.Advance(5 * time.Second)
	waitChecks(t, log, &seq, tg.ARN, 1)
	if healthy, known := b.Healthy([]string{tg.ARN}, nil, "i-1"); !healthy || !known {
		t.Fatalf("after two passing checks: healthy %v, known %v", healthy, known)
	}

	// A request in flight holds the deregistration for the delay at most.
	p, ok := b.Route(lbListener(t, b, lb.ARN))
	if !ok || p.Target != "i-1" {
		t.Fatalf("Route = %+v, %v", p, ok)
	}
	done := make(chan struct{})
	b.Deregister([]string{tg.ARN}, nil, "i-1", func() { close(done) })
	if healthy, known := b.Healthy([]string{tg.ARN}, nil, "i-1"); healthy || !known {
		t.Errorf("draining: healthy %v, known %v", healthy, known)
	}
	if q, _ := b.Route(lbListener(t, b, lb.ARN)); q.Addr != "" {
		t.Errorf("a draining target got a new request: %+v", q)
	}
	select {
	case <-done:
		t.Fatal("done before the delay with a request in flight")
	default:
	}
	clock.Advance(30 * time.Second)
	select {
	case <-done:
	case <-time.After(waitBound):
		t.Fatal("done not called after the deregistration delay")
	}
	p.Done(http.StatusOK) // the request outlived the delay: nothing breaks
	th, _ = b.TargetHealth(tg.ARN, []balancers.Target{{ID: "i-1"}})
	if th[0].State != balancers.StateUnused || th[0].Reason != balancers.ReasonNotRegistered {
		t.Errorf("after draining: %+v", th[0])
	}

	// Deregistering from nothing calls done at once.
	called := false
	b.Deregister([]string{tg.ARN}, nil, "i-1", func() { called = true })
	if !called {
		t.Error("done not called for an instance registered nowhere")
	}
}

func lbListener(t *testing.T, b *balancers.Balancers, lbARN string) string {
	t.Helper()
	ls, err := b.Listeners(lbARN, nil)
	if err != nil || len(ls) == 0 {
		t.Fatalf("listeners: %v", err)
	}
	return ls[0].ARN
}

// TestHealthReasons checks the unhealthy reasons against real failures:
// a refused connection, a timeout and a wrong code.
func TestHealthReasons(t *testing.T) {
	b, clock, log := newOwner(t)
	// 127.0.0.42: nothing listens, so the connection is refused.
	slow := make(chan struct{})
	t.Cleanup(func() { close(slow) })
	lnSlow, err := net.Listen("tcp", "127.0.0.43:0")
	if err != nil {
		t.Fatal(err)
	}
	srvSlow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-slow:
		case <-r.Context().Done():
		}
	}), ReadHeaderTimeout: time.Second}
	doneSlow := make(chan struct{})
	go func() { defer close(doneSlow); _ = srvSlow.Serve(lnSlow) }()
	t.Cleanup(func() { _ = srvSlow.Close(); <-doneSlow })
	lnBad, err := net.Listen("tcp", "127.0.0.44:0")
	if err != nil {
		t.Fatal(err)
	}
	srvBad := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) }), ReadHeaderTimeout: time.Second}
	doneBad := make(chan struct{})
	go func() { defer close(doneBad); _ = srvBad.Serve(lnBad) }()
	t.Cleanup(func() { _ = srvBad.Close(); <-doneBad })

	lb, _ := b.CreateLoadBalancer(balancers.CreateLoadBalancerInput{Name: "web", Subnets: []string{"subnet-a1", "subnet-b2", "subnet-c3", "subnet-d4"}})
	tg, err := b.CreateTargetGroup(balancers.CreateTargetGroupInput{Name: "web", Protocol: "HTTP", Port: 80, VPCID: "vpc-1", TargetType: "ip",
		HealthCheck: balancers.HealthCheck{Interval: 5, Timeout: 2}, Set: map[string]bool{"HealthCheckIntervalSeconds": true, "HealthCheckTimeoutSeconds": true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateListener(lb.ARN, "HTTP", 80, "forward", tg.ARN); err != nil {
		t.Fatal(err)
	}
	port := func(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }
	targets := []balancers.Target{{ID: "127.0.0.42", Port: 9}, {ID: "127.0.0.43", Port: port(lnSlow)}, {ID: "127.0.0.44", Port: port(lnBad)}}
	var seq int64
	if err := b.RegisterTargets(tg.ARN, targets); err != nil {
		t.Fatal(err)
	}
	waitChecks(t, log, &seq, tg.ARN, 3)
	clock.Advance(5 * time.Second)
	waitChecks(t, log, &seq, tg.ARN, 3)
	th, err := b.TargetHealth(tg.ARN, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"127.0.0.42": "Target.FailedHealthChecks Health checks failed",
		"127.0.0.43": "Target.Timeout Request timed out",
		"127.0.0.44": "Target.ResponseCodeMismatch Health checks failed with these codes: [404]",
	}
	for _, h := range th {
		if h.State != balancers.StateUnhealthy || h.Reason+" "+h.Description != want[h.ID] {
			t.Errorf("%s: %s %s %s, want unhealthy %s", h.ID, h.State, h.Reason, h.Description, want[h.ID])
		}
	}
	if s := b.Stats(); len(s) != 1 || len(s[0].Targets) != 3 || !strings.HasPrefix(s[0].Targets[0].Address, "127.0.0.4") {
		t.Errorf("Stats = %+v", s)
	}
}

func TestMatcherAndValidation(t *testing.T) {
	b, _, _ := newOwner(t)
	for _, tc := range []struct {
		hc   balancers.HealthCheck
		set  string
		want string
	}{
		{balancers.HealthCheck{Matcher: "600"}, "Matcher", "ValidationError: Health check matcher HTTP code '600'"},
		{balancers.HealthCheck{Path: "health"}, "HealthCheckPath", "ValidationError: Health check path 'health' must start with '/'"},
		{balancers.HealthCheck{Interval: 4}, "HealthCheckIntervalSeconds", "ValidationError: HealthCheckIntervalSeconds: Health check interval must be between 5 and 300 seconds, not 4"},
		{balancers.HealthCheck{HealthyThreshold: 11}, "HealthyThresholdCount", "ValidationError: HealthyThresholdCount: Healthy threshold count must be between 2 and 10, not 11"},
		{balancers.HealthCheck{Port: "0"}, "HealthCheckPort", "ValidationError: Health check port '0'"},
	} {
		_, err := b.CreateTargetGroup(balancers.CreateTargetGroupInput{Name: "x", Protocol: "HTTP", Port: 80, VPCID: "vpc-1", HealthCheck: tc.hc, Set: map[string]bool{tc.set: true}})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s", tc.set, err, tc.want)
		}
	}
	tg, err := b.CreateTargetGroup(balancers.CreateTargetGroupInput{Name: "x", Protocol: "HTTP", Port: 80, VPCID: "vpc-1", HealthCheck: balancers.HealthCheck{Matcher: "200,202-204"}, Set: map[string]bool{"Matcher": true}})
	if err != nil || tg.HealthCheck.Matcher != "200,202-204" {
		t.Fatalf("a list of codes and a range: %+v, %v", tg, err)
	}
	again, err := b.CreateTargetGroup(balancers.CreateTargetGroupInput{Name: "x", Protocol: "HTTP", Port: 80, VPCID: "vpc-1", HealthCheck: balancers.HealthCheck{Matcher: "200,202-204"}, Set: map[string]bool{"Matcher": true}})
	if err != nil || again.ARN != tg.ARN {
		t.Errorf("creating the same group again returns it: %+v, %v", again, err)
	}
}

// TestRegisterAgainWhileDraining: registering a draining target takes it
// back (initial, its checks start again) and ends the draining, whose done
// runs; the request that held it finishes without removing it.
func TestRegisterAgainWhileDraining(t *testing.T) {
	b, clock, log := newOwner(t)
	port := healthyBackend(t, "127.0.0.45")
	lb, _ := b.CreateLoadBalancer(balancers.CreateLoadBalancerInput{Name: "web", Subnets: []string{"subnet-1", "subnet-2"}})
	tg, err := b.CreateTargetGroup(balancers.CreateTargetGroupInput{Name: "web", Protocol: "HTTP", Port: port, VPCID: "vpc-1",
		HealthCheck: balancers.HealthCheck{Interval: 5, Timeout: 2, HealthyThreshold: 2}, Set: map[string]bool{"HealthCheckIntervalSeconds": true, "HealthCheckTimeoutSeconds": true, "HealthyThresholdCount": true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateListener(lb.ARN, "HTTP", 80, "forward", tg.ARN); err != nil {
		t.Fatal(err)
	}
	var seq int64
	b.Register([]string{tg.ARN}, nil, "i-1", "127.0.0.45")
	waitChecks(t, log, &seq, tg.ARN, 1)
	clock.Advance(5 * time.Second)
	waitChecks(t, log, &seq, tg.ARN, 1)
	p, ok := b.Route(lbListener(t, b, lb.ARN))
	if !ok || p.Target != "i-1" {
		t.Fatalf("Route = %+v, %v", p, ok)
	}
	done := make(chan struct{})
	b.Deregister([]string{tg.ARN}, nil, "i-1", func() { close(done) })
	if th, _ := b.TargetHealth(tg.ARN, nil); th[0].State != balancers.StateDraining {
		t.Fatalf("deregistered with a request in flight: %+v", th[0])
	}
	b.Register([]string{tg.ARN}, nil, "i-1", "127.0.0.45")
	select {
	case <-done:
	case <-time.After(waitBound):
		t.Fatal("the ended draining's done was not called")
	}
	p.Done(http.StatusOK)
	th, _ := b.TargetHealth(tg.ARN, nil)
	if len(th) != 1 || th[0].State != balancers.StateInitial {
		t.Errorf("registered again while draining: %+v, want it back in initial", th)
	}
}
