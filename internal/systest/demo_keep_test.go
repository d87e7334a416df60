package systest_test

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestDemoKeep: `demo --keep` runs its scenario, says only that the
// sandbox keeps running (it used to say "stops now" first), prints
// exports an SDK program can use as they are, keeps serving until
// interrupted, then exits 0 with no process left. The tag scenario, the
// shortest, is enough: what --keep does is the same for every part.
func TestDemoKeep(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	cmd := exec.Command(lifeguardBinary(t), "demo", "--keep", "--scenario", "tag", "--state-dir", stateDir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testWriter{t: t, prefix: "demo stderr: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var out []string
	deadline := time.After(2 * time.Minute)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo --keep exited before its exports:\n%s", strings.Join(out, "\n"))
			}
			out = append(out, l)
			if strings.HasPrefix(strings.TrimSpace(l), "export AWS_ENDPOINT_URL=") {
				break wait
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("demo --keep did not print its exports within 2 minutes:\n%s", strings.Join(out, "\n"))
		}
	}
	text := strings.Join(out, "\n")
	if !strings.Contains(text, "keeps running") || strings.Contains(text, "stops now") || strings.Contains(text, "has stopped") {
		t.Errorf("demo --keep does not say only that the sandbox keeps running:\n%s", text)
	}

	// The exports, as a user pastes them, point an SDK program at the
	// sandbox left running.
	for _, kv := range strings.Fields(strings.TrimPrefix(strings.TrimSpace(out[len(out)-1]), "export ")) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("export %q is not NAME=VALUE", kv)
		}
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	gs, err := autoscaling.NewFromConfig(cfg).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"seed"}})
	if err != nil {
		t.Fatalf("DescribeAutoScalingGroups with the printed exports: %v", err)
	}
	if len(gs.AutoScalingGroups) != 1 || len(gs.AutoScalingGroups[0].Instances) != 2 {
		t.Errorf("the seed group left running: %+v, want 2 instances", gs.AutoScalingGroups)
	}
	tags, err := ec2.NewFromConfig(cfg).DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []ec2types.Filter{
		{Name: aws.String("key"), Values: []string{"app:isLeader"}}, {Name: aws.String("value"), Values: []string{"true"}},
	}})
	if err != nil {
		t.Fatalf("DescribeTags with the printed exports: %v", err)
	}
	if n := len(tags.Tags); n != 1 {
		t.Errorf("%d instances tagged app:isLeader=true while the sandbox keeps running, want 1", n)
	}

	// The scan that finds nothing left afterwards sees the running ones:
	// the demo, the instances' supervisor (it runs in the state
	// directory), two instances' agents (their user data), the Lambda
	// environment.
	if running := processesIn(t, stateDir); len(running) < 5 {
		t.Errorf("%d processes in %s while the sandbox keeps running, want at least 5: %q", len(running), stateDir, running)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		out = append(out, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("demo --keep after SIGINT: %v\n%s", err, strings.Join(out, "\n"))
	}
	checkNoProcessLeft(t, stateDir)
}
