package systest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkimds "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
	isandbox "github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// The in-process tier (STYLE rule 11, DESIGN invariant 3): the real agent,
// the real awscloud adapters and the real SDK clients talk to an in-memory
// sandbox (Config.InMemory: no socket, no process) inside a synctest
// bubble, so AWS's real limits (a one-hour heartbeat timeout, a global
// timeout of 100 heartbeat timeouts) run in milliseconds of real time.

const (
	inprocGroup = "web"
	inprocHook  = "drain-hook"
	inprocStep  = "drain"
)

// inprocCall is one request made through an inprocTransport.
type inprocCall struct {
	At     time.Time
	Host   string
	Op     string // the query Action for the API, "METHOD /path" for IMDS
	Status int
}

// inprocTransport records every request it passes to the sandbox's
// in-memory transport. Safe for concurrent use.
type inprocTransport struct {
	next  http.RoundTripper
	mu    sync.Mutex
	calls []inprocCall
}

func (rt *inprocTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := req.Method + " " + req.URL.Path
	if req.Method == http.MethodPost && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
			op = form.Get("Action")
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := rt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rt.mu.Lock()
	rt.calls = append(rt.calls, inprocCall{At: time.Now(), Host: req.URL.Host, Op: op, Status: resp.StatusCode})
	rt.mu.Unlock()
	return resp, nil
}

// mark returns a position in the call log, for since.
func (rt *inprocTransport) mark() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return len(rt.calls)
}

// since returns the calls recorded after mark.
func (rt *inprocTransport) since(mark int) []inprocCall {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return slices.Clone(rt.calls[mark:])
}

// callsOf returns the recorded calls whose operation is op ("" = all) in
// [from, to) (zero to = no end).
func (rt *inprocTransport) callsOf(op string, from, to time.Time) []inprocCall {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var out []inprocCall
	for _, c := range rt.calls {
		if (op == "" || c.Op == op) && !c.At.Before(from) && (to.IsZero() || c.At.Before(to)) {
			out = append(out, c)
		}
	}
	return out
}

// imdsEndpoint is an aws.Config configuration source that points the SDK's
// IMDS client (feature/ec2/imds.NewFromConfig, which awscloud.NewMetadata
// uses) at an endpoint and enables it, whatever the environment says.
type imdsEndpoint string

func (e imdsEndpoint) GetEC2IMDSEndpoint() (string, bool, error) { return string(e), true, nil }

func (imdsEndpoint) GetEC2IMDSClientEnableState() (sdkimds.ClientEnableState, bool, error) {
	return sdkimds.ClientEnabled, true, nil
}

// inprocEnv is an in-memory sandbox running inside a synctest bubble.
type inprocEnv struct {
	t       *testing.T
	srv     *isandbox.Server
	w       *world.World
	rt      *inprocTransport
	apiHost string
	cfg     aws.Config // the sandbox's API, through rt
	asg     *autoscaling.Client
	seq     int64 // events consumed by next
}

// newInprocEnv starts an in-memory sandbox (its clock, a simclock.Sim,
// has the bubble's timers) and the SDK configuration that reaches it
// through a recording transport. Call it inside the bubble; the sandbox
// stops when the test ends.
func newInprocEnv(t *testing.T) *inprocEnv {
	t.Helper()
	srv, err := isandbox.New(isandbox.Config{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	endpoint, stop, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("sandbox Run = %v", err)
		}
	})
	rt := &inprocTransport{next: srv.Transport()}
	u, _ := url.Parse(endpoint)
	cfg := aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("sandbox", "sandbox", ""),
		HTTPClient:   &http.Client{Transport: rt},
	}
	return &inprocEnv{t: t, srv: srv, w: srv.World(), rt: rt, apiHost: u.Host, cfg: cfg, asg: autoscaling.NewFromConfig(cfg)}
}

