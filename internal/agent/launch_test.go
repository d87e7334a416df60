package agent_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

func commandProbe(name string, fatal []int, argv ...string) config.Probe {
	return config.Probe{Name: name, Command: &config.CommandProbe{Argv: argv, Timeout: config.Duration(30 * time.Second), FatalExitCodes: fatal}}
}

// launchConfig probes every 2 s, wants 3 passes in a row, and gives up
// after a minute.
func launchConfig(t *testing.T, probes ...config.Probe) config.Agent {
	cfg := newConfig(t)
	cfg.Launch.Probes = probes
	cfg.Launch.Interval = config.Duration(2 * time.Second)
	cfg.Launch.ConsecutivePasses = 3
	cfg.Launch.Timeout = config.Duration(time.Minute)
	return cfg
}

// Command probes run real processes: inside the bubble they take no
// simulated time, so rounds, heartbeats and timeouts are exact.
func TestLaunch(t *testing.T) {
	pass := commandProbe("ready", nil, "true")
	never := commandProbe("never", nil, "false")
	fatal := commandProbe("schema", []int{3}, "sh", "-c", "exit 3")
	for _, c := range []struct {
		name      string
		probes    []config.Probe
		onTimeout config.OnTimeout
		onFatal   config.OnFatal
		want      lifecycle.Result
		wantAt    time.Duration
		wantBeats []time.Duration // per hook
	}{
		{"probes pass three times in a row: CONTINUE", []config.Probe{pass}, config.TimeoutAbandon, config.FatalAbandon, lifecycle.Continue, 4 * time.Second, []time.Duration{0}},
		{"no probes: CONTINUE at once", nil, config.TimeoutAbandon, config.FatalAbandon, lifecycle.Continue, 0, nil},
		{"probe never passes: ABANDON at the timeout", []config.Probe{pass, never}, config.TimeoutAbandon, config.FatalAbandon, lifecycle.Abandon, time.Minute, []time.Duration{0, 25 * time.Second, 50 * time.Second}},
		{"probe never passes with on_timeout continue: CONTINUE at the timeout", []config.Probe{never}, config.TimeoutContinue, config.FatalAbandon, lifecycle.Continue, time.Minute, []time.Duration{0, 25 * time.Second, 50 * time.Second}},
		{"fatal exit code: ABANDON at once", []config.Probe{pass, fatal}, config.TimeoutContinue, config.FatalAbandon, lifecycle.Abandon, 0, []time.Duration{0}},
		{"fatal exit code with on_fatal wait: probing goes on to the timeout", []config.Probe{fatal}, config.TimeoutContinue, config.FatalWait, lifecycle.Continue, time.Minute, []time.Duration{0, 25 * time.Second, 50 * time.Second}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Now()
				cfg := launchConfig(t, c.probes...)
				cfg.Launch.OnTimeout, cfg.Launch.OnFatal = c.onTimeout, c.onFatal
				md := &fakeMetadata{target: "InService"}
				asg := &fakeGroup{t: t, state: "Pending:Wait", hooks: []lifecycle.Hook{
					launchHook("warmup-a", 50*time.Second),
					terminateHook("drain", time.Hour),
					launchHook("warmup-b", 50*time.Second),
				}}
				aws := okCompleter(t)
				r := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: aws, Steps: &lifecycletest.StepRunner{T: t}}))

				time.Sleep(2 * time.Minute)
				synctest.Wait()
				if r.returned() {
					t.Fatalf("Run returned %v after the launch; it should keep running", r.err)
				}
				comps := aws.Completions()
				var hooks []string
				for _, comp := range comps {
					hooks = append(hooks, comp.Action.Hook.Name)
					if comp.Result != c.want || comp.At.Sub(t0) != c.wantAt || comp.Action.Token != "" || comp.Action.InstanceID != instanceID || comp.Action.Group != groupName {
						t.Errorf("Complete(%+v, %s) at %v; want %s at %v by instance id", comp.Action, comp.Result, comp.At.Sub(t0), c.want, c.wantAt)
					}
				}
				slices.Sort(hooks)
				if want := []string{"warmup-a", "warmup-b"}; !reflect.DeepEqual(hooks, want) {
					t.Errorf("completed hooks %q, want %q (each launch hook once)", hooks, want)
				}
				for _, h := range []string{"warmup-a", "warmup-b"} {
					var beats []lifecycletest.Call
					for _, b := range aws.Heartbeats() {
						if b.Action.Hook.Name == h {
							beats = append(beats, b)
						}
					}
					if got := offsets(t0, beats); !reflect.DeepEqual(got, append([]time.Duration{}, c.wantBeats...)) {
						t.Errorf("heartbeats of %s at %v, want %v", h, got, c.wantBeats)
					}
				}
				if err := r.stop(); err != nil {
					t.Errorf("Run = %v after cancel, want nil", err)
				}
			})
		})
	}
}

func TestLaunchSeenAfterPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		md := &fakeMetadata{}
		// Not listed for a moment after launch, then Pending.
		asg := &fakeGroup{t: t, notListed: 2, state: "Pending", hooks: []lifecycle.Hook{launchHook("warmup", time.Hour)}}
		// Completed, the instance goes into service.
		aws := &lifecycletest.Completer{T: t, OnHeartbeat: lifecycletest.HeartbeatOK,
			OnComplete: func(context.Context, int, lifecycle.Action, lifecycle.Result) error {
				asg.setState("InService")
				return nil
			}}
		r := start(t, newAgent(t, newConfig(t), agent.Deps{Metadata: md, Group: asg, Completer: aws, Steps: &lifecycletest.StepRunner{T: t}}))

		time.Sleep(32 * time.Second)
		md.setTarget("InService")
		asg.setState("Pending:Wait")
		time.Sleep(time.Minute)
		synctest.Wait()
		comps := aws.Completions()
		// Polls every 5 s; not listed at 0 s and 5 s, then retried after
		// 1 and 2 polls: listed (Pending) at 15 s; polled while Pending.
		if len(comps) != 1 || comps[0].Result != lifecycle.Continue || comps[0].At.Sub(t0) != 35*time.Second {
			t.Errorf("completions %+v, want one CONTINUE at 35s", comps)
		}
		n, _ := asg.calls()
		if err := r.stop(); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		// At 0 s and 5 s (not listed), 15 s (retried after one skipped
		// poll), 20 s to 30 s (Pending), 35 s (Pending:Wait; the target
		// changed) and 40 s (the launch was completed: InService); then no
		// more: nothing calls for it.
		if n != 8 {
			t.Errorf("%d DescribeAutoScalingInstances calls, want 8", n)
		}
	})
}

func TestLaunchGoneWhileProbing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := launchConfig(t, commandProbe("ready", nil, "false"))
		cfg.Launch.Timeout = config.Duration(10 * time.Minute)
		md := &fakeMetadata{target: "InService"}
		asg := &fakeGroup{t: t, state: "Pending:Wait", hooks: []lifecycle.Hook{launchHook("warmup", 50*time.Second)}}
		aws := &lifecycletest.Completer{T: t, OnHeartbeat: func(_ context.Context, n int, _ lifecycle.Action) error {
			if n == 1 {
				return fmt.Errorf("ValidationError: No active Lifecycle Action found with instance ID %s: %w", instanceID, lifecycle.ErrNoActiveAction)
			}
			return nil
		}} // Complete is not expected
		r := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: aws, Steps: &lifecycletest.StepRunner{T: t}}))
		time.Sleep(15 * time.Minute)
		synctest.Wait()
		if n := len(aws.Heartbeats()); n != 2 {
			t.Errorf("%d heartbeats, want 2: probing stops when the action is gone", n)
		}
		if r.returned() {
			t.Errorf("Run returned %v, want it to keep running", r.err)
		}
		if err := r.stop(); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
}
