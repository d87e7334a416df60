package awscloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lifeguardhq/lifeguard/internal/agent"
)

// InboxOptions say which queue the agent reads: exactly one of QueueURL
// (a queue shared by the group) and TopicARN (a queue per instance,
// named QueuePrefix + instance id, subscribed to the topic).
type InboxOptions struct {
	QueueURL          string
	TopicARN          string
	QueuePrefix       string
	WaitTime          time.Duration // whole seconds, 1 s to 20 s
	VisibilityTimeout time.Duration // whole seconds
}

// Inbox implements agent.Inbox over SQS and SNS. Its zero value is not
// usable; call NewInbox.
type Inbox struct {
	sqs  *sqs.Client
	sns  *sns.Client
	opts InboxOptions
}

var (
	_ agent.Inbox = (*Inbox)(nil)
	_ agent.Queue = (*Queue)(nil)
)

// NewInbox returns the agent's queue opener using the SDK configuration
// cfg.
func NewInbox(cfg aws.Config, opts InboxOptions) *Inbox {
	return &Inbox{sqs: sqs.NewFromConfig(cfg), sns: sns.NewFromConfig(cfg), opts: opts}
}

// Inbox returns the agent's queue opener.
func (s Session) Inbox(opts InboxOptions) *Inbox { return NewInbox(s.cfg, opts) }

// Open returns the queue the agent of instanceID reads. With a topic it
// creates the per-instance queue (CreateQueue with no attributes is
// idempotent; the queue is never deleted and created again, which SQS
// refuses for 60 s with QueueDeletedRecently), sets its Policy to let the
// topic send to it, and subscribes it with a MessageBody filter policy on
// EC2InstanceId (raw delivery off: messages come in the SNS envelope);
// each call is idempotent. With a shared queue it returns an error
// wrapping agent.ErrSharedRedrive when the queue has a RedrivePolicy.
func (in *Inbox) Open(ctx context.Context, instanceID string) (agent.Queue, error) {
	if in.opts.QueueURL != "" {
		out, err := in.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl:       aws.String(in.opts.QueueURL),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameRedrivePolicy},
		})
		if err != nil {
			return nil, fmt.Errorf("get attributes of queue %s: %w", in.opts.QueueURL, err)
		}
		if rp := out.Attributes[string(sqstypes.QueueAttributeNameRedrivePolicy)]; rp != "" {
			return nil, fmt.Errorf("queue %s has RedrivePolicy %s: %w", in.opts.QueueURL, rp, agent.ErrSharedRedrive)
		}
		return &Queue{in: in, url: in.opts.QueueURL}, nil
	}
	name := in.opts.QueuePrefix + instanceID
	cq, err := in.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("create queue %s: %w", name, err)
	}
	url := aws.ToString(cq.QueueUrl)
	attrs, err := in.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return nil, fmt.Errorf("get attributes of queue %s: %w", url, err)
	}
	arn := attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if _, err := in.sqs.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   aws.String(url),
		Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): queuePolicy(arn, in.opts.TopicARN)},
	}); err != nil {
		return nil, fmt.Errorf("set policy of queue %s: %w", url, err)
	}
	filter, err := json.Marshal(map[string][]string{"EC2InstanceId": {instanceID}})
	if err != nil {
		return nil, fmt.Errorf("filter policy: %w", err)
	}
	sub, err := in.sns.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: aws.String(in.opts.TopicARN), Protocol: aws.String("sqs"), Endpoint: aws.String(arn),
		Attributes: map[string]string{
			"FilterPolicyScope":  "MessageBody",
			"FilterPolicy":       string(filter),
			"RawMessageDelivery": "false",
		},
		ReturnSubscriptionArn: true,
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe queue %s to %s: %w", arn, in.opts.TopicARN, err)
	}
	return &Queue{in: in, url: url, subscription: aws.ToString(sub.SubscriptionArn)}, nil
}