// metadataConfig returns the configuration awscloud.NewMetadata needs to
// read instance id's IMDS through the recording transport.
func (e *inprocEnv) metadataConfig(id string) aws.Config {
	e.t.Helper()
	for _, in := range e.srv.Instances() {
		if in.ID == id && in.IMDS != "" {
			return aws.Config{
				Region:        "us-east-1",
				HTTPClient:    &http.Client{Transport: e.rt},
				ConfigSources: []any{imdsEndpoint(in.IMDS)},
			}
		}
	}
	e.t.Fatalf("instance %s has no IMDS", id)
	return aws.Config{}
}

// next returns the next world event that matches, failing the test if
// none comes within a day of simulated time.
func (e *inprocEnv) next(what string, match func(world.Event) bool) world.Event {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 24*time.Hour)
	defer cancel()
	for {
		evs, err := e.w.EventsAfter(ctx, e.seq)
		if err != nil {
			e.t.Fatalf("no event for %s within a simulated day: %v", what, err)
		}
		for _, ev := range evs {
			e.seq = ev.Seq
			if match(ev) {
				return ev
			}
		}
	}
}

func (e *inprocEnv) eventsOf(kind string) []world.Event {
	var out []world.Event
	for _, ev := range e.w.Events() {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// inprocScenario is one run of the agent through a scale-in.
type inprocScenario struct {
	env      *inprocEnv
	instance string
	steps    *lifecycletest.StepRunner
	idleFrom time.Time // the agent settled, InService
	// idleCalls are the calls made while the agent idled InService.
	idleCalls []inprocCall
	scaleIn   time.Time // SetDesiredCapacity(0) returned
	agentEnd  time.Time // Run returned
}

// runScaleIn creates a group with one instance and a terminate hook of
// heartbeatTimeout seconds (default result ABANDON), runs the real agent
// for the instance with a fake one-step plan whose step takes stepTime, lets
// it idle InService for idle, scales in, and waits for Run to return on its
// own. Call it inside the bubble.
func runScaleIn(t *testing.T, heartbeatTimeout int32, stepTime, idle time.Duration) *inprocScenario {
	t.Helper()
	e := newInprocEnv(t)
	ctx := t.Context()
	if _, err := e.asg.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String("lc"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro"),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(inprocGroup), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(1), DesiredCapacity: aws.Int32(1), AvailabilityZones: []string{"us-east-1a"},
		LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{{
			LifecycleHookName: aws.String(inprocHook), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"),
			HeartbeatTimeout: aws.Int32(heartbeatTimeout), DefaultResult: aws.String("ABANDON"),
		}},
	}); err != nil {
		t.Fatal(err)
	}
	id := e.next("InService", func(ev world.Event) bool {
		return ev.Kind == world.EvInstanceState && ev.State == world.StateInService
	}).Instance

	steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{inprocStep: {Duration: stepTime}}}
	cfg := config.DefaultAgent()
	cfg.Paths.JournalDir = t.TempDir()
	cfg.Terminate.Hook = inprocHook
	cfg.Terminate.Steps = []config.Step{{
		Name: inprocStep, Command: []string{"/usr/local/bin/drain"}, Timeout: config.Duration(3 * time.Hour),
		OnFailure: config.FailureContinue, OnInterrupt: config.InterruptRerun,
	}}
	asg := awscloud.NewAutoScaling(e.cfg)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := agent.New(cfg, agent.Deps{
		Metadata:  awscloud.NewMetadata(e.metadataConfig(id)),
		Group:     awscloud.NewGroup(asg),
		Completer: asg,
		Steps:     steps,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() {
		cancel()
		<-done
	}()

	s := &inprocScenario{env: e, instance: id, steps: steps}
	synctest.Wait() // the agent's first poll is done: it knows the instance InService
	s.idleFrom = time.Now()
	mark := e.rt.mark()
	if idle > 0 {
		time.Sleep(idle) // a measured window of simulated time, not a wait for a guess
	}
	s.idleCalls = e.rt.since(mark)
	if _, err := e.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{
		AutoScalingGroupName: aws.String(inprocGroup), DesiredCapacity: aws.Int32(0),
	}); err != nil {
		t.Fatal(err)
	}
	s.scaleIn = time.Now()
	e.next("Terminated", func(ev world.Event) bool {
		return ev.Kind == world.EvInstanceState && ev.Instance == id && ev.State == world.StateTerminated
	})
	// Run returns on its own once the termination is completed (or found
	// gone); two simulated days is far beyond any plan here.
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Errorf("agent Run: %v", err)
		}
	case <-time.After(48 * time.Hour):
		t.Error("the agent's Run did not return within two simulated days of the termination")
	}
	s.agentEnd = time.Now()
	return s
}

