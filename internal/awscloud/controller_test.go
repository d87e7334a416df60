package awscloud_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/controller"
)

func TestControllerCloud(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	c := awscloud.NewControllerCloud(e.cfg)

	gs, err := c.Groups(ctx, nil, controller.DefaultOptInKey, controller.DefaultOptInValue)
	if err != nil || len(gs) != 0 {
		t.Fatalf("opted-in groups before the tag = %+v, %v; want none", gs, err)
	}
	if _, err := e.asg.CreateOrUpdateTags(ctx, &autoscaling.CreateOrUpdateTagsInput{Tags: []astypes.Tag{{
		ResourceId: aws.String("g"), ResourceType: aws.String("auto-scaling-group"),
		Key: aws.String(controller.DefaultOptInKey), Value: aws.String(controller.DefaultOptInValue),
	}}}); err != nil {
		t.Fatal(err)
	}
	gs, err = c.Groups(ctx, nil, controller.DefaultOptInKey, controller.DefaultOptInValue)
	if err != nil || len(gs) != 1 || gs[0].Name != "g" || len(gs[0].Members) != 1 {
		t.Fatalf("opted-in groups = %+v, %v; want g with one member", gs, err)
	}
	if m := gs[0].Members[0]; m.ID != e.instance || m.LifecycleState != "Pending:Wait" || m.Health != "Healthy" {
		t.Errorf("member = %+v", m)
	}
	insts, err := c.Instances(ctx, "g")
	if err != nil || len(insts) != 1 || insts[0].ID != e.instance || !insts[0].Running || insts[0].Launched.IsZero() {
		t.Fatalf("instances = %+v, %v", insts, err)
	}
	if err := c.SetTag(ctx, "i-00000000000000000", "app:isLeader", "true"); !errors.Is(err, controller.ErrInstanceNotFound) {
		t.Errorf("tagging an unknown instance: %v, want ErrInstanceNotFound", err)
	}

	// The controller over the adapter tags the launching instance.
	ctl, err := controller.New(controller.Config{}, controller.Deps{Fleet: c, Tags: c, Completer: c}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.Reconcile(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	insts, err = c.Instances(ctx, "g")
	if err != nil || insts[0].Tags["app:isLeader"] != "true" {
		t.Fatalf("after reconcile: %+v, %v; want app:isLeader=true", insts, err)
	}

	// The reaper's completion: by instance id, on the launch hook.
	if err := c.CompleteWaiting(ctx, "g", e.instance, "Pending:Wait", "CONTINUE"); err != nil {
		t.Fatal(err)
	}
	if err := c.CompleteWaiting(ctx, "g", e.instance, "Pending:Wait", "CONTINUE"); err != nil {
		t.Errorf("completing an action already gone: %v, want nil", err)
	}
	if _, state, err := awscloud.NewAutoScaling(e.cfg).InstanceMembership(ctx, e.instance); err != nil || state == "Pending:Wait" {
		t.Errorf("state after CompleteWaiting = %q, %v; want past Pending:Wait", state, err)
	}
}

// TestInstanceTagWithoutMetadataTags: an instance launched without
// InstanceMetadataTags has no tags category, which InstanceTag reports as
// agent.ErrNoMetadataTags (the enabled case runs end to end in systest).
func TestInstanceTagWithoutMetadataTags(t *testing.T) {
	e := setup(t)
	var imdsURL string
	for _, in := range e.srv.Instances() {
		if in.ID == e.instance {
			imdsURL = in.IMDS
		}
	}
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imdsURL)
	m := awscloud.NewMetadata(metadataConfig(t))
	if v, found, err := m.InstanceTag(context.Background(), "app:isLeader"); !errors.Is(err, agent.ErrNoMetadataTags) || found || v != "" {
		t.Errorf("InstanceTag = %q %v %v; want ErrNoMetadataTags", v, found, err)
	}
}

// TestDescribeInstanceTag: tag mode's fallback reads the instance's own tag
// through DescribeTags.
func TestDescribeInstanceTag(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	tags := awscloud.NewInstanceTags(e.cfg)
	if v, found, err := tags.DescribeInstanceTag(ctx, e.instance, "app:isLeader"); err != nil || found || v != "" {
		t.Fatalf("untagged: %q %v %v; want not found", v, found, err)
	}
	if err := tags.SetTag(ctx, e.instance, "app:isLeader", "true"); err != nil {
		t.Fatal(err)
	}
	if err := tags.SetTag(ctx, e.instance, "other", "x"); err != nil {
		t.Fatal(err)
	}
	if v, found, err := tags.DescribeInstanceTag(ctx, e.instance, "app:isLeader"); err != nil || !found || v != "true" {
		t.Errorf("tagged: %q %v %v; want true", v, found, err)
	}
	if v, found, err := tags.DescribeInstanceTag(ctx, "i-00000000000000000", "app:isLeader"); err != nil || found {
		t.Errorf("another instance: %q %v %v; want not found", v, found, err)
	}
}

// TestControllerQueues: the sweep's adapter lists the per-instance queues
// with their ARN, tells EC2's states, and deletes a queue with its
// subscriptions, leaving others alone.
func TestControllerQueues(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	sq := sqs.NewFromConfig(e.cfg)
	sn := sns.NewFromConfig(e.cfg)
	topic, err := sn.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("hooks")})
	if err != nil {
		t.Fatal(err)
	}
	arns := map[string]string{}
	for _, name := range []string{"lifeguard-" + e.instance, "lifeguard-i-0123456789abcdef0", "lifeguard-controller"} {
		q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		a, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
		if err != nil {
			t.Fatal(err)
		}
		arns[name] = a.Attributes["QueueArn"]
		if _, err := sn.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(arns[name])}); err != nil {
			t.Fatal(err)
		}
	}
	c := awscloud.NewControllerQueues(e.cfg)
	qs, err := c.InstanceQueues(ctx, controller.DefaultQueuePrefix)
	if err != nil || len(qs) != 2 {
		t.Fatalf("InstanceQueues = %+v, %v; want the two instances' queues", qs, err)
	}
	var gone controller.InstanceQueue
	for _, q := range qs {
		if q.ARN != arns["lifeguard-"+q.Instance] {
			t.Errorf("queue %+v: ARN want %s", q, arns["lifeguard-"+q.Instance])
		}
		if q.Instance == "i-0123456789abcdef0" {
			gone = q
		}
	}
	states, err := c.InstanceStates(ctx, []string{e.instance, "i-0123456789abcdef0"})
	if err != nil || len(states) != 1 || states[e.instance] == "" {
		t.Fatalf("InstanceStates = %v, %v; want only %s's", states, err, e.instance)
	}
	n, err := c.DeleteInstanceQueue(ctx, gone)
	if err != nil || n != 1 {
		t.Fatalf("DeleteInstanceQueue = %d, %v; want one subscription deleted", n, err)
	}
	if n, err := c.DeleteInstanceQueue(ctx, gone); err != nil || n != 0 {
		t.Errorf("deleting again = %d, %v; want nothing and no error", n, err)
	}
	qs, err = c.InstanceQueues(ctx, controller.DefaultQueuePrefix)
	if err != nil || len(qs) != 1 || qs[0].Instance != e.instance {
		t.Errorf("after the delete: %+v, %v; want only %s's queue", qs, err, e.instance)
	}
	subs, err := sn.ListSubscriptions(ctx, &sns.ListSubscriptionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(subs.Subscriptions) != 2 {
		t.Errorf("subscriptions left = %d, want 2 (the live instance's and the controller's)", len(subs.Subscriptions))
	}
	for _, s := range subs.Subscriptions {
		if aws.ToString(s.Endpoint) == gone.ARN {
			t.Errorf("the gone instance's subscription is left")
		}
	}
}
