package agent_test

import (
	"cmp"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

func TestTerminateWaitsForTerminatingWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		cfg := newConfig(t)
		flush := step("flush")
		flush.Env = map[string]string{"FOO": "bar"}
		cfg.Terminate.Steps = []config.Step{step("deregister"), flush}
		md := &fakeMetadata{target: "Terminated"}
		asg := &fakeGroup{t: t, state: "Terminating", hooks: []lifecycle.Hook{launchHook("warmup", time.Hour), terminateHook("drain", 10*time.Minute)}}
		aws := okCompleter(t)
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{
			"deregister": {Duration: time.Minute},
			"flush":      {Duration: 10 * time.Minute},
		}}
		r := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: aws, Steps: steps}))

		// Load balancer draining: Terminating:Wait comes later.
		time.Sleep(4*time.Minute + 58*time.Second)
		synctest.Wait()
		if calls := aws.Calls(); len(calls) != 0 {
			t.Errorf("calls before Terminating:Wait: %+v; want none", calls)
		}
		asg.setState("Terminating:Wait")
		<-r.done

		if r.err != nil || r.at.Sub(t0) != 11*time.Minute {
			t.Errorf("Run = %v at %v; want nil at 11m0s, once the action was completed", r.err, r.at.Sub(t0))
		}
		if got, want := startOffsets(t0, steps.Calls()), []time.Duration{0, time.Minute}; !reflect.DeepEqual(got, want) {
			t.Errorf("steps started at %v, want %v: before the action exists", got, want)
		}
		if got, want := offsets(t0, aws.Heartbeats()), []time.Duration{5 * time.Minute, 10 * time.Minute}; !reflect.DeepEqual(got, want) {
			t.Errorf("heartbeats at %v, want %v: from confirmation, every HeartbeatTimeout/2", got, want)
		}
		comps := aws.Completions()
		if len(comps) != 1 || comps[0].Result != lifecycle.Continue || comps[0].At.Sub(t0) != 11*time.Minute ||
			comps[0].Action.Hook.Name != "drain" || comps[0].Action.Token != "" {
			t.Errorf("completions %+v, want one CONTINUE of hook drain by instance id at 11m0s", comps)
		}

		env := envOf(t, steps.Calls(), "flush")
		want := map[string]string{
			"LIFEGUARD_INSTANCE_ID":           instanceID,
			"LIFEGUARD_GROUP":                 groupName,
			"LIFEGUARD_HOOK":                  "drain",
			"LIFEGUARD_TRANSITION":            "autoscaling:EC2_INSTANCE_TERMINATING",
			"LIFEGUARD_LIFECYCLE_TOKEN":       "",
			"LIFEGUARD_DEADLINE":              t0.Add(61 * time.Minute).UTC().Format(time.RFC3339), // its own timeout, before the action's at 100 × HeartbeatTimeout
			"LIFEGUARD_NOTIFICATION_METADATA": "meta-drain",
			"LIFEGUARD_REASON":                "lifecycle-hook",
			"FOO":                             "bar",
		}
		if !reflect.DeepEqual(env, want) {
			t.Errorf("flush's environment additions:\n got %v\nwant %v", env, want)
		}
	})
}

