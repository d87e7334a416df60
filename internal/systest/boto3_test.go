package systest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// boto3Python returns the path of a Python interpreter that imports
// boto3: the interpreter itself (sys.executable), not a version-manager
// shim in front of it.
func boto3Python(t *testing.T) string {
	return requireTool(t, "python3 with boto3", func() (string, error) {
		var tried []string
		for _, name := range []string{"python3", "python"} {
			p, err := exec.LookPath(name)
			if err != nil {
				continue
			}
			tried = append(tried, p)
			out, err := exec.Command(p, "-c", "import sys, boto3; print(sys.executable)").Output()
			if err == nil {
				if exe := strings.TrimSpace(string(out)); exe != "" {
					return exe, nil
				}
			}
		}
		return "", fmt.Errorf("no python3 on PATH imports boto3 (tried %v)", tried)
	})
}

// boto3Result is what testdata/boto3_seed.py prints.
type boto3Result struct {
	Boto3Version     string         `json:"boto3_version"`
	BotocoreVersion  string         `json:"botocore_version"`
	SQSProtocol      string         `json:"sqs_protocol"`
	Python           string         `json:"python"`
	QueueARN         string         `json:"queue_arn"`
	InstanceID       string         `json:"instance_id"`
	TestNotification map[string]any `json:"test_notification"`
	Lifecycle        map[string]any `json:"lifecycle_message"`
	StateWaiting     string         `json:"state_while_waiting"`
	InstancesAfter   []string       `json:"instances_after"`
	CompleteAgain    map[string]any `json:"complete_again"`
}

// TestSeedScenarioWithBoto3 runs the seeds' lifecycle workflow from a
// boto3 script, as a Python worker would: queue, group, terminate hook,
// TEST_NOTIFICATION, scale in, lifecycle message, heartbeat, complete,
// and completing again refused with AWS's text.
func TestSeedScenarioWithBoto3(t *testing.T) {
	python := boto3Python(t)
	sb := startSandbox(t, "--relax-limits", "--no-processes")
	ev := followEvents(t, sb.endpoint)

	dir := t.TempDir()
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "BOTO_") {
			env = append(env, kv)
		}
	}
	env = append(env, "LIFEGUARD_ENDPOINT="+sb.endpoint,
		"AWS_ACCESS_KEY_ID=sandbox", "AWS_SECRET_ACCESS_KEY=sandbox", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join("testdata", "boto3_seed.py"))
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || ctx.Err() != nil {
			t.Fatalf("boto3 script: %v (context: %v)\nstdout: %s\nstderr: %s", err, ctx.Err(), stdout.String(), stderr.String())
		}
		t.Fatal(err)
	}
	if stderr.Len() > 0 {
		t.Logf("boto3 script stderr: %s", stderr.String())
	}
	var got boto3Result
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("boto3 script output is not JSON: %v\n%s", err, stdout.String())
	}
	t.Logf("boto3 %s, botocore %s, Python %s; botocore's SQS protocol: %s", got.Boto3Version, got.BotocoreVersion, got.Python, got.SQSProtocol)
	switch got.SQSProtocol {
	case "json", "query":
	default:
		t.Errorf("botocore's SQS protocol %q, want json or query", got.SQSProtocol)
	}

	if got.QueueARN != "arn:aws:sqs:us-east-1:123456789012:lifecycle-q" {
		t.Errorf("QueueArn %q", got.QueueARN)
	}
	// The script saw the same instance the sandbox launched and ended.
	launched := ev.waitFor(t, "InService", stateIs("", "InService")).Instance
	if got.InstanceID != launched {
		t.Errorf("script saw instance %q in service; the sandbox launched %q", got.InstanceID, launched)
	}
	ev.waitFor(t, "Terminated", stateIs(launched, "Terminated"))

	tn := got.TestNotification
	if tn["Event"] != "autoscaling:TEST_NOTIFICATION" || tn["AutoScalingGroupName"] != "my-asg" {
		t.Errorf("test notification %v", tn)
	}
	for _, k := range []string{"LifecycleTransition", "EC2InstanceId", "LifecycleActionToken"} {
		if _, ok := tn[k]; ok {
			t.Errorf("test notification carries %s (lifecycle-semantics.md §8.2: it has none): %v", k, tn)
		}
	}

	msg := got.Lifecycle
	for k, want := range map[string]any{
		"EC2InstanceId": launched, "LifecycleHookName": "drain-hook", "AutoScalingGroupName": "my-asg",
		"LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "Service": "AWS Auto Scaling",
		"AccountId": "123456789012",
	} {
		if msg[k] != want {
			t.Errorf("lifecycle message %s = %v, want %v", k, msg[k], want)
		}
	}
	token, _ := msg["LifecycleActionToken"].(string)
	if len(token) != 36 {
		t.Fatalf("LifecycleActionToken %q, want a UUID", token)
	}
	if _, ok := msg["NotificationMetadata"]; ok {
		t.Errorf("lifecycle message carries NotificationMetadata, which the hook did not set (§8.1: omitted when unset)")
	}
	if got.StateWaiting != "Terminating:Wait" {
		t.Errorf("instance state while the action waits: %q, want Terminating:Wait", got.StateWaiting)
	}
	if len(got.InstancesAfter) != 0 {
		t.Errorf("instances left in the group: %v", got.InstancesAfter)
	}

	again := got.CompleteAgain
	if again["code"] != "ValidationError" || again["message"] != "No active Lifecycle Action found with token "+token {
		t.Errorf("completing again: %v, want ValidationError %q", again, "No active Lifecycle Action found with token "+token)
	}
	if again["status"] != float64(400) {
		t.Errorf("completing again: HTTP %v, want 400", again["status"])
	}
}
