package autoscaling_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	asg "github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

func TestGroupLaunch(t *testing.T) {
	e := newEnv(t)
	g := e.createGroup(t, groupSpec{desired: 2})
	ids := e.waitInState(t, g, world.StateInService, 2)

	out, err := e.client.DescribeAutoScalingGroups(t.Context(), &asg.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{g}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.AutoScalingGroups) != 1 {
		t.Fatalf("got %d groups, want 1", len(out.AutoScalingGroups))
	}
	var got []string
	for _, in := range out.AutoScalingGroups[0].Instances {
		if in.LifecycleState == types.LifecycleStateInService {
			got = append(got, aws.ToString(in.InstanceId))
		}
	}
	if !slices.Equal(got, ids) {
		t.Errorf("InService instances = %v, want %v", got, ids)
	}
}

// launchHook and terminateHook name the hooks of the lifecycle scenarios.
const (
	launchHook    = "launch"
	terminateHook = "drain"
)

func TestLifecycleHooks(t *testing.T) {
	tests := []struct {
		name    string
		desired int32
		hooks   []types.LifecycleHookSpecification
		run     func(t *testing.T, e *env, g string)
	}{
		{
			name:    "launch hook holds the instance in Pending:Wait until CONTINUE",
			desired: 1,
			hooks:   []types.LifecycleHookSpecification{hook(launchHook, world.TransitionLaunching, 300, "ABANDON")},
			run: func(t *testing.T, e *env, g string) {
				id := e.waitInState(t, g, world.StatePendingWait, 1)[0]
				if got := aws.ToString(e.instanceState(t, id).LifecycleState); got != world.StatePendingWait {
					t.Fatalf("LifecycleState = %q, want %q", got, world.StatePendingWait)
				}
				token := e.actionToken(t, id, launchHook)
				if _, err := e.client.CompleteLifecycleAction(t.Context(), &asg.CompleteLifecycleActionInput{
					AutoScalingGroupName: aws.String(g), LifecycleHookName: aws.String(launchHook),
					LifecycleActionToken: aws.String(token), LifecycleActionResult: aws.String("CONTINUE"),
				}); err != nil {
					t.Fatalf("CompleteLifecycleAction: %v", err)
				}
				e.waitInState(t, g, world.StateInService, 1)
			},
		},
		{
			name:    "terminate hook holds scale-in in Terminating:Wait until completed",
			desired: 2,
			hooks:   []types.LifecycleHookSpecification{hook(terminateHook, world.TransitionTerminating, 300, "CONTINUE")},
			run: func(t *testing.T, e *env, g string) {
				e.waitInState(t, g, world.StateInService, 2)
				if _, err := e.client.SetDesiredCapacity(t.Context(), &asg.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(g), DesiredCapacity: aws.Int32(1)}); err != nil {
					t.Fatalf("SetDesiredCapacity: %v", err)
				}
				id := e.waitInState(t, g, world.StateTerminatingWait, 1)[0]
				if got := aws.ToString(e.instanceState(t, id).LifecycleState); got != world.StateTerminatingWait {
					t.Fatalf("LifecycleState = %q, want %q", got, world.StateTerminatingWait)
				}
				complete := &asg.CompleteLifecycleActionInput{
					AutoScalingGroupName: aws.String(g), LifecycleHookName: aws.String(terminateHook),
					InstanceId: aws.String(id), LifecycleActionResult: aws.String("CONTINUE"),
				}
				if _, err := e.client.CompleteLifecycleAction(t.Context(), complete); err != nil {
					t.Fatalf("CompleteLifecycleAction: %v", err)
				}
				e.waitGone(t, g, id)

				_, err := e.client.CompleteLifecycleAction(t.Context(), complete)
				code, msg := apiError(t, err)
				if want := "No active Lifecycle Action found with instance ID " + id; code != "ValidationError" || msg != want {
					t.Errorf("completing again: got %s %q, want ValidationError %q", code, msg, want)
				}
			},
		},
		{
			name:    "heartbeat postpones the timeout",
			desired: 1,
			hooks:   []types.LifecycleHookSpecification{hook(launchHook, world.TransitionLaunching, 60, "CONTINUE")},
			run: func(t *testing.T, e *env, g string) {
				id := e.waitInState(t, g, world.StatePendingWait, 1)[0]
				e.clock.Advance(40 * time.Second)
				if _, err := e.client.RecordLifecycleActionHeartbeat(t.Context(), &asg.RecordLifecycleActionHeartbeatInput{
					AutoScalingGroupName: aws.String(g), LifecycleHookName: aws.String(launchHook), InstanceId: aws.String(id),
				}); err != nil {
					t.Fatalf("RecordLifecycleActionHeartbeat: %v", err)
				}
				e.clock.Advance(40 * time.Second) // past the first deadline, before the new one
				if got := aws.ToString(e.instanceState(t, id).LifecycleState); got != world.StatePendingWait {
					t.Fatalf("80 s after the start with a heartbeat at 40 s: LifecycleState = %q, want %q", got, world.StatePendingWait)
				}
				e.clock.Advance(30 * time.Second) // past the heartbeat's deadline
				ev := e.waitEvent(t, "time-out", func(ev world.Event) bool { return ev.Kind == world.EvActionTimedOut && ev.Instance == id })
				if ev.Detail != "heartbeat timeout" || ev.Result != "CONTINUE" {
					t.Errorf("time-out event = %q result %q, want heartbeat timeout CONTINUE", ev.Detail, ev.Result)
				}
				e.waitInState(t, g, world.StateInService, 1)
			},
		},
		{
			name:    "timeout with CONTINUE puts the instance in service",
			desired: 1,
			hooks:   []types.LifecycleHookSpecification{hook(launchHook, world.TransitionLaunching, 30, "CONTINUE")},
			run: func(t *testing.T, e *env, g string) {
				id := e.waitInState(t, g, world.StatePendingWait, 1)[0]
				e.clock.Advance(31 * time.Second)
				if got := e.waitInState(t, g, world.StateInService, 1)[0]; got != id {
					t.Errorf("InService instance = %s, want %s", got, id)
				}
			},
		},
		{
			name:    "timeout with ABANDON on launch terminates the instance and launches a replacement",
			desired: 1,
			hooks:   []types.LifecycleHookSpecification{hook(launchHook, world.TransitionLaunching, 30, "ABANDON")},
			run: func(t *testing.T, e *env, g string) {
				first := e.waitInState(t, g, world.StatePendingWait, 1)[0]
				token := e.actionToken(t, first, launchHook)
				e.clock.Advance(31 * time.Second)
				e.waitGone(t, g, first)
				e.waitFor(t, "a replacement in Pending:Wait", func() bool {
					ids := e.inState(t, g, world.StatePendingWait)
					return len(ids) == 1 && ids[0] != first
				})
				out, err := e.client.DescribeScalingActivities(t.Context(), &asg.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String(g)})
				if err != nil {
					t.Fatalf("DescribeScalingActivities: %v", err)
				}
				i := slices.IndexFunc(out.Activities, func(a types.Activity) bool {
					return aws.ToString(a.Description) == "Launching a new EC2 instance: "+first
				})
				if i < 0 {
					t.Fatalf("no launch activity for %s in %d activities", first, len(out.Activities))
				}
				a := out.Activities[i]
				want := "Instance failed to complete user's Lifecycle Action: Lifecycle Action with token " + token + " was abandoned: Lifecycle Action Completed with ABANDON Result"
				if a.StatusCode != types.ScalingActivityStatusCodeCancelled || aws.ToString(a.StatusMessage) != want {
					t.Errorf("launch activity = %s %q, want Cancelled %q", a.StatusCode, aws.ToString(a.StatusMessage), want)
				}
			},
		},
		{
			name:    "global timeout caps heartbeats",
			desired: 1,
			hooks:   []types.LifecycleHookSpecification{hook(launchHook, world.TransitionLaunching, 30, "CONTINUE")},
			run: func(t *testing.T, e *env, g string) {
				id := e.waitInState(t, g, world.StatePendingWait, 1)[0]
				heartbeat := &asg.RecordLifecycleActionHeartbeatInput{
					AutoScalingGroupName: aws.String(g), LifecycleHookName: aws.String(launchHook), InstanceId: aws.String(id),
				}
				// 119 heartbeats 25 s apart reach 2975 s, just short of the
				// global timeout of 100 × 30 s.
				for i := range 119 {
					e.clock.Advance(25 * time.Second)
					if _, err := e.client.RecordLifecycleActionHeartbeat(t.Context(), heartbeat); err != nil {
						t.Fatalf("heartbeat %d: %v", i+1, err)
					}
				}
				e.clock.Advance(30 * time.Second)
				ev := e.waitEvent(t, "time-out", func(ev world.Event) bool { return ev.Kind == world.EvActionTimedOut && ev.Instance == id })
				if ev.Detail != "global timeout" || ev.Result != "CONTINUE" {
					t.Errorf("time-out event = %q result %q, want global timeout CONTINUE", ev.Detail, ev.Result)
				}
				e.waitInState(t, g, world.StateInService, 1)
				_, err := e.client.RecordLifecycleActionHeartbeat(t.Context(), heartbeat)
				code, msg := apiError(t, err)
				if want := "No active Lifecycle Action found with instance ID " + id; code != "ValidationError" || msg != want {
					t.Errorf("heartbeat after the global timeout: got %s %q, want ValidationError %q", code, msg, want)
				}
			},
		},
		{
			name:    "completing with an unknown token fails",
			desired: 1,
			hooks:   []types.LifecycleHookSpecification{hook(launchHook, world.TransitionLaunching, 300, "ABANDON")},
			run: func(t *testing.T, e *env, g string) {
				e.waitInState(t, g, world.StatePendingWait, 1)
				const token = "11111111-2222-3333-4444-555555555555"
				_, err := e.client.CompleteLifecycleAction(t.Context(), &asg.CompleteLifecycleActionInput{
					AutoScalingGroupName: aws.String(g), LifecycleHookName: aws.String(launchHook),
					LifecycleActionToken: aws.String(token), LifecycleActionResult: aws.String("CONTINUE"),
				})
				code, msg := apiError(t, err)
				if want := "No active Lifecycle Action found with token " + token; code != "ValidationError" || msg != want {
					t.Errorf("got %s %q, want ValidationError %q", code, msg, want)
				}
			},
		},
		{
			name:    "DeleteLifecycleHook abandons pending launch actions",
			desired: 1,
			hooks:   []types.LifecycleHookSpecification{hook(launchHook, world.TransitionLaunching, 300, "CONTINUE")},
			run: func(t *testing.T, e *env, g string) {
				first := e.waitInState(t, g, world.StatePendingWait, 1)[0]
				if _, err := e.client.DeleteLifecycleHook(t.Context(), &asg.DeleteLifecycleHookInput{
					AutoScalingGroupName: aws.String(g), LifecycleHookName: aws.String(launchHook),
				}); err != nil {
					t.Fatalf("DeleteLifecycleHook: %v", err)
				}
				ev := e.waitEvent(t, "completion", func(ev world.Event) bool { return ev.Kind == world.EvActionCompleted && ev.Instance == first })
				if ev.Result != "ABANDON" {
					t.Errorf("pending launch action completed with %q, want ABANDON", ev.Result)
				}
				e.waitGone(t, g, first)
				// Without the hook, the replacement goes straight into service.
				e.waitInState(t, g, world.StateInService, 1)
				hooks, err := e.client.DescribeLifecycleHooks(t.Context(), &asg.DescribeLifecycleHooksInput{AutoScalingGroupName: aws.String(g)})
				if err != nil {
					t.Fatalf("DescribeLifecycleHooks: %v", err)
				}
				if hooks.LifecycleHooks == nil || len(hooks.LifecycleHooks) != 0 {
					t.Errorf("LifecycleHooks = %#v, want an empty list", hooks.LifecycleHooks)
				}
			},
		},
		{
			name:    "DeleteLifecycleHook lets pending terminations continue",
			desired: 1,
			hooks:   []types.LifecycleHookSpecification{hook(terminateHook, world.TransitionTerminating, 300, "ABANDON")},
			run: func(t *testing.T, e *env, g string) {
				id := e.waitInState(t, g, world.StateInService, 1)[0]
				if _, err := e.client.SetDesiredCapacity(t.Context(), &asg.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(g), DesiredCapacity: aws.Int32(0)}); err != nil {
					t.Fatalf("SetDesiredCapacity: %v", err)
				}
				e.waitInState(t, g, world.StateTerminatingWait, 1)
				if _, err := e.client.DeleteLifecycleHook(t.Context(), &asg.DeleteLifecycleHookInput{
					AutoScalingGroupName: aws.String(g), LifecycleHookName: aws.String(terminateHook),
				}); err != nil {
					t.Fatalf("DeleteLifecycleHook: %v", err)
				}
				ev := e.waitEvent(t, "completion", func(ev world.Event) bool { return ev.Kind == world.EvActionCompleted && ev.Instance == id })
				if ev.Result != "CONTINUE" {
					t.Errorf("pending terminate action completed with %q, want CONTINUE", ev.Result)
				}
				e.waitGone(t, g, id)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			g := e.createGroup(t, groupSpec{desired: tt.desired, hooks: tt.hooks})
			tt.run(t, e, g)
		})
	}
}

