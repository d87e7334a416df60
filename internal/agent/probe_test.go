package agent_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

// waitLimit bounds the waits of real-time tests; nothing comes close.
const waitLimit = 10 * time.Second

// TestNetworkProbes runs HTTP and TCP probes against real loopback servers,
// in real time (sockets do not belong in a synctest bubble).
func TestNetworkProbes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ready":
			_, _ = w.Write([]byte(`{"status":"ready"}`))
		case "/starting":
			_, _ = w.Write([]byte(`{"status":"starting"}`))
		case "/moved":
			http.Redirect(w, r, "/ready", http.StatusFound)
		default:
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	httpProbe := func(path string, status int, body string) config.Probe {
		return config.Probe{Name: "http", HTTP: &config.HTTPProbe{URL: srv.URL + path, Status: status, BodyContains: body, Timeout: config.Duration(200 * time.Millisecond)}}
	}
	tcpProbe := func(addr string) config.Probe {
		return config.Probe{Name: "tcp", TCP: &config.TCPProbe{Address: addr, Timeout: config.Duration(200 * time.Millisecond)}}
	}
	for _, c := range []struct {
		name   string
		probes []config.Probe
		want   lifecycle.Result
	}{
		{"http and tcp pass", []config.Probe{httpProbe("/ready", 200, `"ready"`), tcpProbe(ln.Addr().String())}, lifecycle.Continue},
		{"http with another status fails", []config.Probe{httpProbe("/down", 200, "")}, lifecycle.Abandon},
		{"http with the expected non-200 status passes", []config.Probe{httpProbe("/down", 503, "")}, lifecycle.Continue},
		{"http redirect is not followed", []config.Probe{httpProbe("/moved", 200, "")}, lifecycle.Abandon},
		{"http without the expected body fails", []config.Probe{httpProbe("/starting", 200, `"ready"`)}, lifecycle.Abandon},
		{"tcp to a closed port fails", []config.Probe{httpProbe("/ready", 200, ""), tcpProbe(closedAddr)}, lifecycle.Abandon},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := newConfig(t)
			cfg.Launch.Probes = c.probes
			cfg.Launch.Interval = config.Duration(20 * time.Millisecond)
			cfg.Launch.ConsecutivePasses = 2
			cfg.Launch.Timeout = config.Duration(300 * time.Millisecond)
			completed := make(chan lifecycle.Result, 1)
			aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK,
				OnComplete: func(_ context.Context, _ int, _ lifecycle.Action, r lifecycle.Result) error {
					completed <- r
					return nil
				}}
			asg := &fakeGroup{t: t, state: "Pending:Wait", hooks: []lifecycle.Hook{launchHook("warmup", time.Hour)}}
			r := start(t, newAgent(t, cfg, agent.Deps{Metadata: &fakeMetadata{target: "InService"}, Group: asg, Completer: aws, Steps: &lifecycletest.StepRunner{T: t}}))
			defer r.stop()
			select {
			case got := <-completed:
				if got != c.want {
					t.Errorf("completed with %s, want %s", got, c.want)
				}
			case <-time.After(waitLimit):
				t.Fatalf("no completion within %v", waitLimit)
			}
		})
	}
}
