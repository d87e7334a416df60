package agent

import (
	"reflect"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// TestDecide checks the loop's decision as a pure function of what it
// observed.
func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	warmup := lifecycle.Hook{Name: "warmup", Transition: lifecycle.TransitionLaunching, HeartbeatTimeout: time.Hour}
	drainA := lifecycle.Hook{Name: "drain-a", Transition: lifecycle.TransitionTerminating, HeartbeatTimeout: time.Hour}
	drainB := lifecycle.Hook{Name: "drain-b", Transition: lifecycle.TransitionTerminating, HeartbeatTimeout: time.Hour}
	hooks := []lifecycle.Hook{warmup, drainA, drainB}
	known := view{now: t0, instanceID: "i-1", group: "web", state: "InService", target: "InService",
		hooks: hooks, hooksFresh: true, pollInterval: 5 * time.Second}
	with := func(f func(v *view)) view {
		v := known
		f(&v)
		return v
	}
	message := func(t lifecycle.Transition, hook string) []lifecycle.Key {
		return []lifecycle.Key{{Instance: "i-1", Transition: t, Hook: hook}}
	}
	for _, c := range []struct {
		name string
		v    view
		want decision
	}{
		{"nothing known yet: nothing to do", view{}, decision{}},
		{"drain before the instance id is known: give up", view{draining: true}, decision{act: actGiveUp}},
		{"drain after giving up: nothing more", view{draining: true, gaveUp: true}, decision{}},
		{"in service: nothing to do", known, decision{}},
		{"target Terminated starts the plan for every terminate hook",
			with(func(v *view) { v.target = "Terminated" }),
			decision{act: actStartTerminate, reason: lifecycle.ReasonLifecycleHook, hooks: []lifecycle.Hook{drainA, drainB}}},
		{"only the configured terminate hook",
			with(func(v *view) { v.state, v.terminateHook = "Terminating:Wait", "drain-b" }),
			decision{act: actStartTerminate, reason: lifecycle.ReasonLifecycleHook, hooks: []lifecycle.Hook{drainB}}},
		{"the configured hook is not on the group: the plan runs with none",
			with(func(v *view) { v.target, v.terminateHook = "Terminated", "drain-z" }),
			decision{act: actStartTerminate, reason: lifecycle.ReasonLifecycleHook}},
		{"a spot notice comes first",
			with(func(v *view) { v.spot, v.target = true, "Terminated" }),
			decision{act: actStartTerminate, reason: lifecycle.ReasonSpotInterruption, hooks: []lifecycle.Hook{drainA, drainB}}},
		{"a spot notice before the group is known waits for it",
			with(func(v *view) { v.spot, v.group, v.hooks = true, "", nil }),
			decision{}},
		{"a drain starts the plan",
			with(func(v *view) { v.draining = true }),
			decision{act: actStartTerminate, reason: lifecycle.ReasonSIGTERM, hooks: []lifecycle.Hook{drainA, drainB}}},
		{"a drain before the group is known runs the plan with no hook",
			with(func(v *view) { v.draining, v.group, v.hooks, v.hooksFresh = true, "", nil, false }),
			decision{act: actStartTerminate, reason: lifecycle.ReasonSIGTERM}},
		{"a new action reads the hooks first",
			with(func(v *view) { v.target, v.hooksFresh = "Terminated", false }),
			decision{act: actReadHooks}},
		{"a terminate message starts the plan, unverified",
			with(func(v *view) { v.messages = message(lifecycle.TransitionTerminating, "drain-a") }),
			decision{act: actStartTerminate, reason: lifecycle.ReasonLifecycleHook, hooks: []lifecycle.Hook{drainA, drainB}, unverified: true}},
		{"a terminate message with IMDS's target Terminated is verified",
			with(func(v *view) {
				v.target, v.messages = "Terminated", message(lifecycle.TransitionTerminating, "drain-a")
			}),
			decision{act: actStartTerminate, reason: lifecycle.ReasonLifecycleHook, hooks: []lifecycle.Hook{drainA, drainB}}},
		{"a terminate message naming a hook read before starts the plan at once with those hooks",
			with(func(v *view) {
				v.hooksFresh, v.hooksKnown, v.messages = false, true, message(lifecycle.TransitionTerminating, "drain-a")
			}),
			decision{act: actStartTerminate, reason: lifecycle.ReasonLifecycleHook, hooks: []lifecycle.Hook{drainA, drainB}, stale: true, unverified: true}},
		{"a terminate message naming a hook not read before reads the hooks first",
			with(func(v *view) {
				v.hooksFresh, v.hooksKnown, v.messages = false, true, message(lifecycle.TransitionTerminating, "drain-c")
			}),
			decision{act: actReadHooks}},
		{"IMDS's target Terminated reads the hooks first, even when read before",
			with(func(v *view) { v.hooksFresh, v.hooksKnown, v.target = false, true, "Terminated" }),
			decision{act: actReadHooks}},
		{"a message naming a hook not listed waits for it",
			with(func(v *view) { v.messages = message(lifecycle.TransitionTerminating, "drain-c") }),
			decision{act: actWaitForHook, missing: []string{"drain-c"}}},
		{"… for at most five polls",
			with(func(v *view) {
				v.messages, v.hookWait = message(lifecycle.TransitionTerminating, "drain-c"), t0.Add(-24*time.Second)
			}),
			decision{act: actWaitForHook, missing: []string{"drain-c"}}},
		{"… then goes on without it",
			with(func(v *view) {
				v.messages, v.hookWait = message(lifecycle.TransitionTerminating, "drain-c"), t0.Add(-25*time.Second)
			}),
			decision{act: actStartTerminate, reason: lifecycle.ReasonLifecycleHook, hooks: []lifecycle.Hook{drainA, drainB}, missing: []string{"drain-c"}, unverified: true}},
		{"Terminating:Wait confirms the plan started",
			with(func(v *view) { v.terminating, v.state = true, "Terminating:Wait" }),
			decision{act: actConfirm, why: "lifecycle state Terminating:Wait"}},
		{"Terminated confirms it too",
			with(func(v *view) { v.terminating, v.state = true, "Terminated" }),
			decision{act: actConfirm, why: "lifecycle state Terminated"}},
		{"a terminate message confirms it",
			with(func(v *view) {
				v.terminating, v.state, v.messages = true, "Terminating", message(lifecycle.TransitionTerminating, "drain-a")
			}),
			decision{act: actConfirm, why: "lifecycle message"}},
		{"Terminating does not confirm",
			with(func(v *view) { v.terminating, v.state = true, "Terminating" }),
			decision{}},
		{"confirmed: nothing more",
			with(func(v *view) { v.terminating, v.confirmed, v.state = true, true, "Terminating:Wait" }),
			decision{}},
		{"Pending:Wait starts the launch",
			with(func(v *view) { v.state = "Pending:Wait" }),
			decision{act: actStartLaunch, hooks: []lifecycle.Hook{warmup}}},
		{"a launch under way is not started again",
			with(func(v *view) { v.state, v.launching = "Pending:Wait", true }),
			decision{}},
		{"a launch handled is not started again",
			with(func(v *view) { v.state, v.launched = "Pending:Wait", true }),
			decision{}},
		{"the configured launch hook is not on the group: nothing to complete",
			with(func(v *view) { v.state, v.launchHook = "Pending:Wait", "other" }),
			decision{act: actStartLaunch}},
		{"a terminating instance is not launched",
			with(func(v *view) { v.state, v.terminating = "Pending:Wait", true }),
			decision{}},
		{"Standby runs no plan", with(func(v *view) { v.state, v.target = "Standby", "Standby" }), decision{}},
		{"a launch message while Pending starts the launch, unverified",
			with(func(v *view) { v.state, v.launchMessage = "Pending", true }),
			decision{act: actStartLaunch, hooks: []lifecycle.Hook{warmup}, unverified: true}},
		{"a launch message for an instance in service starts nothing",
			with(func(v *view) { v.state, v.launchMessage = "InService", true }),
			decision{}},
		{"warm pool runs no plan", with(func(v *view) { v.state, v.target = "Warmed:Pending:Wait", "Warmed:Stopped" }), decision{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := decide(c.v); !reflect.DeepEqual(got, c.want) {
				t.Errorf("decide = %+v, want %+v", got, c.want)
			}
		})
	}
}
