package systest_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

const roleARN = "arn:aws:iam::123456789012:role/asg-notify"

// queue creates an SQS queue and returns its URL and ARN.
func queue(t *testing.T, c *sqs.Client, name string) (string, string) {
	t.Helper()
	ctx := context.Background()
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl), attrs.Attributes["QueueArn"]
}

// receiveOne long-polls a queue for one message, deletes it and returns
// its body decoded as JSON.
func receiveOne(t *testing.T, c *sqs.Client, url string) map[string]any {
	t.Helper()
	ctx := context.Background()
	for range 10 {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 10, MaxNumberOfMessages: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			continue
		}
		m := out.Messages[0]
		if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &body); err != nil {
			t.Fatalf("message body is not JSON: %v: %s", err, aws.ToString(m.Body))
		}
		return body
	}
	t.Fatalf("no message on %s within 100 s", url)
	return nil
}

// unwrapSNS returns the lifecycle message inside an SNS envelope.
func unwrapSNS(t *testing.T, env map[string]any) map[string]any {
	t.Helper()
	if env["Type"] != "Notification" {
		t.Fatalf("not an SNS notification envelope: %v", env)
	}
	var msg map[string]any
	if err := json.Unmarshal([]byte(env["Message"].(string)), &msg); err != nil {
		t.Fatalf("SNS Message is not JSON: %v", err)
	}
	return msg
}

// TestSeedScenarioWithSDK is the seeds' lifecycle workflow: hook → SQS →
// a worker receives the message with the token → heartbeat → complete.
func TestSeedScenarioWithSDK(t *testing.T) {
	sb := startSandbox(t, "--relax-limits", "--no-processes")
	ev := followEvents(t, sb.endpoint)
	cfg := sdkConfig(t, sb.endpoint)
	c, q, topics := newClients(cfg), sqs.NewFromConfig(cfg), sns.NewFromConfig(cfg)
	ctx := context.Background()

	url, arn := queue(t, q, "lifecycle-q")
	notifURL, notifARN := queue(t, q, "group-notifications")
	topic, err := topics.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("asg-events")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topics.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(notifARN)}); err != nil {
		t.Fatal(err)
	}
	launchConfig(t, c, "lc", "")
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("my-asg"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(1), AvailabilityZones: []string{"us-east-1a"},
	}); err != nil {
		t.Fatal(err)
	}
	id := ev.waitFor(t, "InService", stateIs("", "InService")).Instance
	if _, err := c.asg.PutNotificationConfiguration(ctx, &autoscaling.PutNotificationConfigurationInput{
		AutoScalingGroupName: aws.String("my-asg"), TopicARN: topic.TopicArn,
		NotificationTypes: []string{"autoscaling:EC2_INSTANCE_TERMINATE"},
	}); err != nil {
		t.Fatal(err)
	}
	if got := unwrapSNS(t, receiveOne(t, q, notifURL))["Event"]; got != "autoscaling:TEST_NOTIFICATION" {
		t.Errorf("group notification test message Event = %v", got)
	}
	if _, err := c.asg.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{
		AutoScalingGroupName: aws.String("my-asg"), LifecycleHookName: aws.String("drain-hook"),
		LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"), NotificationTargetARN: aws.String(arn),
		RoleARN: aws.String(roleARN), HeartbeatTimeout: aws.Int32(1800), DefaultResult: aws.String("CONTINUE"),
		NotificationMetadata: aws.String(`{"cluster":"blue"}`),
	}); err != nil {
		t.Fatal(err)
	}
	test := receiveOne(t, q, url)
	if test["Event"] != "autoscaling:TEST_NOTIFICATION" || test["AutoScalingGroupName"] != "my-asg" || test["LifecycleTransition"] != nil {
		t.Errorf("test notification %v", test)
	}
	if _, err := c.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("my-asg"), DesiredCapacity: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	msg := receiveOne(t, q, url)
	for k, want := range map[string]any{
		"LifecycleHookName": "drain-hook", "AccountId": "123456789012", "AutoScalingGroupName": "my-asg",
		"LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "Service": "AWS Auto Scaling",
		"EC2InstanceId": id, "NotificationMetadata": `{"cluster":"blue"}`, "Origin": "AutoScalingGroup", "Destination": "EC2",
	} {
		if msg[k] != want {
			t.Errorf("lifecycle message %s = %v, want %v", k, msg[k], want)
		}
	}
	token, _ := msg["LifecycleActionToken"].(string)
	if len(token) != 36 {
		t.Fatalf("LifecycleActionToken %q", token)
	}
	if _, err := c.asg.RecordLifecycleActionHeartbeat(ctx, &autoscaling.RecordLifecycleActionHeartbeatInput{
		AutoScalingGroupName: aws.String("my-asg"), LifecycleHookName: aws.String("drain-hook"), LifecycleActionToken: aws.String(token),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.asg.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{
		AutoScalingGroupName: aws.String("my-asg"), LifecycleHookName: aws.String("drain-hook"),
		LifecycleActionToken: aws.String(token), LifecycleActionResult: aws.String("CONTINUE"),
	}); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, "Terminated", stateIs(id, "Terminated"))
	term := unwrapSNS(t, receiveOne(t, q, notifURL))
	if term["Event"] != "autoscaling:EC2_INSTANCE_TERMINATE" || term["EC2InstanceId"] != id || term["StatusCode"] != "Successful" {
		t.Errorf("group notification %v", term)
	}
}

