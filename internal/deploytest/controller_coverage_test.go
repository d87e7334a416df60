package deploytest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/controller"
	"github.com/lifeguardhq/lifeguard/internal/iampolicy"
	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// TestControllerCallsAreExactlyItsPolicy runs the kits' controller
// (--lease-table, wired as `lifeguard controller` wires it) against the
// in-memory sandbox: it tags a leader, takes the tag off a second leader,
// then
// reaps the terminate action of an instance whose agent never announced
// itself. Every recorded call must be allowed by `lifeguard iam-policy
// --controller --lease-table TABLE`, and the policy must grant nothing the
// run did not need.
func TestControllerCallsAreExactlyItsPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		srv, err := sandbox.New(sandbox.Config{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		endpoint, stop, err := srv.Start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := stop(); err != nil {
				t.Errorf("sandbox: %v", err)
			}
		})
		setup := aws.Config{
			Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
			Credentials: credentials.NewStaticCredentialsProvider("sandbox", "sandbox", ""),
			HTTPClient:  &http.Client{Transport: srv.Transport()},
		}
		rec := &recorder{next: srv.Transport(), actions: map[string]int{}}
		ctlCfg := setup.Copy()
		ctlCfg.HTTPClient = &http.Client{Transport: rec}

		const table = "lifeguard-leases"
		if err := awscloud.NewLeaseTable(setup, table).Create(ctx); err != nil {
			t.Fatal(err)
		}
		asg := autoscaling.NewFromConfig(setup)
		if _, err := asg.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
			LaunchConfigurationName: aws.String("lc"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro"),
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
			AutoScalingGroupName: aws.String("web"), LaunchConfigurationName: aws.String("lc"),
			MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(2), AvailabilityZones: []string{"us-east-1a"},
			Tags: []astypes.Tag{{Key: aws.String("lifeguard:controller"), Value: aws.String("enabled"), PropagateAtLaunch: aws.Bool(true),
				ResourceId: aws.String("web"), ResourceType: aws.String("auto-scaling-group")}},
			LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{{
				LifecycleHookName: aws.String("lifeguard-terminate"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"),
				HeartbeatTimeout: aws.Int32(3600), DefaultResult: aws.String("ABANDON"),
			}},
		}); err != nil {
			t.Fatal(err)
		}
		w := srv.World()
		var seq int64
		inService := map[string]bool{}
		wctx, cancel := context.WithTimeout(ctx, 24*time.Hour)
		defer cancel()
		for len(inService) < 2 {
			evs, err := w.EventsAfter(wctx, seq)
			if err != nil {
				t.Fatalf("two instances not in service within a simulated day: %v", err)
			}
			for _, ev := range evs {
				seq = ev.Seq
				if ev.Kind == world.EvInstanceState && ev.State == world.StateInService {
					inService[ev.Instance] = true
				}
			}
		}
		cloud := awscloud.NewControllerCloud(ctlCfg)
		ctl, err := controller.New(controller.Config{}, controller.Deps{
			Fleet: cloud, Tags: cloud, Completer: cloud, Presence: awscloud.NewLeaseTable(ctlCfg, table),
		}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		// No leader: the controller tags one.
		if err := ctl.Reconcile(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		// Two leaders: the controller untags one.
		var ids []string
		for id := range inService {
			ids = append(ids, id)
		}
		if _, err := ec2.NewFromConfig(setup).CreateTags(ctx, &ec2.CreateTagsInput{
			Resources: ids, Tags: []ec2types.Tag{{Key: aws.String(controller.DefaultLeaderKey), Value: aws.String("true")}},
		}); err != nil {
			t.Fatal(err)
		}
		if err := ctl.Reconcile(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		// One instance leaves; no agent announces itself, so after the
		// grace the controller completes its terminate action.
		if _, err := asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{
			AutoScalingGroupName: aws.String("web"), DesiredCapacity: aws.Int32(1),
		}); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := ctl.Reconcile(ctx, "web"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(controller.DefaultReapGrace)
		}
		if st := ctl.Stats(); st.Reaped == 0 || st.TagWrites == 0 {
			t.Fatalf("controller stats %+v: want a tag write and a reaped action", st)
		}

		policy, err := iampolicy.ForController(iampolicy.Controller{
			LeaseTable: table, OptInKey: controller.DefaultOptInKey, OptInValue: controller.DefaultOptInValue, LeaderKey: controller.DefaultLeaderKey,
		}, iampolicy.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		checkExactly(t, rec.recorded(), policy)
	})
}
