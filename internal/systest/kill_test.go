package systest_test

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
)

// TestSandboxKilledLeavesNoProcess kills the sandbox with SIGKILL, which it
// cannot catch: its instances' processes, daemonized ones included, must
// still all go.
func TestSandboxKilledLeavesNoProcess(t *testing.T) {
	sb := startSandbox(t, "--relax-limits")
	ev := followEvents(t, sb.endpoint)
	c := newClients(sdkConfig(t, sb.endpoint))
	ctx := context.Background()
	launchConfig(t, c, "lc", userData)
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("g"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(2), MaxSize: aws.Int32(2), AvailabilityZones: []string{"us-east-1a"},
	}); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for range 2 {
		e := ev.waitFor(t, "an instance in service", stateIs("", "InService"))
		dir := filepath.Join(sb.stateDir, "instances", e.Instance)
		pids = append(pids, pidOf(t, filepath.Join(dir, "main.pid")), pidOf(t, filepath.Join(dir, "daemon.pid")))
	}
	for _, pid := range pids {
		if !processAlive(pid) {
			t.Fatalf("pid %d is not running before the kill", pid)
		}
	}
	if err := sb.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-sb.done
	_ = sb.cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for processAlive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d still runs 30 s after the sandbox was killed", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
