package systest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

// agentUserData is user data that runs the built lifeguard agent with
// the given source section, a launch probe (a file the test creates) and
// a two-step terminate plan whose first step outlasts the terminate hook's
// heartbeat timeout.
func agentUserData(bin, source string) string {
	return `#!/bin/sh
cat > agent.yaml <<YAML
` + source + `
imds:
  poll_interval: 1s
launch:
  probes:
    - name: ready-file
      command:
        argv: ["test", "-f", "$PWD/ready"]
        timeout: 5s
  consecutive_passes: 2
  interval: 1s
  timeout: 60s
terminate:
  steps:
    - name: drain
      command: ["sh", "-c", "env | grep ^LIFEGUARD_ | sort > $PWD/drain.env; sleep 5; echo drain >> $PWD/steps.log"]
      timeout: 30s
    - name: ship-logs
      command: ["sh", "-c", "echo ship-logs >> $PWD/steps.log"]
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

// TestAgentHoldsLaunchAndTermination runs the agent as instances' user
// data, with each source: the launch waits for its readiness probe; the
// termination runs the plan in order with the documented environment,
// heartbeats keep the action past its heartbeat timeout (2 s, with a 5 s
// step), both actions are completed by the agent, and the instance's
// processes go.
func TestAgentHoldsLaunchAndTermination(t *testing.T) {
	for _, source := range []string{"imds", "sqs"} {
		t.Run(source, func(t *testing.T) { holdLaunchAndTermination(t, source) })
	}
}

func holdLaunchAndTermination(t *testing.T, source string) {
	const heartbeatTimeout = 2 * time.Second
	sb := startSandbox(t, "--relax-limits")
	ev := followEvents(t, sb.endpoint)
	cfg := sdkConfig(t, sb.endpoint)
	c := newClients(cfg)
	ctx := context.Background()
	hooks := []astypes.LifecycleHookSpecification{
		{LifecycleHookName: aws.String("ready"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"), HeartbeatTimeout: aws.Int32(30)},
		{
			LifecycleHookName: aws.String("drain-hook"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"),
			HeartbeatTimeout: aws.Int32(int32(heartbeatTimeout / time.Second)), NotificationMetadata: aws.String(`{"team":"web"}`),
		},
	}
	section := "source: imds"
	if source == "sqs" {
		// The hooks notify a queue shared by the group.
		url, arn := queue(t, sqs.NewFromConfig(cfg), "web-lifecycle")
		for i := range hooks {
			hooks[i].NotificationTargetARN, hooks[i].RoleARN = aws.String(arn), aws.String(roleARN)
		}
		section = "source: sqs\nsqs:\n  queue_url: " + url + "\n  wait_time: 1s"
	}
	launchConfig(t, c, "lc", agentUserData(lifeguardBinary(t), section))
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("web"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(0), AvailabilityZones: []string{"us-east-1a"},
		LifecycleHookSpecificationList: hooks,
	}); err != nil {
		t.Fatal(err)
	}
	setDesired(t, c, "web", 1)
	id := ev.waitFor(t, "Pending:Wait", stateIs("", "Pending:Wait")).Instance
	dir := filepath.Join(sb.stateDir, "instances", id)
	dumpConsoleOnFailure(t, dir)
	// Not ready yet: the agent holds the launch. Then the file appears.
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := ev.waitFor(t, "launch action completed", completedBy(id, "ready"))
	if done.Result != "CONTINUE" || done.Detail != "completed" {
		t.Errorf("launch action ended %s (%s), want CONTINUE by the agent", done.Result, done.Detail)
	}
	ev.waitFor(t, "InService", stateIs(id, "InService"))
	agentPID := pidOfProcessIn(t, dir)

	setDesired(t, c, "web", 0)
	started := ev.waitFor(t, "terminate action started", func(e event) bool {
		return e.Kind == "action-started" && e.Instance == id && e.Hook == "drain-hook"
	})
	beats := 0
	done = ev.waitFor(t, "terminate action ended", func(e event) bool {
		if e.Kind == "action-heartbeat" && e.Instance == id && e.Hook == "drain-hook" {
			beats++
		}
		return (e.Kind == "action-completed" || e.Kind == "action-timed-out") && e.Instance == id && e.Hook == "drain-hook"
	})
	if done.Kind != "action-completed" || done.Result != "CONTINUE" || done.Detail != "completed" {
		t.Errorf("terminate action ended %s %s (%s), want completed CONTINUE by the agent", done.Kind, done.Result, done.Detail)
	}
	if held := done.Time.Sub(started.Time); held <= heartbeatTimeout || beats < 2 {
		t.Errorf("terminate action held %s with %d heartbeats; want past the %s heartbeat timeout, kept by heartbeats", held, beats, heartbeatTimeout)
	}
	ev.waitFor(t, "Terminated", stateIs(id, "Terminated"))
	if log := waitFile(t, filepath.Join(dir, "steps.log")); string(log) != "drain\nship-logs\n" {
		t.Errorf("steps ran as %q, want drain then ship-logs, once each", log)
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(waitFile(t, filepath.Join(dir, "drain.env")))), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	want := map[string]string{
		"LIFEGUARD_INSTANCE_ID": id, "LIFEGUARD_GROUP": "web", "LIFEGUARD_HOOK": "drain-hook",
		"LIFEGUARD_TRANSITION": "autoscaling:EC2_INSTANCE_TERMINATING", "LIFEGUARD_REASON": "lifecycle-hook",
		"LIFEGUARD_NOTIFICATION_METADATA": `{"team":"web"}`,
	}
	if source == "sqs" {
		want["LIFEGUARD_LIFECYCLE_TOKEN"] = started.Token // from the message
	} else {
		want["LIFEGUARD_LIFECYCLE_TOKEN"] = "" // IMDS gives no token: completed by instance id
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	if d, err := time.Parse(time.RFC3339, env["LIFEGUARD_DEADLINE"]); err != nil || !d.After(started.Time) {
		t.Errorf("LIFEGUARD_DEADLINE=%q, want an RFC 3339 time after the action started (%v)", env["LIFEGUARD_DEADLINE"], err)
	}
	if agentPID > 0 && processAlive(agentPID) {
		t.Errorf("the agent (pid %d) outlived its instance", agentPID)
	}
}

// pidOfProcessIn finds the agent process whose working directory is dir;
// 0 when none runs there.
func pidOfProcessIn(t *testing.T, dir string) int {
	t.Helper()
	pid, err := proc.AgentIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	if pid == 0 {
		t.Logf("no agent process found in %s", dir)
	}
	return pid
}
