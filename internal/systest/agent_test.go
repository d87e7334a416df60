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
)

// agentUserData is user data that runs the built lifeguard agent with a
// launch probe (a file the test creates) and a two-step terminate plan.
func agentUserData(bin string) string {
	return `#!/bin/sh
cat > agent.yaml <<YAML
source: imds
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
      command: ["sh", "-c", "echo drain \"\$LIFEGUARD_REASON \$LIFEGUARD_HOOK \$LIFEGUARD_INSTANCE_ID \$LIFEGUARD_GROUP \$LIFEGUARD_TRANSITION\" >> $PWD/steps.log"]
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
// data: the launch waits for its readiness probe, the termination runs
// the plan in order, both complete, and the instance's processes go.
func TestAgentHoldsLaunchAndTermination(t *testing.T) {
	sb := startSandbox(t, "--relax-limits")
	ev := followEvents(t, sb.endpoint)
	c := newClients(sdkConfig(t, sb.endpoint))
	ctx := context.Background()
	launchConfig(t, c, "lc", agentUserData(lifeguardBinary(t)))
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("web"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(0), AvailabilityZones: []string{"us-east-1a"},
		LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{
			{LifecycleHookName: aws.String("ready"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"), HeartbeatTimeout: aws.Int32(30)},
			{LifecycleHookName: aws.String("drain-hook"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"), HeartbeatTimeout: aws.Int32(30)},
		},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("web"), DesiredCapacity: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	id := ev.waitFor(t, "Pending:Wait", stateIs("", "Pending:Wait")).Instance
	dir := filepath.Join(sb.stateDir, "instances", id)
	// Not ready yet: the agent holds the launch. Then the file appears.
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := ev.waitFor(t, "launch action completed", func(e event) bool { return e.Kind == "action-completed" && e.Instance == id && e.Hook == "ready" })
	if done.Result != "CONTINUE" || done.Detail != "completed" {
		t.Errorf("launch action ended %s (%s), want CONTINUE by the agent", done.Result, done.Detail)
	}
	ev.waitFor(t, "InService", stateIs(id, "InService"))
	agentPID := pidOfProcessIn(t, dir)

	if _, err := c.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("web"), DesiredCapacity: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	done = ev.waitFor(t, "terminate action completed", func(e event) bool { return e.Kind == "action-completed" && e.Instance == id && e.Hook == "drain-hook" })
	if done.Result != "CONTINUE" || done.Detail != "completed" {
		t.Errorf("terminate action ended %s (%s), want CONTINUE by the agent", done.Result, done.Detail)
	}
	ev.waitFor(t, "Terminated", stateIs(id, "Terminated"))
	log, err := os.ReadFile(filepath.Join(dir, "steps.log"))
	if err != nil {
		t.Fatal(err)
	}
	want := "drain lifecycle-hook drain-hook " + id + " web autoscaling:EC2_INSTANCE_TERMINATING\nship-logs\n"
	if string(log) != want {
		t.Errorf("steps ran as\n%s\nwant\n%s", log, want)
	}
	if agentPID > 0 && processAlive(agentPID) {
		t.Errorf("the agent (pid %d) outlived its instance", agentPID)
	}
}

// pidOfProcessIn finds the agent process whose working directory is dir.
func pidOfProcessIn(t *testing.T, dir string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || cwd != dir {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), "agent\x00--config") {
			var pid int
			for _, ch := range e.Name() {
				pid = pid*10 + int(ch-'0')
			}
			return pid
		}
	}
	t.Logf("no agent process found in %s", dir)
	return 0
}
