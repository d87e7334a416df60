package lbproxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/balancers"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitBound = 10 * time.Second

// backend is a real HTTP server on a 127.0.0.N address: it answers its
// name on /, its health on /health, and holds /slow until released.
type backend struct {
	name    string
	addr    string
	sick    atomic.Bool
	hits    atomic.Int64
	release chan struct{}
	started chan struct{}
}

func startBackend(t *testing.T, name, ip string, port int) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen on %s (Linux answers on all of 127/8): %v", ip, err)
	}
	b := &backend{name: name, addr: ln.Addr().String(), release: make(chan struct{}), started: make(chan struct{}, 8)}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if b.sick.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.started <- struct{}{}
		<-b.release
		_, _ = io.WriteString(w, b.name)
	})
	mux.HandleFunc("/die", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close() // the app crashed mid-request
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		_, _ = io.WriteString(w, b.name)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return b
}

func (b *backend) port(t *testing.T) int {
	_, p, _ := net.SplitHostPort(b.addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waiter follows the control stream for target events.
type waiter struct {
	log *eventlog.Log
	seq int64
}

// until waits for an event of resource whose state (and reason, when
// given) match, for each of the ids.
func (w *waiter) until(t *testing.T, resource, state, reason string, ids ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for len(want) > 0 {
		evs, err := w.log.Wait(ctx, w.seq, eventlog.All)
		if err != nil {
			t.Fatalf("waiting for %v to become %s %s in %s: %v", ids, state, reason, resource, err)
		}
		for _, e := range evs {
			w.seq = e.Seq
			if e.Kind == balancers.EvTarget && e.Resource == resource && e.State == state && (reason == "" || e.Attrs["reason"] == reason) {
				delete(want, e.Instance)
			}
		}
	}
}

// checked waits until each of ids has had a health check: the next one
// is then scheduled, and advancing the clock by an interval sends it.
func (w *waiter) checked(t *testing.T, resource, result string, ids ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for len(want) > 0 {
		evs, err := w.log.Wait(ctx, w.seq, eventlog.All)
		if err != nil {
			t.Fatalf("waiting for health checks of %v in %s: %v", ids, resource, err)
		}
		for _, e := range evs {
			w.seq = e.Seq
			if e.Kind == balancers.EvHealthCheck && e.Resource == resource && (result == "" || e.Result == result) {
				delete(want, e.Instance)
			}
		}
	}
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDataPlaneRoundRobinHealthDrainingAnd503(t *testing.T) {
	sb := sandboxtest.Start(t, sandbox.Config{})
	lbs := sb.Server.Balancers()
	w := &waiter{log: sb.Events}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: waitBound}
	t.Cleanup(client.CloseIdleConnections)

	b1 := startBackend(t, "one", "127.0.0.11", 0)
	b2 := startBackend(t, "two", "127.0.0.12", 0)
	b3 := startBackend(t, "three", "127.0.0.13", 0)
	backends := map[string]*backend{"one": b1, "two": b2, "three": b3}

	if _, err := lbs.CreateLoadBalancer(balancers.CreateLoadBalancerInput{Name: "web", Subnets: []string{"subnet-a1", "subnet-b2", "subnet-c3", "subnet-d4"}}); err != nil {
		t.Fatal(err)
	}
	lb, err := lbs.LoadBalancers(nil, []string{"web"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(lb[0].DNSName, "web-") || !strings.HasSuffix(lb[0].DNSName, ".us-east-1.elb.localhost") {
		t.Errorf("DNSName = %s, want web-<digits>.us-east-1.elb.localhost", lb[0].DNSName)
	}
	tg, err := lbs.CreateTargetGroup(balancers.CreateTargetGroupInput{
		Name: "web", Protocol: "HTTP", Port: 80, VPCID: "vpc-1", TargetType: "ip",
		HealthCheck: balancers.HealthCheck{Path: "/health", Interval: 5, Timeout: 2, HealthyThreshold: 2, UnhealthyThreshold: 2},
		Set:         map[string]bool{"HealthCheckPath": true, "HealthCheckIntervalSeconds": true, "HealthCheckTimeoutSeconds": true, "HealthyThresholdCount": true, "UnhealthyThresholdCount": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := lbs.CreateListener(lb[0].ARN, "HTTP", 80, "forward", tg.ARN)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Address
	if code, body := get(t, client, url); code != http.StatusServiceUnavailable || !strings.Contains(body, "503 Service Temporarily Unavailable") {
		t.Fatalf("no target registered: %d %q, want the ALB's 503 page", code, body)
	}

	ids := []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}
	var targets []balancers.Target
	for i, b := range []*backend{b1, b2, b3} {
		targets = append(targets, balancers.Target{ID: ids[i], Port: b.port(t)})
	}
	if err := lbs.RegisterTargets(tg.ARN, targets); err != nil {
		t.Fatal(err)
	}
	// The first check passes at once; the healthy threshold (2) needs a
	// second one an interval later.
	w.checked(t, tg.ARN, "ok", ids...)
	th, err := lbs.TargetHealth(tg.ARN, nil)
	if err != nil || len(th) != 3 || th[0].State != balancers.StateInitial || th[0].Reason != balancers.ReasonInitialCheck {
		t.Fatalf("after one passing check: %+v, %v; want initial/Elb.InitialHealthChecking", th, err)
	}
	sb.Clock.Advance(5 * time.Second)
	w.until(t, tg.ARN, balancers.StateHealthy, "", ids...)

	// Round robin: six requests, two to each.
	for range 6 {
		if code, _ := get(t, client, url); code != http.StatusOK {
			t.Fatalf("status %d through the load balancer", code)
		}
	}
	for name, b := range backends {
		if n := b.hits.Load(); n != 2 {
			t.Errorf("backend %s served %d of 6 requests, want 2 (round robin)", name, n)
		}
	}

	// Three fails its checks: unhealthy after two, with AWS's reason.
	b3.sick.Store(true)
	sb.Clock.Advance(5 * time.Second)
	w.checked(t, tg.ARN, balancers.ReasonCodeMismatch, ids[2])
	sb.Clock.Advance(5 * time.Second)
	w.until(t, tg.ARN, balancers.StateUnhealthy, balancers.ReasonCodeMismatch, ids[2])
	th, err = lbs.TargetHealth(tg.ARN, []balancers.Target{targets[2]})
	if err != nil || th[0].Description != "Health checks failed with these codes: [500]" {
		t.Errorf("DescribeTargetHealth of the failing target = %+v, %v", th, err)
	}
	before := b3.hits.Load()
	for range 4 {
		if code, body := get(t, client, url); code != http.StatusOK || body == "three" {
			t.Fatalf("request went to %q (%d); an unhealthy target gets none", body, code)
		}
	}
	if b3.hits.Load() != before {
		t.Error("the unhealthy target was sent requests")
	}

	// Draining: a request in flight on one finishes; no new request goes
	// there; the target leaves once its last request is done.
	type answer struct {
		code int
		body string
		err  error
	}
	slow := make(chan answer, 1)
	go func() {
		resp, err := client.Get(url + "/slow")
		if err != nil {
			slow <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- answer{resp.StatusCode, string(b), err}
	}()
	var busy *backend
	select {
	case <-b1.started:
		busy = b1
	case <-b2.started:
		busy = b2
	case <-time.After(waitBound):
		t.Fatal("the slow request reached no backend")
	}
	busyIdx := 0
	if busy == b2 {
		busyIdx = 1
	}
	if err := lbs.DeregisterTargets(tg.ARN, []balancers.Target{targets[busyIdx]}); err != nil {
		t.Fatal(err)
	}
	th, _ = lbs.TargetHealth(tg.ARN, []balancers.Target{targets[busyIdx]})
	if th[0].State != balancers.StateDraining || th[0].Reason != balancers.ReasonDeregistration {
		t.Errorf("deregistered with a request in flight: %+v, want draining/Target.DeregistrationInProgress", th[0])
	}
	for range 3 {
		if code, body := get(t, client, url); code != http.StatusOK || body != map[*backend]string{b1: "two", b2: "one"}[busy] {
			t.Fatalf("request during draining answered %d %q, want the other healthy target", code, body)
		}
	}
	close(busy.release)
	a := <-slow
	if a.err != nil || a.code != http.StatusOK || a.body != busy.name {
		t.Fatalf("the in-flight request: %+v, want 200 from %s", a, busy.name)
	}
	w.until(t, tg.ARN, balancers.StateUnused, balancers.ReasonNotRegistered, ids[busyIdx])

	// No healthy target left: 503, counted.
	other := 1 - busyIdx
	if err := lbs.DeregisterTargets(tg.ARN, []balancers.Target{targets[other], targets[2]}); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, client, url); code != http.StatusServiceUnavailable || !strings.Contains(body, "503") {
		t.Fatalf("no healthy target: %d %q, want 503", code, body)
	}

	// The counts, on the owner and on the admin API.
	var stats struct {
		Balancers []balancers.BalancerStats `json:"balancers"`
	}
	resp, err := sb.HTTP.Get(sb.Endpoint + "/_sandbox/balancers")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if err != nil || len(stats.Balancers) != 1 || len(stats.Balancers[0].Listeners) != 1 {
		t.Fatalf("GET /_sandbox/balancers: %+v, %v", stats, err)
	}
	ls := stats.Balancers[0].Listeners[0]
	if ls.Address != l.Address || ls.Requests != 16 || ls.NoTarget != 2 || ls.Errors5xx != 2 {
		t.Errorf("listener counts = %+v, want 16 requests (2 without a target, both 503)", ls)
	}
	// Proxied requests are data-plane events: counted, never in the
	// control stream.
	st := sb.Events.Stats()
	if st.Data.Counts[balancers.EvRequest] != 16 || st.Control.Counts[balancers.EvRequest] != 0 {
		t.Errorf("lb-request counts: data %d, control %d; want 16 and 0", st.Data.Counts[balancers.EvRequest], st.Control.Counts[balancers.EvRequest])
	}
}

// TestDataPlaneBadGatewayAndClassic checks a classic load balancer's
// listener end to end: TCP health checks, round robin, and a target that
// dies answering 502 before its checks catch up.
func TestDataPlaneClassic(t *testing.T) {
	sb := sandboxtest.Start(t, sandbox.Config{})
	lbs := sb.Server.Balancers()
	w := &waiter{log: sb.Events}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: waitBound}
	t.Cleanup(client.CloseIdleConnections)

	b1 := startBackend(t, "one", "127.0.0.21", 0)
	port := b1.port(t)
	b2 := startBackend(t, "two", "127.0.0.22", port)
	if _, err := lbs.CreateClassic(balancers.CreateClassicInput{Name: "old", Zones: []string{"us-east-1a"},
		Listeners: []balancers.ClassicListener{{Protocol: "HTTP", LoadBalancerPort: 80, InstancePort: port}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := lbs.ConfigureHealthCheck("old", balancers.ClassicHealthCheck{Target: "HTTP:" + strconv.Itoa(port) + "/health", Interval: 5, Timeout: 2, HealthyThreshold: 2, UnhealthyThreshold: 2}); err != nil {
		t.Fatal(err)
	}
	cs, _ := lbs.Classics([]string{"old"})
	url := "http://" + cs[0].Listeners[0].Address
	if code, body := get(t, client, url); code != http.StatusServiceUnavailable || body != "" {
		t.Fatalf("no instance: %d %q, want classic ELB's empty 503", code, body)
	}
	lbs.Register(nil, []string{"old"}, "i-1", "127.0.0.21")
	lbs.Register(nil, []string{"old"}, "i-2", "127.0.0.22")
	if _, known := lbs.Healthy(nil, []string{"old"}, "i-1"); known {
		t.Error("Healthy reports known before any check")
	}
	w.checked(t, "old", "ok", "i-1", "i-2")
	sb.Clock.Advance(5 * time.Second)
	w.checked(t, "old", "ok", "i-1", "i-2")
	st, err := lbs.InstanceHealth("old", nil)
	if err != nil || len(st) != 2 || st[0].State != "InService" || st[1].State != "InService" {
		t.Fatalf("after two passing checks: %+v, %v; want both InService", st, err)
	}
	if healthy, known := lbs.Healthy(nil, []string{"old"}, "i-1"); !healthy || !known {
		t.Errorf("Healthy = %v, %v once InService", healthy, known)
	}
	got := map[string]int{}
	for range 4 {
		_, body := get(t, client, url)
		got[body]++
	}
	if got["one"] != 2 || got["two"] != 2 {
		t.Errorf("classic round robin: %v", got)
	}

	// Connection draining enabled: deregistration waits for the request in
	// flight, and done is called once it has finished.
	if _, err := lbs.ModifyClassicAttributes("old", func(a *balancers.ClassicAttributes) error {
		a.DrainingEnabled, a.DrainingTimeout = true, 60
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var slowCode atomic.Int64
	wg.Go(func() {
		resp, err := client.Get(url + "/slow")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			slowCode.Store(int64(resp.StatusCode))
		}
	})
	var busy *backend
	var busyID string
	select {
	case <-b1.started:
		busy, busyID = b1, "i-1"
	case <-b2.started:
		busy, busyID = b2, "i-2"
	case <-time.After(waitBound):
		t.Fatal("the slow request reached no instance")
	}
	drained := make(chan struct{})
	lbs.Deregister(nil, []string{"old"}, busyID, func() { close(drained) })
	select {
	case <-drained:
		t.Fatal("draining ended with a request in flight")
	default:
	}
	close(busy.release)
	wg.Wait()
	select {
	case <-drained:
	case <-time.After(waitBound):
		t.Fatal("draining did not end once the request finished")
	}
	if slowCode.Load() != http.StatusOK {
		t.Errorf("the in-flight request got %d, want 200", slowCode.Load())
	}
	if _, err := lbs.InstanceHealth("old", []string{busyID}); err == nil || !strings.Contains(err.Error(), "InvalidInstance") {
		t.Errorf("DescribeInstanceHealth of the drained instance: %v, want InvalidInstance", err)
	}
	if ls := lbs.Stats()[0].Listeners[0]; ls.Requests != 6 || ls.NoTarget != 1 || ls.Errors5xx != 1 {
		t.Errorf("classic listener counts = %+v, want 6 requests, 1 without a target (the one 5xx)", ls)
	}
}

// TestDataPlaneBadGateway: a target that drops the connection mid-request
// gives the client an ALB's 502, counted as a 5xx of that target.
func TestDataPlaneBadGateway(t *testing.T) {
	sb := sandboxtest.Start(t, sandbox.Config{})
	lbs := sb.Server.Balancers()
	w := &waiter{log: sb.Events}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: waitBound}
	t.Cleanup(client.CloseIdleConnections)
	b := startBackend(t, "one", "127.0.0.31", 0)
	lb, err := lbs.CreateLoadBalancer(balancers.CreateLoadBalancerInput{Name: "web", Subnets: []string{"subnet-1", "subnet-2"}})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := lbs.CreateTargetGroup(balancers.CreateTargetGroupInput{Name: "web", Protocol: "HTTP", Port: b.port(t), VPCID: "vpc-1", TargetType: "ip",
		HealthCheck: balancers.HealthCheck{Path: "/health", Interval: 5, Timeout: 2, HealthyThreshold: 2},
		Set:         map[string]bool{"HealthCheckPath": true, "HealthCheckIntervalSeconds": true, "HealthCheckTimeoutSeconds": true, "HealthyThresholdCount": true}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := lbs.CreateListener(lb.ARN, "HTTP", 80, "forward", tg.ARN)
	if err != nil {
		t.Fatal(err)
	}
	if err := lbs.RegisterTargets(tg.ARN, []balancers.Target{{ID: "127.0.0.31"}}); err != nil {
		t.Fatal(err)
	}
	w.checked(t, tg.ARN, "ok", "127.0.0.31")
	sb.Clock.Advance(5 * time.Second)
	w.until(t, tg.ARN, balancers.StateHealthy, "", "127.0.0.31")
	code, body := get(t, client, "http://"+l.Address+"/die")
	if code != http.StatusBadGateway || !strings.Contains(body, "502 Bad Gateway") {
		t.Fatalf("a target that dropped the connection: %d %q, want the ALB's 502", code, body)
	}
	st := lbs.Stats()
	if tgt := st[0].Targets[0]; tgt.Requests != 1 || tgt.Errors5xx != 1 || tgt.InFlight != 0 {
		t.Errorf("target counts = %+v, want 1 request, 1 5xx, none in flight", tgt)
	}
	// The 502 says why: the transport's error, in the request's event and
	// in the target's counts.
	var cause string
	for _, e := range sb.Events.Events(eventlog.Data) {
		if e.Kind == balancers.EvRequest && e.Instance == "127.0.0.31" {
			if e.Attrs["status"] != "502" || e.Attrs["error"] == "" {
				t.Fatalf("request event attrs = %v, want status 502 and the error reaching the target", e.Attrs)
			}
			cause = e.Attrs["error"]
		}
	}
	if cause == "" {
		t.Fatal("no lb-request event for the failed request")
	}
	if f := st[0].Targets[0].Failures; len(f) != 1 || f[cause] != 1 {
		t.Errorf("target failures = %v, want {%q: 1}", f, cause)
	}
}

// TestDataPlaneNewTargetAtAReusedAddress registers a target at an address
// an earlier target used: the old app has stopped accepting but keeps the
// data plane's keep-alive connection open. The new target's requests go
// to the new app over connections of its own, never over the old one's
// (as an ALB, which never sends a target's request to another backend).
func TestDataPlaneNewTargetAtAReusedAddress(t *testing.T) {
	sb := sandboxtest.Start(t, sandbox.Config{})
	lbs := sb.Server.Balancers()
	w := &waiter{log: sb.Events}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: waitBound}
	t.Cleanup(client.CloseIdleConnections)

	// The old app: it answers "old" and, once it stops accepting, keeps
	// the connections it has.
	const ip = "127.0.0.51"
	lnOld, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen on %s (Linux answers on all of 127/8): %v", ip, err)
	}
	addr := lnOld.Addr().String()
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	old := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "old")
	})}
	oldDone := make(chan struct{})
	go func() { defer close(oldDone); _ = old.Serve(lnOld) }()
	t.Cleanup(func() { _ = old.Close(); <-oldDone })

	lb, err := lbs.CreateLoadBalancer(balancers.CreateLoadBalancerInput{Name: "web", Subnets: []string{"subnet-1", "subnet-2"}})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := lbs.CreateTargetGroup(balancers.CreateTargetGroupInput{Name: "web", Protocol: "HTTP", Port: port, VPCID: "vpc-1", TargetType: "ip",
		HealthCheck: balancers.HealthCheck{Path: "/health", Interval: 5, Timeout: 2, HealthyThreshold: 2},
		Set:         map[string]bool{"HealthCheckPath": true, "HealthCheckIntervalSeconds": true, "HealthCheckTimeoutSeconds": true, "HealthyThresholdCount": true}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := lbs.CreateListener(lb.ARN, "HTTP", 80, "forward", tg.ARN)
	if err != nil {
		t.Fatal(err)
	}
	healthy := func() {
		t.Helper()
		if err := lbs.RegisterTargets(tg.ARN, []balancers.Target{{ID: ip}}); err != nil {
			t.Fatal(err)
		}
		w.checked(t, tg.ARN, "ok", ip)
		sb.Clock.Advance(5 * time.Second)
		w.until(t, tg.ARN, balancers.StateHealthy, "", ip)
	}
	healthy()
	if code, body := get(t, client, "http://"+l.Address); code != http.StatusOK || body != "old" {
		t.Fatalf("the first target: %d %q, want 200 old", code, body)
	}

	// The old target leaves (deregistered, its draining over) and its app
	// stops accepting; a new app takes the address and registers.
	if err := lbs.DeregisterTargets(tg.ARN, []balancers.Target{{ID: ip}}); err != nil {
		t.Fatal(err)
	}
	sb.Clock.Advance(300 * time.Second) // the default deregistration delay
	w.until(t, tg.ARN, balancers.StateUnused, balancers.ReasonNotRegistered, ip)
	if err := lnOld.Close(); err != nil {
		t.Fatal(err)
	}
	startBackend(t, "new", ip, port)
	healthy()

	for range 3 {
		if code, body := get(t, client, "http://"+l.Address); code != http.StatusOK || body != "new" {
			t.Fatalf("the new target at the reused address %s: %d %q, want 200 new (never the old app's connection)", addr, code, body)
		}
	}
}
