package sandbox_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/sandbox"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStartEndpointClose is how a user's test uses the package: start a
// sandbox, point an SDK client at its endpoint, drive a lifecycle, close.
func TestStartEndpointClose(t *testing.T) {
	sb := sandbox.New(t, sandbox.Options{RelaxLimits: true, NoProcesses: true})
	asg := autoscaling.NewFromConfig(aws.Config{
		Region: sb.Region(), BaseEndpoint: aws.String(sb.Endpoint()),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", ""),
	})
	ctx := context.Background()
	if _, err := asg.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String("lc"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro"),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("g"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(1), MaxSize: aws.Int32(1), AvailabilityZones: []string{"us-east-1a"},
		LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{{
			LifecycleHookName: aws.String("ready"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"),
			HeartbeatTimeout: aws.Int32(3600), DefaultResult: aws.String("CONTINUE"),
		}},
	}); err != nil {
		t.Fatal(err)
	}
	// The launch waits for its hook; pushing the clock an hour times it out
	// with CONTINUE, and the instance goes in service.
	state := func() string {
		out, err := asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"g"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.AutoScalingGroups[0].Instances) == 0 {
			return ""
		}
		return string(out.AutoScalingGroups[0].Instances[0].LifecycleState)
	}
	waitState := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for state() != want {
			if time.Now().After(deadline) {
				t.Fatalf("state %q, want %q", state(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitState("Pending:Wait")
	sb.AdvanceClock(time.Hour)
	waitState("InService")
	if env := sb.Env(); len(env) == 0 || env[0] != "AWS_ENDPOINT_URL="+sb.Endpoint() {
		t.Errorf("Env() = %v", env)
	}
}

// TestInMemoryUnderSynctest is how a user's test runs AWS's real limits
// in microseconds: an in-memory sandbox inside a synctest bubble, the SDK
// through its HTTPClient. A launch hook with the real one-hour heartbeat
// timeout holds the instance for exactly an hour of the bubble's time.
func TestInMemoryUnderSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sb := sandbox.New(t, sandbox.Options{InMemory: true})
		asg := autoscaling.NewFromConfig(aws.Config{
			Region: sb.Region(), BaseEndpoint: aws.String(sb.Endpoint()), HTTPClient: sb.HTTPClient(),
			Credentials: credentials.NewStaticCredentialsProvider("x", "x", ""),
		})
		ctx := t.Context()
		if _, err := asg.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
			LaunchConfigurationName: aws.String("lc"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro"),
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
			AutoScalingGroupName: aws.String("g"), LaunchConfigurationName: aws.String("lc"),
			MinSize: aws.Int32(1), MaxSize: aws.Int32(1), AvailabilityZones: []string{"us-east-1a"},
			LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{{
				LifecycleHookName: aws.String("ready"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"),
				HeartbeatTimeout: aws.Int32(3600), DefaultResult: aws.String("CONTINUE"),
			}},
		}); err != nil {
			t.Fatal(err)
		}
		instance := func() astypes.Instance {
			t.Helper()
			synctest.Wait()
			out, err := asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"g"}})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(out.AutoScalingGroups[0].Instances); n != 1 {
				t.Fatalf("%d instances, want 1", n)
			}
			return out.AutoScalingGroups[0].Instances[0]
		}
		in := instance()
		if in.LifecycleState != astypes.LifecycleStatePendingWait {
			t.Fatalf("state %s, want Pending:Wait", in.LifecycleState)
		}
		// The instance's own IMDSv2, through the same client.
		ep, err := sb.IMDSEndpoint(aws.ToString(in.InstanceId))
		if err != nil {
			t.Fatal(err)
		}
		md := imds.New(imds.Options{Endpoint: ep, HTTPClient: sb.HTTPClient()})
		out, err := md.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Content.Close()
		buf := make([]byte, 64)
		n, _ := out.Content.Read(buf)
		if got := string(buf[:n]); got != aws.ToString(in.InstanceId) {
			t.Errorf("IMDS instance-id = %q, want %q", got, aws.ToString(in.InstanceId))
		}

		time.Sleep(time.Hour - time.Second)
		if s := instance().LifecycleState; s != astypes.LifecycleStatePendingWait {
			t.Errorf("after 59m59s: %s, want still Pending:Wait", s)
		}
		time.Sleep(2 * time.Second)
		if s := instance().LifecycleState; s != astypes.LifecycleStateInService {
			t.Errorf("after the heartbeat timeout: %s, want InService (DefaultResult CONTINUE)", s)
		}
	})
}
