package systest_test

import (
	"encoding/json"
	"testing"
)

// receiveCLI long-polls with `aws sqs receive-message` until one message
// arrives, deletes it, and returns its body decoded.
func (c *cli) receiveCLI(url string) map[string]any {
	c.t.Helper()
	for range 10 {
		var out struct {
			Messages []struct{ Body, ReceiptHandle, MD5OfBody string }
		}
		c.ok(&out, "sqs", "receive-message", "--queue-url", url, "--wait-time-seconds", "10", "--attribute-names", "All")
		if len(out.Messages) == 0 {
			continue
		}
		m := out.Messages[0]
		c.ok(nil, "sqs", "delete-message", "--queue-url", url, "--receipt-handle", m.ReceiptHandle)
		var body map[string]any
		if err := json.Unmarshal([]byte(m.Body), &body); err != nil {
			c.t.Fatalf("body %q: %v", m.Body, err)
		}
		return body
	}
	c.t.Fatal("no message within 100 s")
	return nil
}

// TestSeedScenarioThroughAWSCLIs runs the seeds' workflow as a user types
// it: AWS CLI v1 speaks SQS's JSON protocol, Debian's CLI 2.9 its query
// protocol.
func TestSeedScenarioThroughAWSCLIs(t *testing.T) {
	for _, v := range []struct{ name, major string }{{"v1", "1."}, {"v2.9", "2."}} {
		t.Run(v.name, func(t *testing.T) {
			bin := awsCLI(t, v.major)
			sb := startSandbox(t, "--relax-limits", "--no-processes")
			ev := followEvents(t, sb.endpoint)
			aws := newCLI(t, bin, sb.endpoint)

			var q struct{ QueueUrl string }
			aws.ok(&q, "sqs", "create-queue", "--queue-name", "lifecycle-q")
			var attrs struct{ Attributes map[string]string }
			aws.ok(&attrs, "sqs", "get-queue-attributes", "--queue-url", q.QueueUrl, "--attribute-names", "QueueArn")
			arn := attrs.Attributes["QueueArn"]
			if arn != "arn:aws:sqs:us-east-1:123456789012:lifecycle-q" {
				t.Fatalf("QueueArn %q", arn)
			}
			aws.ok(nil, "autoscaling", "create-launch-configuration", "--launch-configuration-name", "lc",
				"--image-id", "ami-0abcdef1234567890", "--instance-type", "t3.micro")
			aws.ok(nil, "autoscaling", "create-auto-scaling-group", "--auto-scaling-group-name", "my-asg",
				"--launch-configuration-name", "lc", "--min-size", "0", "--max-size", "2", "--desired-capacity", "1",
				"--availability-zones", "us-east-1a")
			id := ev.waitFor(t, "InService", stateIs("", "InService")).Instance
			aws.ok(nil, "autoscaling", "put-lifecycle-hook", "--auto-scaling-group-name", "my-asg",
				"--lifecycle-hook-name", "drain-hook", "--lifecycle-transition", "autoscaling:EC2_INSTANCE_TERMINATING",
				"--notification-target-arn", arn, "--role-arn", roleARN,
				"--heartbeat-timeout", "1800", "--default-result", "CONTINUE")
			if test := aws.receiveCLI(q.QueueUrl); test["Event"] != "autoscaling:TEST_NOTIFICATION" {
				t.Errorf("first message %v, want the test notification", test)
			}
			aws.ok(nil, "autoscaling", "set-desired-capacity", "--auto-scaling-group-name", "my-asg", "--desired-capacity", "0")
			msg := aws.receiveCLI(q.QueueUrl)
			token, _ := msg["LifecycleActionToken"].(string)
			if msg["EC2InstanceId"] != id || msg["LifecycleTransition"] != "autoscaling:EC2_INSTANCE_TERMINATING" || len(token) != 36 {
				t.Fatalf("lifecycle message %v", msg)
			}
			aws.ok(nil, "autoscaling", "record-lifecycle-action-heartbeat", "--auto-scaling-group-name", "my-asg",
				"--lifecycle-hook-name", "drain-hook", "--lifecycle-action-token", token)
			aws.ok(nil, "autoscaling", "complete-lifecycle-action", "--auto-scaling-group-name", "my-asg",
				"--lifecycle-hook-name", "drain-hook", "--lifecycle-action-token", token, "--lifecycle-action-result", "CONTINUE")
			ev.waitFor(t, "Terminated", stateIs(id, "Terminated"))
		})
	}
}
