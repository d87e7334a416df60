package agent_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

// TestSIGTERM delivers SIGTERM to a running agent: on_sigterm exit stops
// it at once (the next agent resumes from the journal); drain starts the
// terminate plan with reason sigterm and stops once the plan has run.
func TestSIGTERM(t *testing.T) {
	for _, c := range []struct {
		name       string
		onSIGTERM  config.OnSIGTERM
		wantStarts []time.Duration
		wantAt     time.Duration
	}{
		{"exit stops the agent at once", config.SIGTERMExit, []time.Duration{}, 28 * time.Second},
		{"drain runs the plan, then stops", config.SIGTERMDrain, []time.Duration{28 * time.Second}, 90 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Now()
				cfg := newConfig(t)
				cfg.OnSIGTERM = c.onSIGTERM
				cfg.Terminate.Steps = []config.Step{step("flush")}
				md := &fakeMetadata{target: "InService"}
				asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 15*time.Minute)}}
				steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Minute}}}
				sigterm := make(chan os.Signal, 1)
				r := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: noCalls(t), Steps: steps, SIGTERM: sigterm}))
				time.Sleep(28 * time.Second)
				sigterm <- syscall.SIGTERM
				select {
				case <-r.done:
				case <-time.After(time.Hour):
					t.Fatal("Run did not return within an hour of SIGTERM")
				}
				if r.err != nil || r.at.Sub(t0) != c.wantAt {
					t.Errorf("Run = %v at %v, want nil at %v", r.err, r.at.Sub(t0), c.wantAt)
				}
				if got := startOffsets(t0, steps.Calls()); !reflect.DeepEqual(got, c.wantStarts) {
					t.Errorf("steps started at %v, want %v", got, c.wantStarts)
				}
				if c.onSIGTERM == config.SIGTERMDrain {
					if env := envOf(t, steps.Calls(), "flush"); env["LIFEGUARD_REASON"] != "sigterm" {
						t.Errorf("flush's reason %q, want sigterm", env["LIFEGUARD_REASON"])
					}
				}
			})
		})
	}
}

// TestComponents runs components beside the lifecycle loop: one that
// fails stops the agent with its error; when the loop is done (the
// termination completed) the others are stopped, and Run returns only
// once each has returned.
func TestComponents(t *testing.T) {
	t.Run("a failing component stops the agent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			t0 := time.Now()
			boom := errors.New("lease table unreachable")
			failing := agent.ComponentFunc(func(ctx context.Context) error {
				select {
				case <-time.After(time.Minute):
					return boom
				case <-ctx.Done():
					return nil
				}
			})
			md := &fakeMetadata{target: "InService"}
			asg := &fakeGroup{t: t, state: "InService"}
			r := start(t, newAgent(t, newConfig(t), agent.Deps{Metadata: md, Group: asg, Completer: noCalls(t),
				Steps: &lifecycletest.StepRunner{T: t}, Components: []agent.Component{failing}}))
			<-r.done
			if !errors.Is(r.err, boom) || r.at.Sub(t0) != time.Minute {
				t.Errorf("Run = %v at %v, want the component's error at 1m0s", r.err, r.at.Sub(t0))
			}
		})
	})
	t.Run("components stop when the termination has completed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			t0 := time.Now()
			var stopped time.Time
			watcher := agent.ComponentFunc(func(ctx context.Context) error {
				<-ctx.Done()
				time.Sleep(time.Second) // e.g. releasing a lease
				stopped = time.Now()
				return nil
			})
			cfg := newConfig(t)
			cfg.Terminate.Steps = []config.Step{step("flush")}
			md := &fakeMetadata{target: "Terminated"}
			asg := &fakeGroup{t: t, state: "Terminating:Wait", hooks: []lifecycle.Hook{terminateHook("drain", time.Hour)}}
			steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Minute}}}
			r := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: okCompleter(t), Steps: steps, Components: []agent.Component{watcher}}))
			<-r.done
			if r.err != nil || r.at.Sub(t0) != time.Minute+time.Second || stopped.Sub(t0) != time.Minute+time.Second {
				t.Errorf("Run = %v at %v (component stopped at %v), want nil at 1m1s, after the component", r.err, r.at.Sub(t0), stopped.Sub(t0))
			}
		})
	})
}

// TestStatusServer serves the status endpoints on Deps.Status while Run
// runs, and stops serving when it returns.
func TestStatusServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	md := &fakeMetadata{target: "InService"}
	asg := &fakeGroup{t: t, state: "InService"}
	r := start(t, newAgent(t, newConfig(t), agent.Deps{Metadata: md, Group: asg, Completer: noCalls(t), Steps: &lifecycletest.StepRunner{T: t}, Status: ln}))
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz while running: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 ok", resp.StatusCode, body)
	}
	if err := r.stop(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if _, err := client.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("GET /healthz after Run returned succeeded, want the server closed")
	}
}