// queuePolicy lets the topic (and only it) send to the queue.
func queuePolicy(queueARN, topicARN string) string {
	p := map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Sid":       "lifeguard-topic",
			"Effect":    "Allow",
			"Principal": map[string]string{"Service": "sns.amazonaws.com"},
			"Action":    "sqs:SendMessage",
			"Resource":  queueARN,
			"Condition": map[string]any{"ArnEquals": map[string]string{"aws:SourceArn": topicARN}},
		}},
	}
	b, _ := json.Marshal(p) // maps of strings always marshal
	return string(b)
}

// Queue is an opened queue: shared, or this instance's own with its
// subscription.
type Queue struct {
	in           *Inbox
	url          string
	subscription string // "" for a shared queue
}

// Receive long-polls the queue for up to ten messages, waiting wait (0:
// the configured wait time).
func (q *Queue) Receive(ctx context.Context, wait time.Duration) ([]agent.Message, error) {
	if wait <= 0 {
		wait = q.in.opts.WaitTime
	}
	out, err := q.in.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(q.url),
		MaxNumberOfMessages: agent.SQSBatchLimit,
		WaitTimeSeconds:     int32(wait / time.Second),
		VisibilityTimeout:   q.visibility(),
	})
	if err != nil {
		return nil, fmt.Errorf("receive messages from %s: %w", q.url, err)
	}
	msgs := make([]agent.Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		msgs = append(msgs, agent.Message{ID: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), Receipt: aws.ToString(m.ReceiptHandle)})
	}
	return msgs, nil
}

func (q *Queue) visibility() int32 { return int32(q.in.opts.VisibilityTimeout / time.Second) }

// Delete deletes a received message.
func (q *Queue) Delete(ctx context.Context, m agent.Message) error {
	if _, err := q.in.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(m.Receipt)}); err != nil {
		return fmt.Errorf("delete message %s from %s: %w", m.ID, q.url, err)
	}
	return nil
}

// Release makes received messages visible again at once, with
// ChangeMessageVisibilityBatch, ten at a time. Entries that fail are
// reported together.
func (q *Queue) Release(ctx context.Context, ms []agent.Message) error {
	var errs []error
	for batch := range slices.Chunk(ms, agent.SQSBatchLimit) {
		entries := make([]sqstypes.ChangeMessageVisibilityBatchRequestEntry, len(batch))
		for i, m := range batch {
			entries[i] = sqstypes.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.Receipt), VisibilityTimeout: 0,
			}
		}
		out, err := q.in.sqs.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
		if err != nil {
			errs = append(errs, fmt.Errorf("release %d messages on %s: %w", len(batch), q.url, err))
			continue
		}
		for _, f := range out.Failed {
			i, _ := strconv.Atoi(aws.ToString(f.Id))
			id := ""
			if i >= 0 && i < len(batch) {
				id = batch[i].ID
			}
			errs = append(errs, fmt.Errorf("release message %s on %s: %s: %s", id, q.url, aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}

// Keep hides a held message for another visibility timeout.
func (q *Queue) Keep(ctx context.Context, m agent.Message) error {
	if _, err := q.in.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(m.Receipt), VisibilityTimeout: q.visibility(),
	}); err != nil {
		var notInflight *sqstypes.MessageNotInflight
		var invalid *sqstypes.ReceiptHandleIsInvalid
		if errors.As(err, &notInflight) || errors.As(err, &invalid) {
			err = fmt.Errorf("%w: %w", agent.ErrStaleReceipt, err)
		}
		return fmt.Errorf("keep message %s hidden on %s: %w", m.ID, q.url, err)
	}
	return nil
}

// Remove unsubscribes this instance's queue and deletes it; a queue
// already gone is not an error. It does nothing for a shared queue.
func (q *Queue) Remove(ctx context.Context) error {
	if q.subscription == "" {
		return nil
	}
	var errs []error
	if _, err := q.in.sns.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(q.subscription)}); err != nil {
		errs = append(errs, fmt.Errorf("unsubscribe %s: %w", q.subscription, err))
	}
	if _, err := q.in.sqs.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(q.url)}); err != nil {
		var gone *sqstypes.QueueDoesNotExist
		if !errors.As(err, &gone) {
			errs = append(errs, fmt.Errorf("delete queue %s: %w", q.url, err))
		}
	}
	return errors.Join(errs...)
}