// TestHookThroughSNSFilteredPerInstance sends a hook's messages to an SNS
// topic; each instance's queue subscribes with a body filter policy on its
// EC2InstanceId, one raw and one enveloped, and gets only its own message.
func TestHookThroughSNSFilteredPerInstance(t *testing.T) {
	sb := startSandbox(t, "--relax-limits", "--no-processes")
	ev := followEvents(t, sb.endpoint)
	cfg := sdkConfig(t, sb.endpoint)
	c, q, topics := newClients(cfg), sqs.NewFromConfig(cfg), sns.NewFromConfig(cfg)
	ctx := context.Background()
	topic, err := topics.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("lifecycle")})
	if err != nil {
		t.Fatal(err)
	}
	launchConfig(t, c, "lc", "")
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("g"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(2), AvailabilityZones: []string{"us-east-1a"},
	}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for len(ids) < 2 {
		ids = append(ids, ev.waitFor(t, "InService", stateIs("", "InService")).Instance)
	}
	urls := map[string]string{}
	for i, id := range ids {
		url, arn := queue(t, q, "q-"+id)
		urls[id] = url
		raw := "false"
		if i == 0 {
			raw = "true"
		}
		if _, err := topics.Subscribe(ctx, &sns.SubscribeInput{
			TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(arn),
			Attributes: map[string]string{
				"FilterPolicyScope":  "MessageBody",
				"FilterPolicy":       `{"EC2InstanceId":["` + id + `"]}`,
				"RawMessageDelivery": raw,
			},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.asg.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{
		AutoScalingGroupName: aws.String("g"), LifecycleHookName: aws.String("drain"),
		LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"), NotificationTargetARN: topic.TopicArn,
		RoleARN: aws.String(roleARN), HeartbeatTimeout: aws.Int32(60),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		body := receiveOne(t, q, urls[id])
		if i == 1 {
			body = unwrapSNS(t, body)
		}
		if body["EC2InstanceId"] != id || body["LifecycleTransition"] != "autoscaling:EC2_INSTANCE_TERMINATING" {
			t.Errorf("queue of %s got %v", id, body)
		}
		// Nothing else: the other instance's message was filtered out.
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(urls[id]), WaitTimeSeconds: 0})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) != 0 {
			t.Errorf("queue of %s also got %s", id, aws.ToString(out.Messages[0].Body))
		}
		if _, err := c.asg.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{
			AutoScalingGroupName: aws.String("g"), LifecycleHookName: aws.String("drain"),
			LifecycleActionToken: aws.String(body["LifecycleActionToken"].(string)), LifecycleActionResult: aws.String("CONTINUE"),
		}); err != nil {
			t.Fatal(err)
		}
	}
	ev.waitAll(t, map[string]func(event) bool{ids[0]: stateIs(ids[0], "Terminated"), ids[1]: stateIs(ids[1], "Terminated")})
}
