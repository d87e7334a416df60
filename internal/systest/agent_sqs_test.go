package systest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// agentSQSUserData runs the built agent with source sqs on the hook's
// topic and a one-step terminate plan.
func agentSQSUserData(bin, topic string) string {
	return `#!/bin/sh
cat > agent.yaml <<YAML
source: sqs
sqs:
  topic_arn: ` + topic + `
  wait_time: 1s
imds:
  poll_interval: 1s
terminate:
  steps:
    - name: drain
      command: ["sh", "-c", "echo drain \"\$LIFEGUARD_REASON \$LIFEGUARD_HOOK \$LIFEGUARD_LIFECYCLE_TOKEN\" >> $PWD/steps.log"]
      timeout: 30s
paths:
  journal_dir: $PWD/journal
status:
  listen: 127.0.0.1:0
log:
  level: debug
YAML
exec ` + bin + ` agent --config agent.yaml
`
}

// TestAgentSQSSourceThroughSNS runs agents with source sqs: each creates
// its own queue subscribed to the hook's topic with a filter on its
// instance id; on scale-in the message starts the plan, the action is
// completed by its token, and the queue is removed.
func TestAgentSQSSourceThroughSNS(t *testing.T) {
	sb := startSandbox(t, "--relax-limits")
	ev := followEvents(t, sb.endpoint)
	cfg := sdkConfig(t, sb.endpoint)
	c, q, topics := newClients(cfg), sqs.NewFromConfig(cfg), sns.NewFromConfig(cfg)
	ctx := context.Background()
	topic, err := topics.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("lifecycle")})
	if err != nil {
		t.Fatal(err)
	}
	topicARN := aws.ToString(topic.TopicArn)
	launchConfig(t, c, "lc", agentSQSUserData(lifeguardBinary(t), topicARN))
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("web"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(2), AvailabilityZones: []string{"us-east-1a"},
		LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{{
			LifecycleHookName: aws.String("drain-hook"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"),
			HeartbeatTimeout: aws.Int32(30), NotificationTargetARN: aws.String(topicARN), RoleARN: aws.String(roleARN),
		}},
	}); err != nil {
		t.Fatal(err)
	}
	// Both agents have subscribed their queues before the scale-in.
	subscribed := map[string]bool{}
	for len(subscribed) < 2 {
		e := ev.waitFor(t, "queue subscribed", func(e event) bool {
			return strings.HasPrefix(e.Detail, "subscribed sqs ") && strings.Contains(e.Detail, ":lifeguard-i-")
		})
		subscribed[e.Detail] = true
	}
	ids := []string{}
	for id := range sandboxInstances(t, sb.endpoint) {
		ids = append(ids, id)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, id := range ids {
			b, _ := os.ReadFile(filepath.Join(sb.stateDir, "instances", id, "console.log"))
			t.Logf("%s console:\n%s", id, b)
		}
	})
	if len(ids) != 2 {
		t.Fatalf("instances %v, want 2", ids)
	}

	if _, err := c.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("web"), DesiredCapacity: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	// The completions and each agent's queue removal (once its own
	// termination completed) interleave across the two instances.
	tokens, deleted := map[string]string{}, map[string]bool{}
	for len(tokens) < 2 || len(deleted) < 2 {
		e := ev.waitFor(t, "terminate action completed or queue deleted", func(e event) bool {
			return e.Kind == "action-completed" && e.Hook == "drain-hook" || strings.HasPrefix(e.Detail, "queue deleted lifeguard-i-")
		})
		if e.Kind != "action-completed" {
			deleted[e.Detail] = true
			continue
		}
		if e.Result != "CONTINUE" || e.Detail != "completed" || e.Token == "" {
			t.Errorf("terminate action of %s ended %s (%s) token %q, want CONTINUE by the agent", e.Instance, e.Result, e.Detail, e.Token)
		}
		tokens[e.Instance] = e.Token
	}
	for _, id := range ids {
		log := waitFile(t, filepath.Join(sb.stateDir, "instances", id, "steps.log"))
		if want := "drain lifecycle-hook drain-hook " + tokens[id] + "\n"; string(log) != want {
			t.Errorf("%s: steps ran as %q, want %q (the message's token)", id, log, want)
		}
	}
	out, err := q.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String("lifeguard-")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.QueueUrls) != 0 {
		t.Errorf("queues left: %v", out.QueueUrls)
	}
}
