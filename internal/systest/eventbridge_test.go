package systest_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// TestLifecycleEventsThroughEventBridge routes the group's terminate
// lifecycle actions to a queue through an EventBridge rule, and the token
// in the event completes the action.
func TestLifecycleEventsThroughEventBridge(t *testing.T) {
	sb := startSandbox(t, "--relax-limits", "--no-processes")
	ev := followEvents(t, sb.endpoint)
	cfg := sdkConfig(t, sb.endpoint)
	c, q, bus := newClients(cfg), sqs.NewFromConfig(cfg), eventbridge.NewFromConfig(cfg)
	ctx := context.Background()
	url, arn := queue(t, q, "events")
	if _, err := bus.PutRule(ctx, &eventbridge.PutRuleInput{
		Name:         aws.String("terminations"),
		EventPattern: aws.String(`{"source":["aws.autoscaling"],"detail-type":["EC2 Instance-terminate Lifecycle Action"],"detail":{"AutoScalingGroupName":["g"]}}`),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("terminations"), Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(arn)}}}); err != nil {
		t.Fatal(err)
	}
	launchConfig(t, c, "lc", "")
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("g"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(1), DesiredCapacity: aws.Int32(1), AvailabilityZones: []string{"us-east-1a"},
	}); err != nil {
		t.Fatal(err)
	}
	id := ev.waitFor(t, "InService", stateIs("", "InService")).Instance
	if _, err := c.asg.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{
		AutoScalingGroupName: aws.String("g"), LifecycleHookName: aws.String("drain"),
		LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"), HeartbeatTimeout: aws.Int32(60),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	e := receiveOne(t, q, url)
	detail, _ := e["detail"].(map[string]any)
	if e["source"] != "aws.autoscaling" || e["detail-type"] != "EC2 Instance-terminate Lifecycle Action" || detail["EC2InstanceId"] != id ||
		detail["Origin"] != "AutoScalingGroup" || detail["Destination"] != "EC2" {
		t.Fatalf("event %v", e)
	}
	if _, err := c.asg.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{
		AutoScalingGroupName: aws.String("g"), LifecycleHookName: aws.String("drain"),
		LifecycleActionToken: aws.String(detail["LifecycleActionToken"].(string)), LifecycleActionResult: aws.String("CONTINUE"),
	}); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, "Terminated", stateIs(id, "Terminated"))
}
