package systest_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs one AWS CLI command against the sandbox as a user would type it.
type cli struct {
	t        *testing.T
	bin      string
	endpoint string
	env      []string
}

func newCLI(t *testing.T, bin, endpoint string) *cli {
	dir := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+dir,
		"AWS_ACCESS_KEY_ID=sandbox", "AWS_SECRET_ACCESS_KEY=sandbox", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"))
	return &cli{t: t, bin: bin, endpoint: endpoint, env: env}
}

// run executes `aws <args> --endpoint-url … --output json` and returns
// stdout, stderr and the exit code.
func (c *cli) run(args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append(args, "--endpoint-url", c.endpoint, "--output", "json")...)
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// ok runs a command that must succeed and decodes its JSON output.
func (c *cli) ok(out any, args ...string) {
	c.t.Helper()
	stdout, stderr, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("aws %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(stdout), out); err != nil {
			c.t.Fatalf("aws %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, stdout)
		}
	}
}

// TestCoreScenarioThroughAWSCLIs runs the sandbox's core scenario with the
// AWS CLI v1 and Debian's AWS CLI 2.9, as a user would type it.
func TestCoreScenarioThroughAWSCLIs(t *testing.T) {
	for _, v := range []struct {
		name, major string
		errExit     int
	}{{"v1", "1.", 255}, {"v2.9", "2.", 254}} {
		t.Run(v.name, func(t *testing.T) {
			bin := awsCLI(t, v.major)
			sb := startSandbox(t, "--relax-limits", "--no-processes")
			ev := followEvents(t, sb.endpoint)
			aws := newCLI(t, bin, sb.endpoint)

			aws.ok(nil, "autoscaling", "create-launch-configuration", "--launch-configuration-name", "web",
				"--image-id", "ami-0abcdef1234567890", "--instance-type", "t3.micro", "--user-data", "#!/bin/sh\necho hi")
			aws.ok(nil, "autoscaling", "create-auto-scaling-group", "--auto-scaling-group-name", "web",
				"--launch-configuration-name", "web", "--min-size", "0", "--max-size", "2", "--desired-capacity", "1",
				"--availability-zones", "us-east-1a", "--tags", "Key=role,Value=web,PropagateAtLaunch=true")
			aws.ok(nil, "autoscaling", "put-lifecycle-hook", "--auto-scaling-group-name", "web", "--lifecycle-hook-name", "drain",
				"--lifecycle-transition", "autoscaling:EC2_INSTANCE_TERMINATING", "--heartbeat-timeout", "1800", "--default-result", "CONTINUE")
			launched := ev.waitFor(t, "InService", stateIs("", "InService"))
			id := launched.Instance

			var groups struct {
				AutoScalingGroups []struct {
					AutoScalingGroupName string
					DesiredCapacity      int
					Instances            []struct{ InstanceId, LifecycleState, HealthStatus string }
					Tags                 []struct{ Key, Value string }
				}
			}
			aws.ok(&groups, "autoscaling", "describe-auto-scaling-groups", "--auto-scaling-group-names", "web")
			if len(groups.AutoScalingGroups) != 1 || len(groups.AutoScalingGroups[0].Instances) != 1 {
				t.Fatalf("describe-auto-scaling-groups: %+v", groups)
			}
			g := groups.AutoScalingGroups[0]
			if g.Instances[0].InstanceId != id || g.Instances[0].LifecycleState != "InService" || g.Instances[0].HealthStatus != "Healthy" || g.Tags[0].Value != "web" {
				t.Errorf("group as the CLI reads it: %+v", g)
			}
			var hooks struct {
				LifecycleHooks []struct {
					LifecycleHookName string
					HeartbeatTimeout  int
					GlobalTimeout     int
					DefaultResult     string
				}
			}
			aws.ok(&hooks, "autoscaling", "describe-lifecycle-hooks", "--auto-scaling-group-name", "web")
			if h := hooks.LifecycleHooks; len(h) != 1 || h[0].HeartbeatTimeout != 1800 || h[0].GlobalTimeout != 172800 || h[0].DefaultResult != "CONTINUE" {
				t.Errorf("describe-lifecycle-hooks: %+v", hooks)
			}

			aws.ok(nil, "autoscaling", "set-desired-capacity", "--auto-scaling-group-name", "web", "--desired-capacity", "0")
			ev.waitFor(t, "Terminating:Wait", stateIs(id, "Terminating:Wait"))
			var insts struct {
				AutoScalingInstances []struct{ InstanceId, LifecycleState, HealthStatus string }
			}
			aws.ok(&insts, "autoscaling", "describe-auto-scaling-instances", "--instance-ids", id)
			if i := insts.AutoScalingInstances; len(i) != 1 || i[0].LifecycleState != "Terminating:Wait" || i[0].HealthStatus != "HEALTHY" {
				t.Errorf("describe-auto-scaling-instances: %+v", insts)
			}
			aws.ok(nil, "autoscaling", "record-lifecycle-action-heartbeat", "--auto-scaling-group-name", "web",
				"--lifecycle-hook-name", "drain", "--instance-id", id)
			aws.ok(nil, "autoscaling", "complete-lifecycle-action", "--auto-scaling-group-name", "web",
				"--lifecycle-hook-name", "drain", "--instance-id", id, "--lifecycle-action-result", "CONTINUE")
			ev.waitFor(t, "Terminated", stateIs(id, "Terminated"))

			_, stderr, code := aws.run("autoscaling", "complete-lifecycle-action", "--auto-scaling-group-name", "web",
				"--lifecycle-hook-name", "drain", "--instance-id", id, "--lifecycle-action-result", "CONTINUE")
			if code != v.errExit || !strings.Contains(stderr, "An error occurred (ValidationError) when calling the CompleteLifecycleAction operation") ||
				!strings.Contains(stderr, "No active Lifecycle Action found with instance ID "+id) {
				t.Errorf("second completion: exit %d, stderr %q", code, stderr)
			}
			_, stderr, code = aws.run("autoscaling", "set-desired-capacity", "--auto-scaling-group-name", "web", "--desired-capacity", "9")
			if code != v.errExit || !strings.Contains(stderr, "New SetDesiredCapacity value 9 is above max value 2 for the AutoScalingGroup.") {
				t.Errorf("desired above max: exit %d, stderr %q", code, stderr)
			}

			var instances struct {
				Reservations []struct {
					Instances []struct {
						InstanceId string
						State      struct{ Name string }
					}
				}
			}
			aws.ok(&instances, "ec2", "describe-instances", "--instance-ids", id)
			if r := instances.Reservations; len(r) != 1 || r[0].Instances[0].State.Name != "terminated" {
				t.Errorf("ec2 describe-instances: %+v", instances)
			}
			var console struct{ InstanceId, Output string }
			aws.ok(&console, "ec2", "get-console-output", "--instance-id", id)
			if console.InstanceId != id {
				t.Errorf("get-console-output: %+v", console)
			}
		})
	}
}
