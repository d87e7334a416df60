package awscloud_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	srv      *sandbox.Server
	cfg      aws.Config
	asg      *autoscaling.Client
	instance string
}

// setup starts a sandbox with a one-instance group whose launch waits on a
// hook, and returns SDK configuration pointing at it.
func setup(t *testing.T) env {
	t.Helper()
	srv, err := sandbox.New(sandbox.Config{Listen: "127.0.0.1:0", NoProcesses: true})
	if err != nil {
		t.Fatal(err)
	}
	endpoint, stop, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop(); http.DefaultClient.CloseIdleConnections() })
	ctx := context.Background()
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")}
	asg := autoscaling.NewFromConfig(cfg)
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
			HeartbeatTimeout: aws.Int32(120), DefaultResult: aws.String("ABANDON"), NotificationMetadata: aws.String("blue"),
		}, {
			LifecycleHookName: aws.String("drain"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"),
			HeartbeatTimeout: aws.Int32(120),
		}},
	}); err != nil {
		t.Fatal(err)
	}
	var seq int64
	for {
		evs, err := srv.World().EventsAfter(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			seq = e.Seq
			if e.Kind == world.EvInstanceState && e.State == world.StatePendingWait {
				return env{srv: srv, cfg: cfg, asg: asg, instance: e.Instance}
			}
		}
	}
}

func TestAutoScalingAdapter(t *testing.T) {
	e := setup(t)
	a := awscloud.NewAutoScaling(e.cfg)
	ctx := context.Background()

	group, state, err := a.InstanceMembership(ctx, e.instance)
	if err != nil || group != "g" || state != "Pending:Wait" {
		t.Fatalf("InstanceMembership = %q %q %v", group, state, err)
	}
	if _, _, err := a.InstanceMembership(ctx, "i-00000000000000000"); !errors.Is(err, agent.ErrNotInGroup) {
		t.Errorf("unknown instance: %v, want ErrNotInGroup", err)
	}
	hooks, err := a.LifecycleHooks(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	want := lifecycle.Hook{Name: "ready", Transition: lifecycle.TransitionLaunching, HeartbeatTimeout: 2 * time.Minute, DefaultResult: lifecycle.Abandon, NotificationMetadata: "blue"}
	if len(hooks) != 2 || hooks[0] != want || hooks[1].Transition != lifecycle.TransitionTerminating {
		t.Fatalf("hooks %+v, want %+v", hooks, want)
	}
	act := lifecycle.Action{InstanceID: e.instance, Group: "g", Hook: hooks[0]}
	if err := a.Heartbeat(ctx, act); err != nil {
		t.Fatalf("heartbeat by instance id: %v", err)
	}
	if err := a.Complete(ctx, act, lifecycle.Continue); err != nil {
		t.Fatalf("complete: %v", err)
	}
	for name, call := range map[string]func() error{
		"complete again":  func() error { return a.Complete(ctx, act, lifecycle.Continue) },
		"heartbeat after": func() error { return a.Heartbeat(ctx, act) },
		"heartbeat by bad token": func() error {
			bad := act
			bad.Token = "00000000-0000-4000-8000-000000000000"
			return a.Heartbeat(ctx, bad)
		},
	} {
		if err := call(); !errors.Is(err, lifecycle.ErrNoActiveAction) {
			t.Errorf("%s: %v, want ErrNoActiveAction", name, err)
		}
	}
	if err := a.Complete(ctx, lifecycle.Action{InstanceID: e.instance, Group: "nope", Hook: hooks[0]}, lifecycle.Continue); err == nil || errors.Is(err, lifecycle.ErrNoActiveAction) {
		t.Errorf("unknown group: %v, want an AWS error that is not ErrNoActiveAction", err)
	}
}

func TestMetadataAdapter(t *testing.T) {
	e := setup(t)
	var imdsURL string
	for _, in := range e.srv.Instances() {
		if in.ID == e.instance {
			imdsURL = in.IMDS
		}
	}
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imdsURL)
	m := awscloud.NewMetadata(metadataConfig(t))
	ctx := context.Background()
	if id, err := m.InstanceID(ctx); err != nil || id != e.instance {
		t.Errorf("InstanceID = %q %v", id, err)
	}
	if r, err := m.Region(ctx); err != nil || r != "us-east-1" {
		t.Errorf("Region = %q %v", r, err)
	}
	if s, err := m.TargetLifecycleState(ctx); err != nil || s != "InService" {
		t.Errorf("TargetLifecycleState = %q %v, want InService while in Pending:Wait", s, err)
	}
	if n, err := m.SpotInterruption(ctx); err != nil || n != nil {
		t.Errorf("SpotInterruption = %+v %v, want none", n, err)
	}
	if err := e.srv.InjectSpot(e.instance, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	n, err := m.SpotInterruption(ctx)
	if err != nil || n == nil || n.Action != "terminate" || n.Time.Before(time.Now().Add(time.Minute)) {
		t.Errorf("SpotInterruption = %+v %v, want terminate about 2 minutes ahead", n, err)
	}
	if s, err := m.TargetLifecycleState(ctx); err != nil || s != "Terminated" {
		t.Errorf("after the spot notice TargetLifecycleState = %q %v, want Terminated", s, err)
	}
}
