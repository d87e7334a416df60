package awscloud

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/lifeguardhq/lifeguard/internal/controller"
)

// ControllerQueues is the controller's sweep of the agents' per-instance
// queues: SQS ListQueues, GetQueueAttributes and DeleteQueue, SNS
// ListSubscriptions and Unsubscribe, EC2 DescribeInstances. Its zero value
// is not usable; call NewControllerQueues.
type ControllerQueues struct {
	sqs *sqs.Client
	sns *sns.Client
	ec2 *ec2.Client
}

var _ controller.Queues = (*ControllerQueues)(nil)

// NewControllerQueues returns the adapter using the SDK configuration cfg.
func NewControllerQueues(cfg aws.Config) *ControllerQueues {
	return &ControllerQueues{sqs: sqs.NewFromConfig(cfg), sns: sns.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg)}
}

// ControllerQueues returns the queue sweep's adapter.
func (s Session) ControllerQueues() *ControllerQueues { return NewControllerQueues(s.cfg) }

// InstanceQueues lists the queues named prefix and an instance id
// (ListQueues by prefix) and reads each one's ARN; a queue deleted
// meanwhile is left out.
func (c *ControllerQueues) InstanceQueues(ctx context.Context, prefix string) ([]controller.InstanceQueue, error) {
	var out []controller.InstanceQueue
	p := sqs.NewListQueuesPaginator(c.sqs, &sqs.ListQueuesInput{QueueNamePrefix: aws.String(prefix), MaxResults: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list queues named %s*: %w", prefix, err)
		}
		for _, url := range page.QueueUrls {
			id, ok := controller.QueueInstance(prefix, path.Base(url))
			if !ok {
				continue
			}
			attrs, err := c.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
				QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
			})
			if queueGone(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read the ARN of %s: %w", url, err)
			}
			out = append(out, controller.InstanceQueue{URL: url, ARN: attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], Instance: id})
		}
	}
	return out, nil
}

// describeInstanceIDsMax is how many values one DescribeInstances filter
// takes.
const describeInstanceIDsMax = 200

// InstanceStates returns the EC2 state of each of ids EC2 describes
// (DescribeInstances filtered by instance-id, so that unknown ids are
// simply absent instead of failing the call).
func (c *ControllerQueues) InstanceStates(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for len(ids) > 0 {
		batch := ids[:min(len(ids), describeInstanceIDsMax)]
		ids = ids[len(batch):]
		p := ec2.NewDescribeInstancesPaginator(c.ec2, &ec2.DescribeInstancesInput{
			Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: batch}},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describe instances %v: %w", batch, err)
			}
			for _, r := range page.Reservations {
				for _, i := range r.Instances {
					if i.State != nil {
						out[aws.ToString(i.InstanceId)] = string(i.State.Name)
					}
				}
			}
		}
	}
	return out, nil
}

// DeleteInstanceQueue unsubscribes every SNS subscription whose endpoint is
// the queue's ARN (ListSubscriptions), then deletes the queue. Whatever is
// already gone is not an error.
func (c *ControllerQueues) DeleteInstanceQueue(ctx context.Context, q controller.InstanceQueue) (int, error) {
	n := 0
	if q.ARN != "" {
		p := sns.NewListSubscriptionsPaginator(c.sns, &sns.ListSubscriptionsInput{})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return n, fmt.Errorf("list subscriptions: %w", err)
			}
			for _, s := range page.Subscriptions {
				if aws.ToString(s.Endpoint) != q.ARN || aws.ToString(s.Protocol) != "sqs" {
					continue
				}
				arn := aws.ToString(s.SubscriptionArn)
				_, err := c.sns.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(arn)})
				var ae smithy.APIError
				if err != nil && !(errors.As(err, &ae) && ae.ErrorCode() == "NotFound") {
					return n, fmt.Errorf("unsubscribe %s: %w", arn, err)
				}
				if err == nil {
					n++
				}
			}
		}
	}
	if _, err := c.sqs.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(q.URL)}); err != nil && !queueGone(err) {
		return n, fmt.Errorf("delete queue %s: %w", q.URL, err)
	}
	return n, nil
}

// queueGone reports SQS's error for a queue that does not exist.
func queueGone(err error) bool {
	if err == nil {
		return false
	}
	var qe *sqstypes.QueueDoesNotExist
	if errors.As(err, &qe) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "AWS.SimpleQueueService.NonExistentQueue" || ae.ErrorCode() == "QueueDoesNotExist")
}
