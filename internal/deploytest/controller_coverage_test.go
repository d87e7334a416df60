package deploytest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/controller"
	"github.com/lifeguardhq/lifeguard/internal/iampolicy"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// TestControllerCallsAreExactlyItsPolicy runs the kits' controller
// (--lease-table, wired as `lifeguard controller` wires it) against the
// in-memory sandbox: it tags a leader, takes the tag off a second leader,
// then reaps the terminate action of an instance whose agent never announced
// itself. Every recorded call must be allowed by `lifeguard iam-policy
// --controller --lease-table TABLE`, and the policy must grant nothing the
// run did not need.
func TestControllerCallsAreExactlyItsPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		env := newControllerEnv(t)
		const table = "lifeguard-leases"
		if err := awscloud.NewLeaseTable(env.setup, table).Create(ctx); err != nil {
			t.Fatal(err)
		}
		ctlCfg := env.ctlCfg
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
		env.tagAllLeaders(t)
		if err := ctl.Reconcile(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		// One instance leaves; no agent announces itself, so after the
		// grace the controller completes its terminate action.
		if _, err := env.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{
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
		checkExactly(t, env.rec.recorded(), policy)
	})
}

// controllerEnv is an in-memory sandbox with an opted-in group "web" of two
// instances in service (a terminate hook, no agents), the setup's SDK
// configuration, and the controller's, whose calls rec records.
type controllerEnv struct {
	setup, ctlCfg aws.Config
	asg           *autoscaling.Client
	inService     map[string]bool
	rec           *recorder
}

func newControllerEnv(t *testing.T) controllerEnv {
	t.Helper()
	ctx := t.Context()
	srv, setup, rec, ctlCfg := recordedSandbox(t)
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
	return controllerEnv{setup: setup, ctlCfg: ctlCfg, asg: asg, inService: inService, rec: rec}
}

// tagAllLeaders writes the leader tag on every instance of env's group.
func (env controllerEnv) tagAllLeaders(t *testing.T) {
	t.Helper()
	var ids []string
	for id := range env.inService {
		ids = append(ids, id)
	}
	if _, err := ec2.NewFromConfig(env.setup).CreateTags(t.Context(), &ec2.CreateTagsInput{
		Resources: ids, Tags: []ec2types.Tag{{Key: aws.String(controller.DefaultLeaderKey), Value: aws.String("true")}},
	}); err != nil {
		t.Fatal(err)
	}
}

// TestControllerDaemonCallsAreExactlyItsPolicy runs the controller as a
// daemon with --queue-url and --reap-queues: it reads and deletes a
// notification, keeps the leader tag, and deletes the queue and
// subscription an agent left behind on an instance EC2 does not know.
// Its calls must be exactly `lifeguard iam-policy --controller --queue-url
// URL --reap-queues`.
func TestControllerDaemonCallsAreExactlyItsPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		env := newControllerEnv(t)
		sqsc := sqs.NewFromConfig(env.setup)
		feed, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("lifeguard-controller")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sqsc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: feed.QueueUrl, MessageBody: aws.String(`{"Event":"autoscaling:TEST_NOTIFICATION","AutoScalingGroupName":"web"}`)}); err != nil {
			t.Fatal(err)
		}
		// The queue of an agent whose instance is gone, still subscribed.
		orphan, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(controller.DefaultQueuePrefix + "i-0123456789abcdef0")})
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: orphan.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		snsc := sns.NewFromConfig(env.setup)
		topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("web-lifecycle")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(attrs.Attributes["QueueArn"])}); err != nil {
			t.Fatal(err)
		}

		cloud := awscloud.NewControllerCloud(env.ctlCfg)
		ctl, err := controller.New(controller.Config{}, controller.Deps{
			Fleet: cloud, Tags: cloud, Completer: cloud, Queues: awscloud.NewControllerQueues(env.ctlCfg),
		}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stopRun := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- ctl.Run(runCtx, awscloud.NewControllerQueue(env.ctlCfg, aws.ToString(feed.QueueUrl), 5*time.Minute), controller.DaemonConfig{})
		}()
		time.Sleep(2 * controller.DefaultInterval)
		env.tagAllLeaders(t)
		time.Sleep(2*controller.DefaultReapGrace + 2*controller.DefaultInterval)
		stopRun()
		if err := <-done; err != nil {
			t.Fatalf("controller Run = %v", err)
		}
		if st := ctl.Stats(); st.QueuesDeleted != 1 || st.SubscriptionsDeleted != 1 || st.TagWrites < 2 {
			t.Fatalf("controller stats %+v: want the leader tagged and untagged, one queue and one subscription deleted", st)
		}
		policy, err := iampolicy.ForController(iampolicy.Controller{
			QueueURL: aws.ToString(feed.QueueUrl), ReapQueues: true, QueuePrefix: controller.DefaultQueuePrefix,
			OptInKey: controller.DefaultOptInKey, OptInValue: controller.DefaultOptInValue, LeaderKey: controller.DefaultLeaderKey,
		}, iampolicy.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		checkExactly(t, env.rec.recorded(), policy)
	})
}
