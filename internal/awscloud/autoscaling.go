package awscloud

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/smithy-go"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// AutoScaling adapts the Auto Scaling API to the lifecycle and agent
// interfaces. Its zero value is not usable; call NewAutoScaling.
type AutoScaling struct {
	c *autoscaling.Client
}

var _ lifecycle.Completer = (*AutoScaling)(nil)

// NewAutoScaling returns an adapter using the SDK configuration cfg.
func NewAutoScaling(cfg aws.Config) *AutoScaling {
	return &AutoScaling{c: autoscaling.NewFromConfig(cfg)}
}

// Heartbeat records a heartbeat for the action, by token when it has one,
// else by instance id. It returns an error wrapping
// lifecycle.ErrNoActiveAction when Auto Scaling has no such action.
func (a *AutoScaling) Heartbeat(ctx context.Context, act lifecycle.Action) error {
	in := &autoscaling.RecordLifecycleActionHeartbeatInput{
		AutoScalingGroupName: aws.String(act.Group),
		LifecycleHookName:    aws.String(act.Hook.Name),
	}
	if act.Token != "" {
		in.LifecycleActionToken = aws.String(act.Token)
	} else {
		in.InstanceId = aws.String(act.InstanceID)
	}
	if _, err := a.c.RecordLifecycleActionHeartbeat(ctx, in); err != nil {
		return fmt.Errorf("record lifecycle action heartbeat %s/%s: %w", act.Group, act.Hook.Name, mapError(err))
	}
	return nil
}

// Complete completes the action with the result, by token when it has one,
// else by instance id. It returns an error wrapping
// lifecycle.ErrNoActiveAction when the action is already gone.
func (a *AutoScaling) Complete(ctx context.Context, act lifecycle.Action, r lifecycle.Result) error {
	in := &autoscaling.CompleteLifecycleActionInput{
		AutoScalingGroupName:  aws.String(act.Group),
		LifecycleHookName:     aws.String(act.Hook.Name),
		LifecycleActionResult: aws.String(string(r)),
	}
	if act.Token != "" {
		in.LifecycleActionToken = aws.String(act.Token)
	} else {
		in.InstanceId = aws.String(act.InstanceID)
	}
	if _, err := a.c.CompleteLifecycleAction(ctx, in); err != nil {
		return fmt.Errorf("complete lifecycle action %s/%s: %w", act.Group, act.Hook.Name, mapError(err))
	}
	return nil
}

// LifecycleHooks returns a group's hooks in the domain's terms.
func (a *AutoScaling) LifecycleHooks(ctx context.Context, group string) ([]lifecycle.Hook, error) {
	out, err := a.c.DescribeLifecycleHooks(ctx, &autoscaling.DescribeLifecycleHooksInput{AutoScalingGroupName: aws.String(group)})
	if err != nil {
		return nil, fmt.Errorf("describe lifecycle hooks of %s: %w", group, err)
	}
	hooks := make([]lifecycle.Hook, 0, len(out.LifecycleHooks))
	for _, h := range out.LifecycleHooks {
		hooks = append(hooks, lifecycle.Hook{
			Name:                 aws.ToString(h.LifecycleHookName),
			Transition:           lifecycle.Transition(aws.ToString(h.LifecycleTransition)),
			HeartbeatTimeout:     time.Duration(aws.ToInt32(h.HeartbeatTimeout)) * time.Second,
			DefaultResult:        lifecycle.Result(aws.ToString(h.DefaultResult)),
			NotificationMetadata: aws.ToString(h.NotificationMetadata),
		})
	}
	return hooks, nil
}

// InstanceMembership returns the instance's group and lifecycle state, or
// an error wrapping agent.ErrNotInGroup when DescribeAutoScalingInstances
// does not list it.
func (a *AutoScaling) InstanceMembership(ctx context.Context, instanceID string) (group, state string, err error) {
	out, err := a.c.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		return "", "", fmt.Errorf("describe auto scaling instance %s: %w", instanceID, err)
	}
	if len(out.AutoScalingInstances) == 0 {
		return "", "", fmt.Errorf("instance %s: %w", instanceID, agent.ErrNotInGroup)
	}
	in := out.AutoScalingInstances[0]
	return aws.ToString(in.AutoScalingGroupName), aws.ToString(in.LifecycleState), nil
}

// mapError turns AWS's "no active lifecycle action" ValidationError into
// lifecycle.ErrNoActiveAction, keeping AWS's message.
func mapError(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && isNoActiveAction(ae) {
		return fmt.Errorf("%w: %s", lifecycle.ErrNoActiveAction, ae.ErrorMessage())
	}
	return err
}

// isNoActiveAction reports whether ae is AWS's "No active Lifecycle Action
// found with …" ValidationError.
func isNoActiveAction(ae smithy.APIError) bool {
	return ae.ErrorCode() == "ValidationError" && strings.HasPrefix(ae.ErrorMessage(), "No active Lifecycle Action found")
}
