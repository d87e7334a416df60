package agent_test

import (
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

// TestRestart stops an agent in the middle of the terminate plan (SIGTERM
// with on_sigterm: exit) and starts another on the same journal: the step
// that finished is not run again, the running one is adopted from its
// supervisor, and the action is completed once.
func TestRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		cfg := newConfig(t)
		cfg.Terminate.Steps = []config.Step{step("deregister"), step("flush")}
		md := &fakeMetadata{target: "Terminated"}
		asg := &fakeGroup{t: t, state: "Terminating:Wait", hooks: []lifecycle.Hook{terminateHook("drain", 10*time.Minute)}}
		// Supervisors outlive agents: both agents share the StepRunner.
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{
			"deregister": {Duration: time.Minute},
			"flush":      {Duration: 10 * time.Minute},
		}}

		first := okCompleter(t)
		r1 := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: first, Steps: steps}))
		time.Sleep(4 * time.Minute)
		if err := r1.stop(); err != nil {
			t.Fatalf("first Run = %v after cancel, want nil", err)
		}
		if n := len(first.Completions()); n != 0 {
			t.Fatalf("first agent completed %d times before it was stopped, want 0", n)
		}

		second := okCompleter(t)
		r2 := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: second, Steps: steps}))
		<-r2.done
		if r2.err != nil || r2.at.Sub(t0) != 11*time.Minute {
			t.Errorf("second Run = %v at %v, want nil at 11m0s when flush ends", r2.err, r2.at.Sub(t0))
		}
		if got, want := steps.Started(), []string{"deregister", "flush"}; !reflect.DeepEqual(got, want) {
			t.Errorf("started %q, want %q: nothing started twice", got, want)
		}
		if got, want := steps.Adopted(), []string{"flush"}; !reflect.DeepEqual(got, want) {
			t.Errorf("adopted %q, want %q", got, want)
		}
		if got, want := offsets(t0, second.Heartbeats()), []time.Duration{4 * time.Minute, 9 * time.Minute}; !reflect.DeepEqual(got, want) {
			t.Errorf("second agent's heartbeats at %v, want %v (at once, then every 5m)", got, want)
		}
		comps := second.Completions()
		if len(comps) != 1 || comps[0].Result != lifecycle.Continue || comps[0].At.Sub(t0) != 11*time.Minute {
			t.Errorf("second agent's completions %+v, want one CONTINUE at 11m0s", comps)
		}

		// A third agent finds the action completed in the journal: no AWS
		// call, no step, and Run returns at once.
		r3 := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: noCalls(t), Steps: steps}))
		<-r3.done
		if r3.err != nil || r3.at.Sub(t0) != 11*time.Minute {
			t.Errorf("third Run = %v at %v, want nil at once", r3.err, r3.at.Sub(t0))
		}
		if n := len(steps.Calls()); n != 3 {
			t.Errorf("%d step calls after the third agent, want still 3", n)
		}
	})
}

// TestLaunchAgain checks that a completed launch action is forgotten once
// the instance has left the Pending states: actions learned from IMDS have
// no token, so the journal could otherwise take a later launch (from a warm
// pool) for the one already completed.
func TestLaunchAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		cfg := newConfig(t)
		md := &fakeMetadata{target: "InService"}
		asg := &fakeGroup{t: t, state: "Pending:Wait", hooks: []lifecycle.Hook{launchHook("warmup", time.Hour)}}
		aws := okCompleter(t)
		steps := &lifecycletest.StepRunner{T: t}
		r := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: aws, Steps: steps}))
		time.Sleep(time.Minute + 2*time.Second) // between polls
		// Scaled in into the warm pool, later out of it again.
		md.setTarget("Warmed:Running")
		asg.setState("Warmed:Running")
		time.Sleep(time.Minute)
		md.setTarget("InService")
		asg.setState("Pending:Wait")
		time.Sleep(time.Minute)
		if err := r.stop(); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if got, want := offsets(t0, aws.Completions()), []time.Duration{0, 2*time.Minute + 5*time.Second}; !reflect.DeepEqual(got, want) {
			t.Errorf("completions at %v, want %v: each launch once", got, want)
		}

		// A new agent while the instance is in service forgets the
		// completed launch; a launch that follows is completed again.
		asg.setState("InService")
		second := okCompleter(t)
		r2 := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: second, Steps: steps}))
		time.Sleep(time.Minute + 2*time.Second)
		md.setTarget("Warmed:Running")
		asg.setState("Warmed:Running")
		time.Sleep(time.Minute)
		md.setTarget("InService")
		asg.setState("Pending:Wait")
		time.Sleep(time.Minute)
		if err := r2.stop(); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if n := len(second.Completions()); n != 1 {
			t.Errorf("second agent completed %d launch actions, want 1", n)
		}
	})
}
