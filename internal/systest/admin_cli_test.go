package systest_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
)

// lifeguard runs the built binary and returns its combined output.
func lifeguard(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(lifeguardBinary(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("lifeguard %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestSandboxAdminCommands drives a running sandbox with `lifeguard
// sandbox fault|clock|events`, as a user would from another terminal.
func TestSandboxAdminCommands(t *testing.T) {
	sb := startSandbox(t, "--no-processes")
	c := newClients(sdkConfig(t, sb.endpoint))
	ctx := context.Background()

	out := lifeguard(t, "sandbox", "fault", "set", "--endpoint", sb.endpoint, "--throttle", "1")
	if !strings.Contains(out, "every caller") || !strings.Contains(out, "throttle=1.00") {
		t.Errorf("fault set printed %q", out)
	}
	_, err := c.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
	if code, _ := apiError(t, err); code != "Throttling" {
		t.Errorf("with full throttling: %s, want Throttling", code)
	}
	if out := lifeguard(t, "sandbox", "fault", "clear", "--endpoint", sb.endpoint); !strings.Contains(out, "no active faults") {
		t.Errorf("fault clear printed %q", out)
	}
	if _, err := c.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{}); err != nil {
		t.Errorf("after clearing faults: %v", err)
	}
	if out := lifeguard(t, "sandbox", "clock", "advance", "--endpoint", sb.endpoint, "90m"); !strings.Contains(out, "ahead of the wall clock by 1h30m0s") {
		t.Errorf("clock advance printed %q", out)
	}
	out = lifeguard(t, "sandbox", "events", "--endpoint", sb.endpoint)
	for _, want := range []string{"fault", "clock advanced", "advanced by 1h30m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("events output lacks %q:\n%s", want, out)
		}
	}
	cmd := exec.Command(lifeguardBinary(t), "sandbox", "fault", "spot", "i-00000000000000000", "--endpoint", sb.endpoint)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "i-00000000000000000") {
		t.Errorf("spot for an unknown instance: %v %s", err, b)
	}
}
