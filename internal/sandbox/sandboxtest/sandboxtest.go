// Package sandboxtest gives a test a running sandbox: the whole router
// (every service, faults, /_sandbox/) built by sandbox.New on a simulated
// clock, reached over a loopback socket or in memory, with its owners at
// hand for direct inspection.
//
// It knows nothing of the AWS SDK (the sandbox never imports it): a test
// builds its own client from Endpoint and HTTP in a couple of lines,
//
//	sb := sandboxtest.Start(t, sandbox.Config{RelaxLimits: true})
//	client := sqs.NewFromConfig(aws.Config{
//		Region: "us-east-1", BaseEndpoint: aws.String(sb.Endpoint), HTTPClient: sb.HTTP,
//		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""), RetryMaxAttempts: 1,
//	})
//
// Tests that cannot import package sandbox (its own internal tests, or a
// package sandbox imports testing itself from the inside) serve one handler
// with Serve instead.
package sandboxtest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/functions"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/tables"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// Sandbox is a sandbox running for one test.
type Sandbox struct {
	// Server is the sandbox itself.
	Server *sandbox.Server
	// Endpoint is the API's URL: http://127.0.0.1:<port>, or the in-memory
	// host that only HTTP reaches.
	Endpoint string
	// HTTP reaches Endpoint (and, in memory, each instance's API and IMDS).
	HTTP *http.Client

	// Clock is the simulated clock every owner runs on; Advance it to make
	// time pass.
	Clock *simclock.Sim
	// The state owners, for direct inspection and set-up.
	World     *world.World
	Messaging *messaging.Broker
	Tables    *tables.Tables
	Functions *functions.Functions
	Events    *eventlog.Log
}

// Start builds a sandbox from cfg and serves it until the test ends.
// Instances never run processes (cfg.NoProcesses is forced: a service
// test has no user data to run). Unless cfg.InMemory is set, the sandbox
// listens on a free loopback port and cfg.Listen is ignored. Cleanup
// shuts it down (instances terminated, owners closed, the temporary state
// directory removed) and closes the client's idle connections, so that
// goleak finds nothing left over.
func Start(t testing.TB, cfg sandbox.Config) *Sandbox {
	t.Helper()
	cfg.NoProcesses = true
	return start(t, cfg)
}

// StartProcesses is Start for a test that runs processes: Lambda
// functions' execution environments (and instances' user data). The test
// binary's TestMain must call proc.Main first when instances run.
func StartProcesses(t testing.TB, cfg sandbox.Config) *Sandbox {
	t.Helper()
	return start(t, cfg)
}

func start(t testing.TB, cfg sandbox.Config) *Sandbox {
	t.Helper()
	if !cfg.InMemory {
		cfg.Listen = "127.0.0.1:0"
	}
	s, err := sandbox.New(cfg)
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	sb := &Sandbox{
		Server: s, Clock: s.Clock(),
		World: s.World(), Messaging: s.Messaging(), Tables: s.Tables(), Functions: s.Functions(), Events: s.Events(),
	}
	if cfg.InMemory {
		sb.Endpoint = s.Endpoint()
		sb.HTTP = &http.Client{Transport: s.Transport()}
		t.Cleanup(s.Close)
		return sb
	}
	endpoint, stop, err := s.Start()
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	transport := &http.Transport{Proxy: nil, ForceAttemptHTTP2: false}
	sb.Endpoint, sb.HTTP = endpoint, &http.Client{Transport: transport}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		if err := stop(); err != nil {
			t.Errorf("sandbox: %v", err)
		}
		transport.CloseIdleConnections()
	})
	return sb
}

// Serve serves one handler on a loopback port until the test ends and
// returns its URL and a client for it: the smaller piece, for a test that
// cannot build the whole sandbox.
func Serve(t testing.TB, h http.Handler) (endpoint string, client *http.Client) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, srv.Client()
}