func TestTerminateSigns(t *testing.T) {
	for _, c := range []struct {
		name        string
		target      string
		state       string
		sign        func(md *fakeMetadata, a *agent.Agent) // at 28 s, before the poll at 30 s
		stepTimeout time.Duration                          // default 1h
		hookTimeout time.Duration                          // the hook's HeartbeatTimeout; default 15m (its deadline 25h after it is seen)
		wantReason  string
		wantAt      time.Duration
		wantHook    string // LIFEGUARD_HOOK: empty until a lifecycle action is known
		deadline    func(t0 time.Time) string
	}{
		{
			// The notice is read a minute after it was last read (at
			// start), well within its two minutes.
			name: "spot notice alone starts the plan with reason spot-interruption within a minute", target: "InService", state: "InService",
			sign: func(md *fakeMetadata, _ *agent.Agent) {
				md.setSpot(&agent.SpotNotice{Action: "terminate", Time: time.Now().Add(2 * time.Minute)})
			},
			wantReason: "spot-interruption", wantAt: time.Minute,
			deadline: func(t0 time.Time) string { return t0.Add(148 * time.Second).UTC().Format(time.RFC3339) },
		},
		{
			// Auto Scaling turns the target state on the notice: the
			// change makes the agent read the notice at once.
			name: "spot notice with the target state Terminated starts the plan at the next poll", target: "InService", state: "InService",
			sign: func(md *fakeMetadata, _ *agent.Agent) {
				md.setSpot(&agent.SpotNotice{Action: "terminate", Time: time.Now().Add(2 * time.Minute)})
				md.setTarget("Terminated")
			},
			wantReason: "spot-interruption", wantAt: 30 * time.Second,
			deadline: func(t0 time.Time) string { return t0.Add(148 * time.Second).UTC().Format(time.RFC3339) },
		},
		{
			name: "a spot notice's step gets its own timeout when that comes first", target: "InService", state: "InService",
			stepTimeout: 5 * time.Second,
			sign: func(md *fakeMetadata, _ *agent.Agent) {
				md.setSpot(&agent.SpotNotice{Action: "terminate", Time: time.Now().Add(2 * time.Minute)})
			},
			wantReason: "spot-interruption", wantAt: time.Minute,
			deadline: func(t0 time.Time) string { return t0.Add(65 * time.Second).UTC().Format(time.RFC3339) },
		},
		{
			name: "target state Terminated starts the plan with reason lifecycle-hook", target: "InService", state: "InService",
			sign:       func(md *fakeMetadata, _ *agent.Agent) { md.setTarget("Terminated") },
			wantReason: "lifecycle-hook", wantAt: 30 * time.Second, wantHook: "drain",
			deadline: func(t0 time.Time) string { return t0.Add(30*time.Second + time.Hour).UTC().Format(time.RFC3339) },
		},
		{
			name: "a 5s step gets its own deadline, not the action's", target: "InService", state: "InService",
			stepTimeout: 5 * time.Second,
			sign:        func(md *fakeMetadata, _ *agent.Agent) { md.setTarget("Terminated") },
			wantReason:  "lifecycle-hook", wantAt: 30 * time.Second, wantHook: "drain",
			deadline: func(t0 time.Time) string { return t0.Add(35 * time.Second).UTC().Format(time.RFC3339) },
		},
		{
			name: "the action's deadline when it comes before the step's timeout", target: "InService", state: "InService",
			hookTimeout: 30 * time.Second, // deadline 50m after it is seen
			sign:        func(md *fakeMetadata, _ *agent.Agent) { md.setTarget("Terminated") },
			wantReason:  "lifecycle-hook", wantAt: 30 * time.Second, wantHook: "drain",
			deadline: func(t0 time.Time) string { return t0.Add(30*time.Second + 50*time.Minute).UTC().Format(time.RFC3339) },
		},
		{
			name: "Drain starts the plan at once with reason sigterm", target: "InService", state: "InService",
			sign:       func(_ *fakeMetadata, a *agent.Agent) { a.Drain() },
			wantReason: "sigterm", wantAt: 28 * time.Second,
			deadline: func(t0 time.Time) string { return t0.Add(28*time.Second + time.Hour).UTC().Format(time.RFC3339) },
		},
		{
			name: "Standby runs no plan", target: "Standby", state: "Standby",
			sign: func(*fakeMetadata, *agent.Agent) {},
		},
		{
			name: "warm pool runs no plan", target: "Warmed:Stopped", state: "Warmed:Pending:Wait",
			sign: func(*fakeMetadata, *agent.Agent) {},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Now()
				cfg := newConfig(t)
				flush := step("flush")
				if c.stepTimeout > 0 {
					flush.Timeout = config.Duration(c.stepTimeout)
				}
				cfg.Terminate.Steps = []config.Step{flush}
				hookTimeout := cmp.Or(c.hookTimeout, 15*time.Minute)
				md := &fakeMetadata{target: c.target}
				asg := &fakeGroup{t: t, state: c.state, hooks: []lifecycle.Hook{launchHook("warmup", time.Hour), terminateHook("drain", hookTimeout)}}
				steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Minute}}}
				a := newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: noCalls(t), Steps: steps})
				r := start(t, a)
				time.Sleep(28 * time.Second)
				c.sign(md, a)
				time.Sleep(10 * time.Minute)
				synctest.Wait()

				calls := steps.Calls()
				if c.wantReason == "" {
					if len(calls) != 0 {
						t.Errorf("step calls %+v, want none", calls)
					}
				} else {
					if got := startOffsets(t0, calls); !reflect.DeepEqual(got, []time.Duration{c.wantAt}) {
						t.Errorf("flush started at %v, want at %v", got, c.wantAt)
					}
					env := envOf(t, calls, "flush")
					if env["LIFEGUARD_REASON"] != c.wantReason || env["LIFEGUARD_HOOK"] != c.wantHook || env["LIFEGUARD_DEADLINE"] != c.deadline(t0) {
						t.Errorf("flush's environment %v, want reason %s, hook %q, deadline %s", env, c.wantReason, c.wantHook, c.deadline(t0))
					}
				}
				// Nothing is heartbeated or completed: Auto Scaling never
				// reported Terminating:Wait (noCalls fails otherwise).
				if c.wantReason == "sigterm" {
					if !r.returned() || r.err != nil || r.at.Sub(t0) != 90*time.Second {
						t.Errorf("Run returned %v (%v at %v); want nil at 1m30s, the first poll after the plan ran", r.returned(), r.err, r.at.Sub(t0))
					}
					return
				}
				if r.returned() {
					t.Errorf("Run returned %v; want it running", r.err)
				}
				if err := r.stop(); err != nil {
					t.Errorf("Run = %v after cancel, want nil", err)
				}
			})
		})
	}
}