// stepStart returns when the step started; it fails the test unless it
// started exactly once.
func (s *inprocScenario) stepStart(t *testing.T) time.Time {
	t.Helper()
	var starts []time.Time
	for _, c := range s.steps.Calls() {
		if c.Op == "start" {
			starts = append(starts, c.At)
		}
	}
	if len(starts) != 1 {
		t.Fatalf("step started %d times (%v), want once", len(starts), s.steps.Calls())
	}
	return starts[0]
}

func (s *inprocScenario) logCalls(t *testing.T) {
	t.Helper()
	count := map[string]int{}
	for _, c := range s.env.rt.callsOf("", time.Time{}, time.Time{}) {
		count[c.Host[:min(len(c.Host), 5)]+" "+c.Op]++
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, fmt.Sprintf("%s=%d", k, count[k]))
	}
	slices.Sort(keys)
	t.Logf("calls: %s", strings.Join(keys, ", "))
}

func TestAgentInProcessRealLimits(t *testing.T) {
	t.Run("two-hour step is heartbeaten every half hour and completed CONTINUE", func(t *testing.T) {
		inBubble(t, func(t *testing.T) {
			sim0 := time.Now()
			s := runScaleIn(t, 3600, 2*time.Hour, time.Hour)
			e := s.env
			start := s.stepStart(t)

			var completed []world.Event
			for _, ev := range e.eventsOf(world.EvActionCompleted) {
				if ev.Hook == inprocHook {
					completed = append(completed, ev)
				}
			}
			if len(completed) != 1 || completed[0].Result != "CONTINUE" || completed[0].Detail != "completed" {
				t.Errorf("terminate action ended %+v, want one completion CONTINUE (completed)", completed)
			} else if got := completed[0].Time.Sub(start); got != 2*time.Hour {
				t.Errorf("completed %v after the step started, want 2h0m0s", got)
			}
			if timedOut := e.eventsOf(world.EvActionTimedOut); len(timedOut) != 0 {
				t.Errorf("action timed out: %+v", timedOut)
			}
			// Heartbeats at confirmation (the poll that saw the transition
			// also started the step), then every HeartbeatTimeout/2 = 30 min
			// while the step runs.
			// At the instant the step ends (2h), the heartbeat timer and the
			// step's timer fire together; whether the Executor sends that
			// fifth heartbeat before it sees the plan end depends on which
			// goroutine runs first, so one at exactly 2h is allowed.
			var got []time.Duration
			for _, ev := range e.eventsOf(world.EvActionHeartbeat) {
				got = append(got, ev.Time.Sub(start))
			}
			want := []time.Duration{0, 30 * time.Minute, 60 * time.Minute, 90 * time.Minute}
			if !slices.Equal(got, want) && !slices.Equal(got, append(want, 2*time.Hour)) {
				t.Errorf("heartbeats at %v after the step started, want %v (and perhaps one at 2h0m0s, as the step ends)", got, want)
			}
			if d := start.Sub(s.scaleIn); d < 0 || d > 5*time.Second {
				t.Errorf("step started %v after the scale-in, want within one poll interval (5s)", d)
			}
			var nAPI, nIMDS int
			for _, c := range s.idleCalls {
				if c.Host == e.apiHost {
					nAPI++
				} else {
					nIMDS++
				}
			}
			t.Logf("idle InService for %v: %d Auto Scaling calls, %d IMDS calls", s.scaleIn.Sub(s.idleFrom), nAPI, nIMDS)
			s.logCalls(t)
			t.Logf("simulated %v", s.agentEnd.Sub(sim0))
		})
	})

	t.Run("global timeout ends the action with the default result and the heartbeats", func(t *testing.T) {
		inBubble(t, func(t *testing.T) {
			sim0 := time.Now()
			s := runScaleIn(t, 30, 2*time.Hour, 0) // global timeout 3000 s
			e := s.env
			start := s.stepStart(t)

			started := e.eventsOf(world.EvActionStarted)
			timedOut := e.eventsOf(world.EvActionTimedOut)
			if len(started) != 1 || len(timedOut) != 1 {
				t.Fatalf("%d actions started, %d timed out; want one of each", len(started), len(timedOut))
			}
			to := timedOut[0]
			if to.Detail != "global timeout" || to.Result != "ABANDON" {
				t.Errorf("action timed out %q with %s, want global timeout with the default result ABANDON", to.Detail, to.Result)
			}
			if got := to.Time.Sub(started[0].Time); got != 3000*time.Second {
				t.Errorf("action timed out %v after it started, want 50m0s (100 × 30 s)", got)
			}
			for _, ev := range e.eventsOf(world.EvActionCompleted) {
				if ev.Detail != "global timeout" {
					t.Errorf("action also completed %+v; want only the timeout's completion", ev)
				}
			}
			// Every 15 s from the step's start, while before both AWS's
			// deadline and the agent's own (counted from when it saw the
			// action, no earlier than AWS's start).
			var wantN int
			for at := start; at.Before(to.Time); at = at.Add(15 * time.Second) {
				wantN++
			}
			hb := e.eventsOf(world.EvActionHeartbeat)
			if len(hb) != wantN {
				t.Errorf("%d heartbeats recorded, want %d (every 15 s from %v until the global timeout)", len(hb), wantN, start.Sub(started[0].Time))
			}
			// Calls after the timeout: at most the one heartbeat that learns
			// the action is gone (before the agent's own deadline), and
			// none once the agent's deadline has passed.
			agentDeadline := start.Add(3000 * time.Second)
			late := e.rt.callsOf("RecordLifecycleActionHeartbeat", to.Time, time.Time{})
			for _, c := range late {
				if c.Status == http.StatusOK {
					t.Errorf("heartbeat accepted at %v, after the global timeout", c.At.Sub(started[0].Time))
				}
				if !c.At.Before(agentDeadline) {
					t.Errorf("heartbeat sent at %v, after the agent's own deadline", c.At.Sub(started[0].Time))
				}
			}
			if len(late) > 1 {
				t.Errorf("%d heartbeats sent after the global timeout, want at most one (ErrNoActiveAction ends them)", len(late))
			}
			completes := e.rt.callsOf("CompleteLifecycleAction", time.Time{}, time.Time{})
			t.Logf("action started %v before the step; %d heartbeats; %d after the timeout; %d CompleteLifecycleAction calls (status %v); agent returned %v after the step started",
				start.Sub(started[0].Time), len(hb), len(late), len(completes), statuses(completes), s.agentEnd.Sub(start))
			s.logCalls(t)
			t.Logf("simulated %v", s.agentEnd.Sub(sim0))
		})
	})
}

// inBubble runs f in a synctest bubble and logs the real time it took.
func inBubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	real0 := time.Now()
	synctest.Test(t, f)
	t.Logf("real time: %v", time.Since(real0))
}

func statuses(calls []inprocCall) []int {
	out := make([]int, len(calls))
	for i, c := range calls {
		out[i] = c.Status
	}
	return out
}
