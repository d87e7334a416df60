package awscloud_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/awscloud"
)

func TestInboxAdapter(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	topics, queues := sns.NewFromConfig(e.cfg), sqs.NewFromConfig(e.cfg)
	topic, err := topics.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("lifecycle")})
	if err != nil {
		t.Fatal(err)
	}
	in := awscloud.NewInbox(e.cfg, awscloud.InboxOptions{TopicARN: aws.ToString(topic.TopicArn), QueuePrefix: "lifeguard-", WaitTime: time.Second, VisibilityTimeout: 30 * time.Second})

	t.Run("per-instance setup is idempotent", func(t *testing.T) {
		if _, err := in.Open(ctx, "i-0123456789abcdef0"); err != nil {
			t.Fatal(err)
		}
		q, err := in.Open(ctx, "i-0123456789abcdef0")
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		subs, err := topics.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: topic.TopicArn})
		if err != nil || len(subs.Subscriptions) != 1 {
			t.Fatalf("subscriptions %+v %v, want one", subs, err)
		}
		// Only this instance's messages reach its queue.
		for _, id := range []string{"i-0fffffffffffffff0", "i-0123456789abcdef0"} {
			if _, err := topics.Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(`{"EC2InstanceId":"` + id + `","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","AutoScalingGroupName":"g","LifecycleHookName":"drain","LifecycleActionToken":"t"}`)}); err != nil {
				t.Fatal(err)
			}
		}
		msgs, err := q.Receive(ctx, 0)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("Receive = %+v %v, want one message", msgs, err)
		}
		n, err := agent.ParseMessage(msgs[0].Body)
		if err != nil || n.InstanceID != "i-0123456789abcdef0" || n.Token != "t" {
			t.Errorf("ParseMessage = %+v %v", n, err)
		}
		if err := q.Release(ctx, msgs[:1]); err != nil {
			t.Errorf("Release: %v", err)
		}
		if msgs, err = q.Receive(ctx, 0); err != nil || len(msgs) != 1 {
			t.Fatalf("Receive after release = %+v %v, want the message again", msgs, err)
		}
		if err := q.Delete(ctx, msgs[0]); err != nil {
			t.Errorf("Delete: %v", err)
		}
		if err := q.Remove(ctx); err != nil {
			t.Fatalf("Remove: %v", err)
		}
		out, err := queues.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String("lifeguard-")})
		if err != nil || len(out.QueueUrls) != 0 {
			t.Errorf("queues %v %v, want none after Remove", out.QueueUrls, err)
		}
	})

	t.Run("shared queue hands back in batches and keeps held messages hidden", func(t *testing.T) {
		url, err := queues.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("plain")})
		if err != nil {
			t.Fatal(err)
		}
		s := awscloud.NewInbox(e.cfg, awscloud.InboxOptions{QueueURL: aws.ToString(url.QueueUrl), WaitTime: time.Second, VisibilityTimeout: 30 * time.Second})
		q, err := s.Open(ctx, "i-0123456789abcdef0")
		if err != nil {
			t.Fatal(err)
		}
		const n = 13
		for i := range n {
			if _, err := queues.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url.QueueUrl, MessageBody: aws.String(fmt.Sprint(i))}); err != nil {
				t.Fatal(err)
			}
		}
		var all []agent.Message
		for len(all) < n {
			msgs, err := q.Receive(ctx, time.Second)
			if err != nil || len(msgs) == 0 {
				t.Fatalf("Receive = %d messages, %v after %d; want all %d", len(msgs), err, len(all), n)
			}
			all = append(all, msgs...)
		}
		// One is kept hidden; the rest, more than one batch, handed back.
		if err := q.Keep(ctx, all[0]); err != nil {
			t.Errorf("Keep: %v", err)
		}
		if err := q.Release(ctx, all[1:]); err != nil {
			t.Errorf("Release of %d: %v", n-1, err)
		}
		attrs, err := queues.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: url.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		if v, h := attrs.Attributes["ApproximateNumberOfMessages"], attrs.Attributes["ApproximateNumberOfMessagesNotVisible"]; v != fmt.Sprint(n-1) || h != "1" {
			t.Errorf("%s visible and %s hidden, want %d and 1", v, h, n-1)
		}
		bad := agent.Message{ID: "x", Receipt: "not-a-receipt"}
		if err := q.Keep(ctx, bad); err == nil {
			t.Error("Keep of a bad receipt handle: no error")
		}
		if err := q.Release(ctx, []agent.Message{all[0], bad}); err == nil || !strings.Contains(err.Error(), "ReceiptHandleIsInvalid") {
			t.Errorf("Release with one bad receipt = %v, want the failed entry's ReceiptHandleIsInvalid", err)
		}
	})

	t.Run("shared queue with a redrive policy is refused", func(t *testing.T) {
		if _, err := queues.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("dlq")}); err != nil {
			t.Fatal(err)
		}
		shared, err := queues.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("shared"), Attributes: map[string]string{
			"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":"5"}`,
		}})
		if err != nil {
			t.Fatal(err)
		}
		s := awscloud.NewInbox(e.cfg, awscloud.InboxOptions{QueueURL: aws.ToString(shared.QueueUrl), WaitTime: time.Second, VisibilityTimeout: 30 * time.Second})
		if _, err := s.Open(ctx, "i-0123456789abcdef0"); !errors.Is(err, agent.ErrSharedRedrive) {
			t.Errorf("Open = %v, want ErrSharedRedrive", err)
		}
	})
}

// TestReceiveReportsTheLongPollSent: a Receive's context carries its HTTP
// trace to the request, so the agent hears (Deps.Waiting) that the long
// poll was sent while it still waits for the answer.
func TestReceiveReportsTheLongPollSent(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	url, err := sqs.NewFromConfig(e.cfg).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("quiet")})
	if err != nil {
		t.Fatal(err)
	}
	q, err := awscloud.NewInbox(e.cfg, awscloud.InboxOptions{QueueURL: aws.ToString(url.QueueUrl), WaitTime: time.Second, VisibilityTimeout: 30 * time.Second}).Open(ctx, "i-0123456789abcdef0")
	if err != nil {
		t.Fatal(err)
	}
	var returned atomic.Bool
	sent := make(chan bool, 1) // whether Receive had returned when the request was written
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
		select {
		case sent <- returned.Load():
		default:
		}
	}})
	msgs, err := q.Receive(tctx, 0)
	returned.Store(true)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("Receive on an empty queue = %+v %v, want none after the wait", msgs, err)
	}
	select {
	case early := <-sent:
		if early {
			t.Error("the request was reported written after Receive returned, want while its long poll waited")
		}
	default:
		t.Fatal("Receive's HTTP trace never reported the request written")
	}
}