func TestLifecycleHookAPI(t *testing.T) {
	e := newEnv(t)
	g := e.createGroup(t, groupSpec{})
	const (
		role = "arn:aws:iam::123456789012:role/asg-notify"
		meta = `{"cluster":"blue"}`
	)
	put := []*asg.PutLifecycleHookInput{
		{
			AutoScalingGroupName: aws.String(g), LifecycleHookName: aws.String("drain-hook"),
			LifecycleTransition: aws.String(world.TransitionTerminating), HeartbeatTimeout: aws.Int32(300),
			DefaultResult: aws.String("CONTINUE"), RoleARN: aws.String(role), NotificationMetadata: aws.String(meta),
		},
		{AutoScalingGroupName: aws.String(g), LifecycleHookName: aws.String("plain"), LifecycleTransition: aws.String(world.TransitionLaunching)},
		// An update keeps the fields it does not send.
		{AutoScalingGroupName: aws.String(g), LifecycleHookName: aws.String("drain-hook"), DefaultResult: aws.String("ABANDON")},
	}
	for _, in := range put {
		if _, err := e.client.PutLifecycleHook(t.Context(), in); err != nil {
			t.Fatalf("PutLifecycleHook %s: %v", aws.ToString(in.LifecycleHookName), err)
		}
	}

	tests := []struct {
		name  string
		names []string
		want  []types.LifecycleHook
	}{
		{
			name: "all hooks with their defaults and global timeouts",
			want: []types.LifecycleHook{
				{
					LifecycleHookName: aws.String("drain-hook"), AutoScalingGroupName: aws.String(g),
					LifecycleTransition: aws.String(world.TransitionTerminating), RoleARN: aws.String(role), NotificationMetadata: aws.String(meta), HeartbeatTimeout: aws.Int32(300),
					GlobalTimeout: aws.Int32(30000), DefaultResult: aws.String("ABANDON"),
				},
				{
					LifecycleHookName: aws.String("plain"), AutoScalingGroupName: aws.String(g),
					LifecycleTransition: aws.String(world.TransitionLaunching), HeartbeatTimeout: aws.Int32(3600),
					GlobalTimeout: aws.Int32(172800), DefaultResult: aws.String("ABANDON"),
				},
			},
		},
		{
			name:  "only the named hooks",
			names: []string{"plain"},
			want: []types.LifecycleHook{{
				LifecycleHookName: aws.String("plain"), AutoScalingGroupName: aws.String(g),
				LifecycleTransition: aws.String(world.TransitionLaunching), HeartbeatTimeout: aws.Int32(3600),
				GlobalTimeout: aws.Int32(172800), DefaultResult: aws.String("ABANDON"),
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.client.DescribeLifecycleHooks(t.Context(), &asg.DescribeLifecycleHooksInput{AutoScalingGroupName: aws.String(g), LifecycleHookNames: tt.names})
			if err != nil {
				t.Fatalf("DescribeLifecycleHooks: %v", err)
			}
			if len(out.LifecycleHooks) != len(tt.want) {
				t.Fatalf("got %d hooks, want %d", len(out.LifecycleHooks), len(tt.want))
			}
			for i, got := range out.LifecycleHooks {
				checkFields(t, fmt.Sprintf("hook %d", i), hookFields(got, tt.want[i]))
			}
		})
	}

	t.Run("a notification target that cannot be published to is refused", func(t *testing.T) {
		const target = "arn:aws:sqs:us-east-1:123456789012:no-such-queue"
		_, err := e.client.PutLifecycleHook(t.Context(), &asg.PutLifecycleHookInput{
			AutoScalingGroupName: aws.String(g), LifecycleHookName: aws.String("notify"),
			LifecycleTransition: aws.String(world.TransitionLaunching), NotificationTargetARN: aws.String(target), RoleARN: aws.String(role),
		})
		code, msg := apiError(t, err)
		want := "Unable to publish test message to notification target " + target + " using IAM role " + role +
			" Please check your target and role configuration and try to put lifecycle hook again."
		if code != "ValidationError" || msg != want {
			t.Errorf("got %s %q, want ValidationError %q", code, msg, want)
		}
	})

	t.Run("hook types", func(t *testing.T) {
		out, err := e.client.DescribeLifecycleHookTypes(t.Context(), &asg.DescribeLifecycleHookTypesInput{})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{world.TransitionLaunching, world.TransitionTerminating}; !slices.Equal(out.LifecycleHookTypes, want) {
			t.Errorf("LifecycleHookTypes = %v, want %v", out.LifecycleHookTypes, want)
		}
	})
}

func hookFields(got, want types.LifecycleHook) []field {
	return []field{
		{"LifecycleHookName", got.LifecycleHookName, want.LifecycleHookName},
		{"AutoScalingGroupName", got.AutoScalingGroupName, want.AutoScalingGroupName},
		{"LifecycleTransition", got.LifecycleTransition, want.LifecycleTransition},
		{"NotificationTargetARN", got.NotificationTargetARN, want.NotificationTargetARN},
		{"RoleARN", got.RoleARN, want.RoleARN},
		{"NotificationMetadata", got.NotificationMetadata, want.NotificationMetadata},
		{"HeartbeatTimeout", got.HeartbeatTimeout, want.HeartbeatTimeout},
		{"GlobalTimeout", got.GlobalTimeout, want.GlobalTimeout},
		{"DefaultResult", got.DefaultResult, want.DefaultResult},
	}
}
