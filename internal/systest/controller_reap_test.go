package systest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
)

// TestControllerReapsOrphanedActions kills agents with SIGKILL (and does
// not restart them) while their instances wait in Pending:Wait and in
// Terminating:Wait: the controller completes their actions (ABANDON,
// CONTINUE) within the grace plus one reconcile, and never completes the
// action of an instance whose agent is alive.
func TestControllerReapsOrphanedActions(t *testing.T) {
	const grace, interval = 15 * time.Second, 3 * time.Second
	sb := startSandbox(t, "--relax-limits")
	dumpConsolesOnFailure(t, sb.stateDir)
	ev := followEvents(t, sb.endpoint)
	cfg := sdkConfig(t, sb.endpoint)
	c := newClients(cfg)
	ctx := context.Background()
	bin := lifeguardBinary(t)
	if out, errOut, code := runIn(t, t.TempDir(), "leader", "create-table", "--table", "leases"); code != 0 {
		t.Fatalf("leader create-table = %d %q %q", code, out, errOut)
	}
	gate := t.TempDir() // all-ready in it lets every instance's probe pass
	sections := `leader:
  mode: lease
  table: leases
launch:
  probes:
    - name: gate
      command:
        argv: [sh, -c, "test -e $PWD/ready || test -e ` + gate + `/all-ready"]
terminate:
  steps:
    - name: hold
      command: [sleep, "3600"]
      timeout: 1h
`
	// The instance outlives its agent: a killed agent is not restarted.
	launchConfig(t, c, "lc", agentScript(bin, sections, "BIN agent --config agent.yaml; echo agent gone; exec sleep 3600"))
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("orphans"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(4), DesiredCapacity: aws.Int32(0), AvailabilityZones: []string{"us-east-1a"},
		Tags:                           []astypes.Tag{{Key: aws.String("lifeguard:controller"), Value: aws.String("enabled"), ResourceId: aws.String("orphans"), ResourceType: aws.String("auto-scaling-group")}},
		LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{launchHookSpec("arrive", 600), terminateHookSpec("leave", 600)},
	}); err != nil {
		t.Fatal(err)
	}
	ctl := exec.Command(bin, "controller", "--interval", interval.String(), "--lease-table", "leases", "--reap-grace", grace.String(), "--settle", "200ms")
	ctl.Stderr = &testWriter{t: t, prefix: "controller: "}
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Process.Kill(); _ = ctl.Wait() })

	presence := awscloud.NewLeaseTable(cfg, "leases")
	announced := func(id string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			ms, err := presence.Members(ctx, "orphans")
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if m.Instance == id {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the agent of %s never announced itself", id)
			}
			time.Sleep(100 * time.Millisecond) // polling the table
		}
	}
	kill := func(id string) time.Time {
		t.Helper()
		pid := pidOfProcessIn(t, filepath.Join(sb.stateDir, "instances", id))
		if pid == 0 {
			t.Fatalf("no agent on %s", id)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	bound := grace + interval + 2*time.Second // the last renewal precedes the kill; 2 s for the calls

	// Pending:Wait: two launches, one agent killed.
	setDesired(t, c, "orphans", 2)
	var waiting []string
	for range 2 {
		waiting = append(waiting, ev.waitFor(t, "an instance in Pending:Wait", stateIs("", "Pending:Wait")).Instance)
	}
	dead, alive := waiting[0], waiting[1]
	announced(dead)
	announced(alive)
	killed := kill(dead)
	e := ev.waitFor(t, "the orphaned launch completed", completedBy(dead, "arrive"))
	took := time.Since(killed)
	t.Logf("launch of %s (agent killed) completed with %s %v after the kill (grace %v, reconcile every %v)", dead, e.Result, took.Round(time.Millisecond), grace, interval)
	if e.Result != "ABANDON" || took > bound {
		t.Errorf("orphaned launch completed with %s after %v; want ABANDON within %v", e.Result, took, bound)
	}
	// The live agent's instance still waits: nobody completed it.
	if _, state, err := awscloud.NewAutoScaling(cfg).InstanceMembership(ctx, alive); err != nil || state != "Pending:Wait" {
		t.Errorf("%s (agent alive) is %q (%v) after %v; want still Pending:Wait", alive, state, err, took)
	}

	// Everyone becomes ready; then scale-in to zero and kill one agent
	// while its instance runs the terminate step.
	if err := os.WriteFile(filepath.Join(gate, "all-ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if e := ev.waitFor(t, "the live agent's launch completed", completedBy(alive, "arrive")); e.Result != "CONTINUE" {
		t.Errorf("the live agent completed its launch with %s; want CONTINUE", e.Result)
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		gs, err := c.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"orphans"}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, i := range gs.AutoScalingGroups[0].Instances {
			if i.LifecycleState == astypes.LifecycleStateInService {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group did not reach two InService instances")
		}
		time.Sleep(100 * time.Millisecond) // polling the group
	}
	setDesired(t, c, "orphans", 0)
	var leaving []string
	for range 2 {
		leaving = append(leaving, ev.waitFor(t, "an instance in Terminating:Wait", stateIs("", "Terminating:Wait")).Instance)
	}
	dead, alive = leaving[0], leaving[1]
	killed = kill(dead)
	e = ev.waitFor(t, "the orphaned termination completed", completedBy(dead, "leave"))
	took = time.Since(killed)
	t.Logf("termination of %s (agent killed) completed with %s %v after the kill", dead, e.Result, took.Round(time.Millisecond))
	if e.Result != "CONTINUE" || took > bound {
		t.Errorf("orphaned termination completed with %s after %v; want CONTINUE within %v", e.Result, took, bound)
	}
	if _, state, err := awscloud.NewAutoScaling(cfg).InstanceMembership(ctx, alive); err != nil || state != "Terminating:Wait" {
		t.Errorf("%s (agent alive, step running) is %q (%v); want still Terminating:Wait", alive, state, err)
	}
}

// TestControllerReapsQueuesOfGoneInstances: with --reap-queues the
// controller deletes the per-instance queue and SNS subscription of an
// instance EC2 does not know and of one that terminated, each within the
// grace plus one reconcile of when it was first seen gone, and keeps the
// queue of a running instance and the controller's own queue.
func TestControllerReapsQueuesOfGoneInstances(t *testing.T) {
	const grace, interval = 15 * time.Second, 2 * time.Second
	sb := startSandbox(t, "--relax-limits")
	ev := followEvents(t, sb.endpoint)
	cfg := sdkConfig(t, sb.endpoint)
	c := newClients(cfg)
	sq, sn := sqs.NewFromConfig(cfg), sns.NewFromConfig(cfg)
	ctx := context.Background()
	launchConfig(t, c, "lc", "#!/bin/sh\nexec sleep 3600\n")
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("web"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(1), AvailabilityZones: []string{"us-east-1a"},
	}); err != nil {
		t.Fatal(err)
	}
	live := ev.waitFor(t, "the instance InService", stateIs("", "InService")).Instance
	topic, err := sn.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("hooks")})
	if err != nil {
		t.Fatal(err)
	}
	const unknown = "i-0123456789abcdef0"
	urls := map[string]string{}
	for _, name := range []string{"lifeguard-" + live, "lifeguard-" + unknown, "lifeguard-controller"} {
		q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		urls[name] = aws.ToString(q.QueueUrl)
		a, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sn.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(a.Attributes["QueueArn"])}); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(name string) bool {
		out, err := sq.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(out.QueueUrls, urls[name])
	}
	subscriptions := func() int {
		out, err := sn.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: topic.TopicArn})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Subscriptions)
	}
	goneWithin := func(name string, from time.Time, bound time.Duration) {
		t.Helper()
		for exists(name) {
			if time.Since(from) > bound {
				t.Fatalf("%s still there %v after its instance was gone; want deleted within %v", name, time.Since(from), bound)
			}
			time.Sleep(200 * time.Millisecond) // polling SQS
		}
		took := time.Since(from)
		t.Logf("%s deleted %v after its instance was gone (grace %v, sweep every %v)", name, took.Round(time.Millisecond), grace, interval)
		if took < grace {
			t.Errorf("%s deleted after %v, before the grace %v", name, took, grace)
		}
	}
	bound := grace + interval + 3*time.Second

	started := time.Now()
	ctl := exec.Command(lifeguardBinary(t), "controller", "--interval", interval.String(), "--reap-queues", "--reap-grace", grace.String())
	ctl.Stderr = &testWriter{t: t, prefix: "controller: "}
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Process.Kill(); _ = ctl.Wait() })

	goneWithin("lifeguard-"+unknown, started, bound)
	if n := subscriptions(); n != 2 {
		t.Errorf("subscriptions after the unknown instance's queue went = %d, want 2", n)
	}
	if !exists("lifeguard-"+live) || !exists("lifeguard-controller") {
		t.Fatalf("the running instance's queue or the controller's own queue was deleted")
	}

	setDesired(t, c, "web", 0)
	ev.waitFor(t, "the instance terminated", stateIs(live, "Terminated"))
	goneWithin("lifeguard-"+live, time.Now(), bound)
	if n := subscriptions(); n != 1 {
		t.Errorf("subscriptions left = %d, want 1 (the controller queue's)", n)
	}
	if !exists("lifeguard-controller") {
		t.Errorf("the controller's own queue was deleted")
	}
}

