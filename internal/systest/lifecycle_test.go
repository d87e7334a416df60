package systest_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// userData is a script that records its pid and that of a daemonized child,
// then stays up, as a service on a real instance would.
const userData = `#!/bin/sh
echo "booting $(pwd)"
setsid sleep 100000 </dev/null >/dev/null 2>&1 &
echo $! > daemon.pid
echo $$ > main.pid
exec sleep 100000
`

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// apiError returns the code and message of an AWS API error.
func apiError(t *testing.T, err error) (string, string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an AWS API error, got %v", err)
	}
	return ae.ErrorCode(), ae.ErrorMessage()
}

func imdsGet(t *testing.T, endpoint, path string) (string, error) {
	t.Helper()
	c := imds.New(imds.Options{Endpoint: endpoint, EnableFallback: aws.FalseTernary, ClientEnableState: imds.ClientEnabled})
	out, err := c.GetMetadata(context.Background(), &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", err
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	return string(b), err
}

func pidOf(t *testing.T, path string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(string(waitFile(t, path))))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// TestScaleOutAndInThroughHooks is the sandbox's core scenario: a group
// scales out through a launch hook and in through a terminate hook, the
// instances' IMDS follows, heartbeats and completions behave as on AWS,
// and a terminated instance leaves no process behind.
func TestScaleOutAndInThroughHooks(t *testing.T) {
	sb := startSandbox(t, "--relax-limits")
	ev := followEvents(t, sb.endpoint)
	c := newClients(sdkConfig(t, sb.endpoint))
	ctx := context.Background()

	launchConfig(t, c, "web", userData)
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("web"), LaunchConfigurationName: aws.String("web"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(3), DesiredCapacity: aws.Int32(0),
		AvailabilityZones: []string{"us-east-1a", "us-east-1b"},
	}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct{ name, transition string }{
		{"ready", "autoscaling:EC2_INSTANCE_LAUNCHING"},
		{"drain", "autoscaling:EC2_INSTANCE_TERMINATING"},
	} {
		if _, err := c.asg.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{
			AutoScalingGroupName: aws.String("web"), LifecycleHookName: aws.String(h.name),
			LifecycleTransition: aws.String(h.transition), HeartbeatTimeout: aws.Int32(60), DefaultResult: aws.String("ABANDON"),
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("web"), DesiredCapacity: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for len(ids) < 2 {
		e := ev.waitFor(t, "two instances in Pending:Wait", stateIs("", "Pending:Wait"))
		ids = append(ids, e.Instance)
	}
	infos := sandboxInstances(t, sb.endpoint)
	for _, id := range ids {
		out, err := c.asg.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(out.AutoScalingInstances[0].LifecycleState); got != "Pending:Wait" {
			t.Errorf("%s: lifecycle state %q, want Pending:Wait", id, got)
		}
		if got, err := imdsGet(t, infos[id].IMDS, "autoscaling/target-lifecycle-state"); err != nil || got != "InService" {
			t.Errorf("%s: IMDS target-lifecycle-state = %q, %v; want InService while in Pending:Wait", id, got, err)
		}
		if got, err := imdsGet(t, infos[id].IMDS, "instance-id"); err != nil || got != id {
			t.Errorf("IMDS instance-id = %q, %v; want %s", got, err, id)
		}
		if got, err := imdsGet(t, infos[id].IMDS, "local-ipv4"); err != nil || got != infos[id].IP {
			t.Errorf("IMDS local-ipv4 = %q, %v; want %s", got, err, infos[id].IP)
		}
		if _, err := imdsGet(t, infos[id].IMDS, "tags/instance"); err == nil {
			t.Errorf("IMDS tags/instance answered for a launch configuration instance; AWS serves it only when instance metadata tags are enabled")
		}
	}
	for _, id := range ids {
		if _, err := c.asg.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{
			AutoScalingGroupName: aws.String("web"), LifecycleHookName: aws.String("ready"),
			InstanceId: aws.String(id), LifecycleActionResult: aws.String("CONTINUE"),
		}); err != nil {
			t.Fatal(err)
		}
		ev.waitFor(t, id+" InService", stateIs(id, "InService"))
	}
	// The user data really runs, as the instance's own process group.
	pids := map[string]int{}
	for _, id := range ids {
		pids[id+"/main"] = pidOf(t, filepath.Join(infos[id].Dir, "main.pid"))
		pids[id+"/daemon"] = pidOf(t, filepath.Join(infos[id].Dir, "daemon.pid"))
	}

	// Scale in: one instance goes to Terminating:Wait; its IMDS says Terminated.
	if _, err := c.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("web"), DesiredCapacity: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	started := ev.waitFor(t, "terminate action", func(e event) bool { return e.Kind == "action-started" && e.Hook == "drain" })
	victim, token := started.Instance, started.Token
	ev.waitFor(t, victim+" Terminating:Wait", stateIs(victim, "Terminating:Wait"))
	if got, err := imdsGet(t, infos[victim].IMDS, "autoscaling/target-lifecycle-state"); err != nil || got != "Terminated" {
		t.Errorf("IMDS target-lifecycle-state = %q, %v; want Terminated while in Terminating:Wait", got, err)
	}

	t.Run("wrong token is AWS's ValidationError", func(t *testing.T) {
		bad := "00000000-0000-4000-8000-000000000000"
		_, err := c.asg.RecordLifecycleActionHeartbeat(ctx, &autoscaling.RecordLifecycleActionHeartbeatInput{
			AutoScalingGroupName: aws.String("web"), LifecycleHookName: aws.String("drain"), LifecycleActionToken: aws.String(bad),
		})
		code, msg := apiError(t, err)
		if code != "ValidationError" || msg != "No active Lifecycle Action found with token "+bad {
			t.Errorf("got %s: %s", code, msg)
		}
	})
	if _, err := c.asg.RecordLifecycleActionHeartbeat(ctx, &autoscaling.RecordLifecycleActionHeartbeatInput{
		AutoScalingGroupName: aws.String("web"), LifecycleHookName: aws.String("drain"), LifecycleActionToken: aws.String(token),
	}); err != nil {
		t.Fatalf("heartbeat with the action's token: %v", err)
	}
	ev.waitFor(t, "heartbeat recorded", func(e event) bool { return e.Kind == "action-heartbeat" && e.Token == token })
	if _, err := c.asg.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{
		AutoScalingGroupName: aws.String("web"), LifecycleHookName: aws.String("drain"),
		LifecycleActionToken: aws.String(token), LifecycleActionResult: aws.String("CONTINUE"),
	}); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, victim+" Terminated", stateIs(victim, "Terminated"))

	t.Run("completing twice is AWS's ValidationError", func(t *testing.T) {
		_, err := c.asg.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{
			AutoScalingGroupName: aws.String("web"), LifecycleHookName: aws.String("drain"),
			InstanceId: aws.String(victim), LifecycleActionResult: aws.String("CONTINUE"),
		})
		code, msg := apiError(t, err)
		if code != "ValidationError" || msg != "No active Lifecycle Action found with instance ID "+victim {
			t.Errorf("got %s: %s", code, msg)
		}
	})
	t.Run("terminated instance's processes are gone", func(t *testing.T) {
		for _, k := range []string{victim + "/main", victim + "/daemon"} {
			if processAlive(pids[k]) {
				t.Errorf("%s (pid %d) still runs after termination", k, pids[k])
			}
		}
		survivor := ids[0]
		if survivor == victim {
			survivor = ids[1]
		}
		if !processAlive(pids[survivor+"/main"]) {
			t.Errorf("the surviving instance's user data (pid %d) is gone", pids[survivor+"/main"])
		}
	})
	t.Run("EC2 sees the terminated instance", func(t *testing.T) {
		out, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{victim}})
		if err != nil {
			t.Fatal(err)
		}
		if got := out.Reservations[0].Instances[0].State.Name; got != ec2types.InstanceStateNameTerminated {
			t.Errorf("state %s, want terminated", got)
		}
		cons, err := c.ec2.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(victim)})
		if err != nil {
			t.Fatal(err)
		}
		text, _ := base64.StdEncoding.DecodeString(aws.ToString(cons.Output))
		if !strings.Contains(string(text), "booting ") {
			t.Errorf("console output %q lacks the user data's output", text)
		}
	})
	t.Run("activities record the scale-in with AWS's wording", func(t *testing.T) {
		out, err := c.asg.DescribeScalingActivities(ctx, &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String("web")})
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, a := range out.Activities {
			if aws.ToString(a.Description) == "Terminating EC2 instance: "+victim {
				found = true
				if a.StatusCode != astypes.ScalingActivityStatusCodeSuccessful {
					t.Errorf("status %s, want Successful", a.StatusCode)
				}
				if !strings.Contains(aws.ToString(a.Cause), "a user request explicitly set group desired capacity changing the desired capacity from 2 to 1") {
					t.Errorf("cause %q", aws.ToString(a.Cause))
				}
			}
		}
		if !found {
			t.Errorf("no activity for the termination of %s", victim)
		}
	})

	// Stopping the sandbox leaves no process behind.
	sb.stop(t)
	for k, pid := range pids {
		if processAlive(pid) {
			t.Errorf("%s (pid %d) outlived the sandbox", k, pid)
		}
	}
}

// TestLifecycleTimeoutsWithRealLimits uses AWS's real limits and pushes
// the sandbox's clock through the admin API instead of waiting.
func TestLifecycleTimeoutsWithRealLimits(t *testing.T) {
	sb := startSandbox(t, "--no-processes")
	ev := followEvents(t, sb.endpoint)
	c := newClients(sdkConfig(t, sb.endpoint))
	ctx := context.Background()
	lt, err := c.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("app"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{
			ImageId:         aws.String("ami-0abcdef1234567890"),
			MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{InstanceMetadataTags: ec2types.LaunchTemplateInstanceMetadataTagsStateEnabled, HttpTokens: ec2types.LaunchTemplateHttpTokensStateRequired},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ltID := aws.ToString(lt.LaunchTemplate.LaunchTemplateId)
	newGroup := func(t *testing.T, name string, hooks ...astypes.LifecycleHookSpecification) string {
		t.Helper()
		if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
			AutoScalingGroupName: aws.String(name), LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(ltID)},
			MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(1), AvailabilityZones: []string{"us-east-1a"},
			LifecycleHookSpecificationList: hooks,
			Tags:                           []astypes.Tag{{Key: aws.String("team"), Value: aws.String("blue"), PropagateAtLaunch: aws.Bool(true), ResourceId: aws.String(name), ResourceType: aws.String("auto-scaling-group")}},
		}); err != nil {
			t.Fatal(err)
		}
		e := ev.waitFor(t, name+" launch action", func(e event) bool { return e.Kind == "action-started" && e.Group == name })
		return e.Instance
	}
	advance := func(d time.Duration) {
		admin(t, sb.endpoint, "/_sandbox/clock", map[string]string{"advance": d.String()})
	}

	t.Run("heartbeat extends the wait and timeout applies the default result", func(t *testing.T) {
		id := newGroup(t, "hb", astypes.LifecycleHookSpecification{
			LifecycleHookName: aws.String("ready"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"),
			HeartbeatTimeout: aws.Int32(3600), DefaultResult: aws.String("CONTINUE"),
		})
		advance(50 * time.Minute)
		if _, err := c.asg.RecordLifecycleActionHeartbeat(ctx, &autoscaling.RecordLifecycleActionHeartbeatInput{
			AutoScalingGroupName: aws.String("hb"), LifecycleHookName: aws.String("ready"), InstanceId: aws.String(id),
		}); err != nil {
			t.Fatal(err)
		}
		advance(50 * time.Minute) // 100 min after the start: past the first deadline, within the new one
		out, err := c.asg.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(out.AutoScalingInstances[0].LifecycleState); got != "Pending:Wait" {
			t.Fatalf("after a heartbeat and 100 minutes: %s, want Pending:Wait", got)
		}
		advance(11 * time.Minute)
		e := ev.waitFor(t, "heartbeat timeout", func(e event) bool { return e.Kind == "action-timed-out" && e.Instance == id })
		if e.Result != "CONTINUE" || e.Detail != "heartbeat timeout" {
			t.Errorf("timed out with %s (%s), want CONTINUE (heartbeat timeout)", e.Result, e.Detail)
		}
		ev.waitFor(t, id+" InService", stateIs(id, "InService"))
	})

	t.Run("global timeout caps heartbeats", func(t *testing.T) {
		id := newGroup(t, "global", astypes.LifecycleHookSpecification{
			LifecycleHookName: aws.String("ready"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"),
			HeartbeatTimeout: aws.Int32(30), DefaultResult: aws.String("CONTINUE"),
		})
		hooks, err := c.asg.DescribeLifecycleHooks(ctx, &autoscaling.DescribeLifecycleHooksInput{AutoScalingGroupName: aws.String("global")})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToInt32(hooks.LifecycleHooks[0].GlobalTimeout); got != 3000 {
			t.Errorf("GlobalTimeout %d, want 3000 (100 × 30)", got)
		}
		// Heartbeat every 25 s for 3000 s: the action must still end at the global timeout.
		for elapsed := 0; elapsed < 3000; elapsed += 25 {
			_, err := c.asg.RecordLifecycleActionHeartbeat(ctx, &autoscaling.RecordLifecycleActionHeartbeatInput{
				AutoScalingGroupName: aws.String("global"), LifecycleHookName: aws.String("ready"), InstanceId: aws.String(id),
			})
			if err != nil {
				code, _ := apiError(t, err)
				t.Fatalf("heartbeat at %d s: %s", elapsed, code)
			}
			advance(25 * time.Second)
		}
		e := ev.waitFor(t, "global timeout", func(e event) bool { return e.Kind == "action-timed-out" && e.Instance == id })
		if e.Detail != "global timeout" {
			t.Errorf("timed out by %q, want global timeout", e.Detail)
		}
	})

	t.Run("launch ABANDON terminates and replaces the instance", func(t *testing.T) {
		id := newGroup(t, "abandon", astypes.LifecycleHookSpecification{
			LifecycleHookName: aws.String("ready"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"),
			HeartbeatTimeout: aws.Int32(300),
		})
		out, _ := c.asg.DescribeLifecycleHooks(ctx, &autoscaling.DescribeLifecycleHooksInput{AutoScalingGroupName: aws.String("abandon")})
		if got := aws.ToString(out.LifecycleHooks[0].DefaultResult); got != "ABANDON" {
			t.Errorf("default result %q, want ABANDON (AWS's default)", got)
		}
		token := ""
		if _, err := c.asg.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{
			AutoScalingGroupName: aws.String("abandon"), LifecycleHookName: aws.String("ready"),
			InstanceId: aws.String(id), LifecycleActionResult: aws.String("ABANDON"),
		}); err != nil {
			t.Fatal(err)
		}
		done := ev.waitFor(t, "abandon", func(e event) bool { return e.Kind == "action-completed" && e.Instance == id })
		token = done.Token
		ev.waitAll(t, map[string]func(event) bool{
			id + " terminated": stateIs(id, "Terminated"),
			"a replacement":    func(e event) bool { return e.Kind == "instance-launched" && e.Group == "abandon" && e.Instance != id },
		})
		acts, err := c.asg.DescribeScalingActivities(ctx, &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String("abandon")})
		if err != nil {
			t.Fatal(err)
		}
		want := "Instance failed to complete user's Lifecycle Action: Lifecycle Action with token " + token + " was abandoned: Lifecycle Action Completed with ABANDON Result"
		var found bool
		for _, a := range acts.Activities {
			if aws.ToString(a.Description) == "Launching a new EC2 instance: "+id {
				found = true
				if a.StatusCode != astypes.ScalingActivityStatusCodeCancelled || aws.ToString(a.StatusMessage) != want {
					t.Errorf("activity %s %q, want Cancelled %q", a.StatusCode, aws.ToString(a.StatusMessage), want)
				}
			}
		}
		if !found {
			t.Error("no launch activity for the abandoned instance")
		}
	})

	t.Run("IMDS follows tags when instance metadata tags are enabled", func(t *testing.T) {
		groups, err := c.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"hb"}})
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(groups.AutoScalingGroups[0].Instances[0].InstanceId)
		md := sandboxInstances(t, sb.endpoint)[id].IMDS
		if got, err := imdsGet(t, md, "tags/instance/team"); err != nil || got != "blue" {
			t.Errorf("propagated tag team = %q, %v; want blue", got, err)
		}
		if got, err := imdsGet(t, md, "tags/instance/aws:autoscaling:groupName"); err != nil || got != "hb" {
			t.Errorf("tag aws:autoscaling:groupName = %q, %v; want hb", got, err)
		}
		if _, err := c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String("isLeader"), Value: aws.String("true")}}}); err != nil {
			t.Fatal(err)
		}
		if got, err := imdsGet(t, md, "tags/instance/isLeader"); err != nil || got != "true" {
			t.Errorf("new tag isLeader = %q, %v; want true", got, err)
		}
	})
}