// TestSettled calls Deps.Settled once start-up is over: with source imds
// once Auto Scaling says InService, not while the instance is Pending and
// its launch is handled; with source sqs only once the queue is open too.
// While the agent stays settled, Settled is called again at least every
// 110 s (before the Go runtime would force a collection of its own).
// Collections of the test process itself may add calls; none comes
// before start-up is over.
func TestSettled(t *testing.T) {
	t.Run("imds: after the launch, once in service", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			t0 := time.Now()
			md := &fakeMetadata{target: "InService"}
			asg := &fakeGroup{t: t, state: "Pending:Wait", hooks: []lifecycle.Hook{launchHook("warm", 10*time.Minute)}}
			var at []time.Duration
			r := start(t, newAgent(t, newConfig(t), agent.Deps{Metadata: md, Group: asg, Completer: okCompleter(t),
				Settled: func() { at = append(at, time.Since(t0)) }}))
			time.Sleep(time.Minute)
			synctest.Wait()
			if len(at) != 0 {
				t.Fatalf("Settled called at %v while Pending:Wait", at)
			}
			asg.setState("InService")
			time.Sleep(time.Minute)
			synctest.Wait()
			if len(at) == 0 || at[0] < time.Minute {
				t.Fatalf("Settled called at %v, want first after InService (at 1m0s)", at)
			}
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("sqs: once the queue is open, then at least every 110 s", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			t0 := time.Now()
			q := newFakeQueue()
			in := &fakeInbox{t: t, q: q, fail: 2}
			asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
			var at []time.Duration
			r := start(t, newAgent(t, sqsConfig(t, true), agent.Deps{Metadata: &fakeMetadata{}, Group: asg, Completer: noCalls(t), Inbox: in,
				Settled: func() { at = append(at, time.Since(t0)) }}))
			time.Sleep(time.Hour)
			synctest.Wait()
			opened := in.openedAt()
			if len(at) == 0 || opened.IsZero() || at[0] != opened.Sub(t0) {
				t.Fatalf("Settled called at %v, want first when the queue opened (%v)", at, opened.Sub(t0))
			}
			// The loop turns at each metadata poll (5 s by default).
			const most = 110*time.Second + 5*time.Second
			for i := 1; i < len(at); i++ {
				if gap := at[i] - at[i-1]; gap > most {
					t.Errorf("Settled called at %v then %v: %v apart, want at most %v", at[i-1], at[i], gap, most)
				}
			}
			if last := time.Hour - at[len(at)-1]; last > most {
				t.Errorf("Settled last called at %v of an hour idle, want at most %v before its end", at[len(at)-1], most)
			}
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// TestSettledAfterCollection calls Deps.Settled again at the loop's next
// turn after a garbage collection while the agent is settled (the
// collection mapped the runtime's tables again), and not while the
// instance is not in service.
func TestSettledAfterCollection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		md := &fakeMetadata{target: "InService"}
		asg := &fakeGroup{t: t, state: "Pending:Wait", hooks: []lifecycle.Hook{launchHook("warm", 10*time.Minute)}}
		var calls atomic.Int32 // the test reads it while the loop may call Settled
		r := start(t, newAgent(t, newConfig(t), agent.Deps{Metadata: md, Group: asg, Completer: okCompleter(t),
			Settled: func() { calls.Add(1) }}))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		runtime.GC()
		time.Sleep(10 * time.Second) // two polls
		synctest.Wait()
		if n := calls.Load(); n != 0 {
			t.Fatalf("Settled called %d times while Pending:Wait, after a collection; want none", n)
		}
		asg.setState("InService")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if calls.Load() == 0 {
			t.Fatal("Settled not called once InService")
		}
		for range 3 {
			before := calls.Load()
			runtime.GC()
			time.Sleep(5 * time.Second) // the next poll
			synctest.Wait()
			if n := calls.Load(); n == before {
				t.Fatalf("Settled not called at the poll after a collection (called %d times)", n)
			}
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestReleaseAfterCollection calls Deps.Release, when set, in place of
// Settled's later calls: by the loop's second turn after a garbage
// collection (past the poll that grows the shrunk stack again), and
// never while the instance is not in service; Settled is then called
// only once.
func TestReleaseAfterCollection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		md := &fakeMetadata{target: "InService"}
		asg := &fakeGroup{t: t, state: "Pending:Wait", hooks: []lifecycle.Hook{launchHook("warm", 10*time.Minute)}}
		var settled, released atomic.Int32 // the test reads them while the loop may call
		r := start(t, newAgent(t, newConfig(t), agent.Deps{Metadata: md, Group: asg, Completer: okCompleter(t),
			Settled: func() { settled.Add(1) }, Release: func() { released.Add(1) }}))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		runtime.GC()
		time.Sleep(10 * time.Second) // two polls
		synctest.Wait()
		if s, r := settled.Load(), released.Load(); s != 0 || r != 0 {
			t.Fatalf("Settled called %d times, Release %d, while Pending:Wait; want none", s, r)
		}
		asg.setState("InService")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if s := settled.Load(); s != 1 {
			t.Fatalf("Settled called %d times once InService, want 1", s)
		}
		for range 3 {
			before := released.Load()
			runtime.GC()
			time.Sleep(5 * time.Second) // the next poll: it may grow the stack again
			synctest.Wait()
			time.Sleep(5 * time.Second) // the one after: Release is due
			synctest.Wait()
			if n := released.Load(); n == before {
				t.Fatalf("Release not called at the second poll after a collection (called %d times)", n)
			}
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if s := settled.Load(); s != 1 {
			t.Errorf("Settled called %d times with Release set, want once", s)
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	})
}