// reapLog passes the controller's log to the test's and counts the
// actions it reaped.
type reapLog struct {
	w      testWriter
	mu     sync.Mutex
	reaped int
}

func (l *reapLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	l.reaped += strings.Count(string(b), "orphaned lifecycle action completed")
	l.mu.Unlock()
	return l.w.Write(b)
}

func (l *reapLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reaped
}

// TestControllerReapsNothingWithLiveAgents: across scale-outs and
// scale-ins whose actions wait longer than the grace (a launch probe held
// shut, a terminate step that outlasts it), live agents complete every
// action themselves and the controller completes none.
func TestControllerReapsNothingWithLiveAgents(t *testing.T) {
	const grace, interval, hold = 15 * time.Second, 2 * time.Second, 20 * time.Second
	sb := startSandbox(t, "--relax-limits")
	dumpConsolesOnFailure(t, sb.stateDir)
	ev := followEvents(t, sb.endpoint)
	cfg := sdkConfig(t, sb.endpoint)
	c := newClients(cfg)
	ctx := context.Background()
	bin := lifeguardBinary(t)
	if out, errOut, code := runIn(t, t.TempDir(), "leader", "create-table", "--table", "leases"); code != 0 {
		t.Fatalf("leader create-table = %d %q %q", code, out, errOut)
	}
	gate := t.TempDir()
	sections := `leader:
  mode: lease
  table: leases
launch:
  probes:
    - name: gate
      command:
        argv: [sh, -c, "test -e ` + gate + `/open"]
terminate:
  steps:
    - name: hold
      command: [sleep, "` + strconv.Itoa(int(hold/time.Second)) + `"]
      timeout: 1m
`
	launchConfig(t, c, "lc", agentScript(bin, sections, execAgent))
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("churn"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(4), DesiredCapacity: aws.Int32(0), AvailabilityZones: []string{"us-east-1a"},
		Tags:                           []astypes.Tag{{Key: aws.String("lifeguard:controller"), Value: aws.String("enabled"), ResourceId: aws.String("churn"), ResourceType: aws.String("auto-scaling-group")}},
		LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{launchHookSpec("arrive", 600), terminateHookSpec("leave", 600)},
	}); err != nil {
		t.Fatal(err)
	}
	log := &reapLog{w: testWriter{t: t, prefix: "controller: "}}
	ctl := exec.Command(bin, "controller", "--interval", interval.String(), "--lease-table", "leases", "--reap-grace", grace.String(), "--settle", "200ms")
	ctl.Stderr = log
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Process.Kill(); _ = ctl.Wait() })

	completions := 0
	// completed waits for n completions of hook's actions, in any order,
	// each by its agent (CONTINUE; the reaper would ABANDON a launch).
	completed := func(round int, hook string, n int32) {
		t.Helper()
		left := n
		ev.waitFor(t, fmt.Sprintf("%d completions of %s", n, hook), func(e event) bool {
			if e.Kind != "action-completed" || e.Hook != hook {
				return false
			}
			if e.Result != "CONTINUE" {
				t.Errorf("round %d: %s of %s completed with %s; want CONTINUE by its agent", round, hook, e.Instance, e.Result)
			}
			completions++
			left--
			return left == 0
		})
	}
	for round, sizes := range [][2]int32{{2, 0}, {2, 1}, {3, 0}} {
		out, in := sizes[0], sizes[1]
		// Scale out; the launches wait past the grace before the gate opens.
		n := out - countInService(t, c, "churn")
		setDesired(t, c, "churn", out)
		for range n {
			ev.waitFor(t, "an instance in Pending:Wait", stateIs("", "Pending:Wait"))
		}
		time.Sleep(hold) // the actions wait longer than the grace
		if err := os.WriteFile(filepath.Join(gate, "open"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		completed(round, "arrive", n)
		if err := os.Remove(filepath.Join(gate, "open")); err != nil {
			t.Fatal(err)
		}
		// Scale in: the terminate step holds each action past the grace.
		setDesired(t, c, "churn", in)
		completed(round, "leave", out-in)
	}
	time.Sleep(2 * interval) // a last reconcile or two
	t.Logf("%d lifecycle actions completed by live agents across the churn; %d by the controller", completions, log.count())
	if n := log.count(); n != 0 {
		t.Errorf("the controller completed %d actions of live agents; want none", n)
	}
}

// countInService returns how many of the group's instances are InService.
func countInService(t *testing.T, c clients, group string) int32 {
	t.Helper()
	gs, err := c.asg.DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil {
		t.Fatal(err)
	}
	var n int32
	for _, i := range gs.AutoScalingGroups[0].Instances {
		if i.LifecycleState == astypes.LifecycleStateInService {
			n++
		}
	}
	return n
}
