package lbproxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/balancers"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/lbproxy"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// BenchmarkProxyOverhead measures a GET through a listener against the
// same GET straight to the target (keep-alive on both legs), and reports
// the p50 and p99 latencies of each.
func BenchmarkProxyOverhead(b *testing.B) {
	clock := simclock.NewSim()
	log := eventlog.New(eventlog.Config{}, clock, nil)
	owner := balancers.New(balancers.Config{}, clock, log, nil)
	defer owner.Close()
	proxy := lbproxy.New(owner, "")
	defer proxy.Shutdown(context.Background())
	if err := owner.SetDataPlane(proxy); err != nil {
		b.Fatal(err)
	}
	back := benchBackend(b, "127.0.0.51:0")
	lb, err := owner.CreateLoadBalancer(balancers.CreateLoadBalancerInput{Name: "bench", Subnets: []string{"subnet-a1", "subnet-b2"}})
	if err != nil {
		b.Fatal(err)
	}
	tg, err := owner.CreateTargetGroup(balancers.CreateTargetGroupInput{Name: "bench", Protocol: "HTTP", Port: back.port, VPCID: "vpc-1", TargetType: "ip",
		HealthCheck: balancers.HealthCheck{Interval: 5, Timeout: 2, HealthyThreshold: 2}, Set: map[string]bool{"HealthCheckIntervalSeconds": true, "HealthCheckTimeoutSeconds": true, "HealthyThresholdCount": true}})
	if err != nil {
		b.Fatal(err)
	}
	l, err := owner.CreateListener(lb.ARN, "HTTP", 80, "forward", tg.ARN)
	if err != nil {
		b.Fatal(err)
	}
	if err := owner.RegisterTargets(tg.ARN, []balancers.Target{{ID: "127.0.0.51"}}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	var seq int64
	for {
		evs, err := log.Wait(ctx, seq, eventlog.All)
		if err != nil {
			b.Fatal("target never healthy")
		}
		for _, e := range evs {
			seq = e.Seq
			if e.Kind == balancers.EvHealthCheck {
				clock.Advance(5 * time.Second)
			}
		}
		if th, _ := owner.TargetHealth(tg.ARN, nil); th[0].State == balancers.StateHealthy {
			break
		}
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	for _, c := range []struct{ name, url string }{{"direct", "http://" + back.addr + "/"}, {"proxied", "http://" + l.Address + "/"}} {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				resp, err := client.Get(c.url)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(start))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

type benchServer struct {
	addr string
	port int
}

func benchBackend(b *testing.B, addr string) benchServer {
	b.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }), ReadHeaderTimeout: time.Second}
	ln, err := listen(addr)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close(); <-done })
	return benchServer{addr: ln.Addr().String(), port: portOf(ln)}
}

func listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

func portOf(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }
