package systest_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// TestTwentyAgentsOnOneSharedQueue terminates 20 instances at once whose
// agents all read the hook's one queue: each hands the others' messages
// back, and every action is completed by its own agent; none is starved
// into a time-out, and no message is left on the queue.
//
// The hook is put after the agents have started, so their first
// DescribeLifecycleHooks lists none: the message naming it must make them
// read the hooks again. Some agents start only once their instance is
// already Terminating:Wait (their user data ran late): they complete by
// instance id, then find and delete their message before they exit.
func TestTwentyAgentsOnOneSharedQueue(t *testing.T) {
	const n = 20
	// A stop grace longer than the agents' last look for their messages
	// (5 s), as a systemd stop timeout would be on an instance.
	sb := startSandbox(t, "--relax-limits", "--stop-grace", "10s")
	dumpConsolesOnFailure(t, sb.stateDir) // every agent's log, also of instances that never got in service
	ev := followEvents(t, sb.endpoint)
	cfg := sdkConfig(t, sb.endpoint)
	c, q := newClients(cfg), sqs.NewFromConfig(cfg)
	ctx := context.Background()
	url, arn := queue(t, q, "lifecycle-shared")
	userData := `#!/bin/sh
cat > agent.yaml <<YAML
source: sqs
sqs:
  queue_url: ` + url + `
  wait_time: 1s
  visibility_timeout: 5s
imds:
  poll_interval: 1s
terminate:
  steps:
    - name: drain
      command: ["sh", "-c", "echo \"\$LIFEGUARD_INSTANCE_ID \$LIFEGUARD_LIFECYCLE_TOKEN\" >> $PWD/done.log"]
      timeout: 30s
paths:
  journal_dir: $PWD/journal
status:
  listen: 127.0.0.1:0
YAML
exec ` + lifeguardBinary(t) + ` agent --config agent.yaml
`
	launchConfig(t, c, "lc", userData)
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("fleet"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(n), DesiredCapacity: aws.Int32(n), AvailabilityZones: []string{"us-east-1a", "us-east-1b"},
	}); err != nil {
		t.Fatal(err)
	}
	inService := map[string]bool{}
	ev.waitFor(t, "20 instances in service", func(e event) bool {
		if e.Kind == "instance-state" && e.State == "InService" {
			inService[e.Instance] = true
		}
		return len(inService) == n
	})
	if _, err := c.asg.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{
		AutoScalingGroupName: aws.String("fleet"), LifecycleHookName: aws.String("drain"),
		LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"), NotificationTargetARN: aws.String(arn),
		RoleARN: aws.String(roleARN), HeartbeatTimeout: aws.Int32(120), DefaultResult: aws.String("ABANDON"),
	}); err != nil {
		t.Fatal(err)
	}
	// Besides the hook's TEST_NOTIFICATION, something that is no
	// notification at all: both are deleted by whichever agent gets them.
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("not a notification")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("fleet"), DesiredCapacity: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	results := map[string]event{}
	terminated := map[string]bool{}
	ev.waitFor(t, "every terminate action ended and every instance terminated", func(e event) bool {
		switch e.Kind {
		case "instance-state":
			if e.State == "Terminated" {
				terminated[e.Instance] = true
			}
		case "action-started":
			if e.Hook == "drain" {
				tokens[e.Instance] = e.Token
			}
		case "action-completed", "action-timed-out":
			if e.Hook == "drain" {
				results[e.Instance] = e
			}
		}
		return len(results) == n && len(terminated) == n
	})
	for id, e := range results {
		if e.Kind != "action-completed" || e.Result != "CONTINUE" || e.Detail != "completed" {
			t.Errorf("%s: %s %s (%s), want completed CONTINUE by its agent", id, e.Kind, e.Result, e.Detail)
		}
		if e.Token != tokens[id] {
			t.Errorf("%s: completed token %s, want its own %s", id, e.Token, tokens[id])
		}
	}
	// Every instance has terminated, so every agent has exited: each
	// deleted its own message (and none another's), and the test
	// notification and the stray message are gone too.
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	if v, h := attrs.Attributes["ApproximateNumberOfMessages"], attrs.Attributes["ApproximateNumberOfMessagesNotVisible"]; v != "0" || h != "0" {
		t.Errorf("%s visible and %s hidden messages left on the shared queue, want none", v, h)
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err == nil {
			for _, m := range out.Messages {
				t.Logf("left on the queue: %s %s", aws.ToString(m.MessageId), aws.ToString(m.Body))
			}
		}
	}
}
