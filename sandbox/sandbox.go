// Package sandbox starts lifeguard's local AWS sandbox inside your own Go
// program or tests: the Auto Scaling and EC2 APIs over their real wire
// protocols, with Auto Scaling groups whose instances are local processes
// running their user data, each with its own IMDSv2.
//
//	sb, err := sandbox.Start(sandbox.Options{RelaxLimits: true})
//	if err != nil { … }
//	defer sb.Close()
//	cfg, _ := config.LoadDefaultConfig(ctx,
//		config.WithRegion(sb.Region()),
//		config.WithBaseEndpoint(sb.Endpoint()),
//		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("x", "x", "")))
//	asg := autoscaling.NewFromConfig(cfg)
//
// In tests, New(t, opts) starts one and closes it when the test ends.
//
// With Options.InMemory the sandbox opens no socket and runs no process:
// clients reach it through HTTPClient. Started inside a testing/synctest
// bubble it then runs on the bubble's clock, so AWS's real limits (a
// one-hour heartbeat timeout, a 48-hour global timeout) pass in
// microseconds:
//
//	synctest.Test(t, func(t *testing.T) {
//		sb := sandbox.New(t, sandbox.Options{InMemory: true})
//		cfg := aws.Config{Region: sb.Region(), BaseEndpoint: aws.String(sb.Endpoint()),
//			HTTPClient: sb.HTTPClient(), Credentials: …}
//		…
//		time.Sleep(time.Hour) // the hook's heartbeat timeout passes
//	})
package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	isandbox "github.com/lifeguardhq/lifeguard/internal/sandbox"
)

// Options configure a sandbox. The zero value is a faithful sandbox on a
// free loopback port.
type Options struct {
	// Listen is the address to serve on; "127.0.0.1:0" (a free port) when
	// empty. It must be a loopback address unless AllowNonLoopback is set.
	Listen string
	// AllowNonLoopback accepts a Listen address other hosts can reach.
	// Whoever reaches the sandbox can run code on this host as this user
	// (instances run their user data as local processes).
	AllowNonLoopback bool
	// RelaxLimits lowers every AWS time minimum (HeartbeatTimeout 30 s and
	// so on) to one second so scenarios run in seconds.
	RelaxLimits bool
	// Region and Account of the simulated account (us-east-1, 123456789012).
	Region, Account string
	// Seed makes random choices and fault sampling repeatable.
	Seed uint64
	// StateDir keeps instance directories, and is kept after Close; it must
	// be empty or new. A temporary one, removed on Close, when empty.
	StateDir string
	// NoProcesses runs no user data: instances exist in the API and have
	// IMDS, but no process runs.
	NoProcesses bool
	// InMemory opens no socket and runs no user data: the API and each
	// instance's IMDS are reached through HTTPClient, also from inside a
	// testing/synctest bubble. Listen is ignored.
	InMemory bool
	// StopGrace is the SIGTERM→SIGKILL grace for terminating instances.
	StopGrace time.Duration
	// Logger receives the sandbox's logs; discarded when nil.
	Logger *slog.Logger
}

// Sandbox is a running sandbox.
type Sandbox struct {
	srv    *isandbox.Server
	region string
	stop   func() error
}

// Start starts a sandbox and returns once it is listening.
func Start(opts Options) (*Sandbox, error) {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	srv, err := isandbox.New(isandbox.Config{
		Listen: opts.Listen, AllowNonLoopback: opts.AllowNonLoopback, StateDir: opts.StateDir, Region: opts.Region, Account: opts.Account,
		RelaxLimits: opts.RelaxLimits, Seed: opts.Seed, NoProcesses: opts.NoProcesses, InMemory: opts.InMemory,
		StopGrace: opts.StopGrace, Logger: opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	_, stop, err := srv.Start()
	if err != nil {
		return nil, err
	}
	return &Sandbox{srv: srv, region: opts.Region, stop: stop}, nil
}

// New starts a sandbox for a test and closes it when the test ends.
func New(tb testing.TB, opts Options) *Sandbox {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatalf("start sandbox: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close sandbox: %v", err)
		}
	})
	return s
}

// Endpoint is the URL every AWS client should use (AWS_ENDPOINT_URL).
func (s *Sandbox) Endpoint() string { return s.srv.Endpoint() }

// HTTPClient returns a client that reaches the sandbox: with InMemory one
// whose transport serves each request in memory, otherwise one of its own
// over loopback TCP. Give it to the SDK (aws.Config.HTTPClient) and to the
// IMDS client.
func (s *Sandbox) HTTPClient() *http.Client {
	if rt := s.srv.Transport(); rt != nil {
		return &http.Client{Transport: rt}
	}
	return &http.Client{}
}

// IMDSEndpoint returns the endpoint of a running instance's IMDSv2 (what
// AWS_EC2_METADATA_SERVICE_ENDPOINT would be on it).
func (s *Sandbox) IMDSEndpoint(instanceID string) (string, error) {
	for _, in := range s.srv.Instances() {
		if in.ID == instanceID && in.IMDS != "" {
			return in.IMDS, nil
		}
	}
	return "", fmt.Errorf("sandbox: instance %s is not running", instanceID)
}

// Region is the simulated region.
func (s *Sandbox) Region() string { return s.region }

// Env returns the environment variables that point the AWS SDKs and the
// AWS CLI v2.13+ at the sandbox, with dummy credentials.
func (s *Sandbox) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.Endpoint(),
		"AWS_REGION=" + s.region,
		"AWS_DEFAULT_REGION=" + s.region,
		"AWS_ACCESS_KEY_ID=sandbox",
		"AWS_SECRET_ACCESS_KEY=sandbox",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// AdvanceClock pushes the sandbox's simulated time forward, firing every
// lifecycle timeout that falls due. It refuses a d that is not positive,
// or that would carry the clock past the latest time it can hold (about
// 292 years ahead of the wall clock), and then changes nothing.
func (s *Sandbox) AdvanceClock(d time.Duration) error { return s.srv.AdvanceClock(d) }

// Close stops the sandbox: it terminates every instance, processes
// included, and removes a temporary state directory. Safe to call twice.
func (s *Sandbox) Close() error {
	if s.stop == nil {
		return errors.New("sandbox: not started")
	}
	return s.stop()
}