func TestTerminateHooks(t *testing.T) {
	for _, c := range []struct {
		name      string
		hooks     []lifecycle.Hook
		cfgHook   string
		wantHooks []string // completed
		wantEnv   []string // LIFEGUARD_HOOK of the steps started
	}{
		{"every terminate hook is completed", []lifecycle.Hook{terminateHook("drain-a", time.Hour), launchHook("warmup", time.Hour), terminateHook("drain-b", time.Hour)}, "", []string{"drain-a", "drain-b"}, []string{"drain-a", "drain-b"}},
		{"only the configured hook is completed", []lifecycle.Hook{terminateHook("drain-a", time.Hour), terminateHook("drain-b", time.Hour)}, "drain-b", []string{"drain-b"}, []string{"drain-b"}},
		{"without a terminate hook the plan runs and nothing is completed", []lifecycle.Hook{launchHook("warmup", time.Hour)}, "", nil, []string{""}},
		{"without the configured hook the plan runs and nothing is completed", []lifecycle.Hook{terminateHook("drain-a", time.Hour)}, "drain-z", nil, []string{""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Now()
				cfg := newConfig(t)
				cfg.Terminate.Steps = []config.Step{step("flush")}
				cfg.Terminate.Hook = c.cfgHook
				md := &fakeMetadata{target: "Terminated"}
				asg := &fakeGroup{t: t, state: "Terminating:Wait", hooks: c.hooks}
				aws := okCompleter(t)
				if c.wantHooks == nil {
					aws = noCalls(t)
				}
				steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Minute}}}
				r := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: aws, Steps: steps}))
				<-r.done
				if r.err != nil || r.at.Sub(t0) != time.Minute {
					t.Errorf("Run = %v at %v, want nil at 1m0s", r.err, r.at.Sub(t0))
				}
				var completed []string
				for _, comp := range aws.Completions() {
					completed = append(completed, comp.Action.Hook.Name)
				}
				slices.Sort(completed)
				if !reflect.DeepEqual(completed, c.wantHooks) {
					t.Errorf("completed %q, want %q", completed, c.wantHooks)
				}
				var hooks []string
				for _, call := range steps.Calls() {
					for _, kv := range call.Env {
						if v, ok := strings.CutPrefix(kv, "LIFEGUARD_HOOK="); ok {
							hooks = append(hooks, v)
						}
					}
				}
				slices.Sort(hooks)
				if !reflect.DeepEqual(hooks, c.wantEnv) {
					t.Errorf("steps started for hooks %q, want %q (one plan per action)", hooks, c.wantEnv)
				}
			})
		})
	}
}

// An idle agent reads the target state at every poll; a spot instance
// (or one whose purchasing option IMDS does not say) reads the spot notice
// once a minute besides, an on-demand one only at start: an hour at the
// default 5 s polls is 720 + 60 metadata calls on a spot instance, 720 + 1
// on an on-demand one, never twice 720. Either reads the notice as soon as
// its target state changes (the reason may be a reclaim).
func TestIdleMetadataCalls(t *testing.T) {
	for _, c := range []struct {
		lifeCycle string
		spotReads int
	}{
		{"spot", 60},
		{"", 60},
		{"on-demand", 1},
		{"capacity-block", 1},
	} {
		t.Run("life cycle "+c.lifeCycle, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				md := &fakeMetadata{target: "InService", lifeCycle: c.lifeCycle}
				asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", time.Hour)}}
				r := start(t, newAgent(t, newConfig(t), agent.Deps{Metadata: md, Group: asg, Completer: noCalls(t), Steps: &lifecycletest.StepRunner{T: t}}))
				synctest.Wait()
				time.Sleep(time.Hour - time.Nanosecond)
				synctest.Wait()
				got := md.callCounts()
				want := map[string]int{"autoscaling/target-lifecycle-state": 720, "spot/instance-action": c.spotReads, "instance-life-cycle": 1}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("metadata calls in an idle hour %v, want %v", got, want)
				}
				// A change of target state has the notice read at once.
				md.setTarget("Warmed:Pending")
				time.Sleep(5 * time.Second)
				synctest.Wait()
				if n := md.callCounts()["spot/instance-action"]; n != c.spotReads+1 {
					t.Errorf("spot notice read %d times after the target state changed, want %d", n, c.spotReads+1)
				}
				if err := r.stop(); err != nil {
					t.Errorf("Run = %v", err)
				}
			})
		})
	}
}
