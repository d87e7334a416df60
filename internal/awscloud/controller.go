package awscloud

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/lifeguardhq/lifeguard/internal/controller"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// ControllerCloud is the controller's view of Auto Scaling and EC2: the
// groups and their instances, the leader tag, and the lifecycle actions
// the reaper completes. Its zero value is not usable; call
// NewControllerCloud.
type ControllerCloud struct {
	asg *autoscaling.Client
	ec2 *ec2.Client
	as  *AutoScaling
}

var (
	_ controller.Fleet     = (*ControllerCloud)(nil)
	_ controller.Tagger    = (*ControllerCloud)(nil)
	_ controller.Completer = (*ControllerCloud)(nil)
	_ controller.Presence  = (*LeaseTable)(nil)
)

// NewControllerCloud returns the adapter using the SDK configuration cfg.
func NewControllerCloud(cfg aws.Config) *ControllerCloud {
	return &ControllerCloud{asg: autoscaling.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg), as: NewAutoScaling(cfg)}
}

// ControllerCloud returns the controller's adapter.
func (s Session) ControllerCloud() *ControllerCloud { return NewControllerCloud(s.cfg) }

// Groups returns the named groups (DescribeAutoScalingGroups), or with no
// names every group tagged optKey=optValue.
func (c *ControllerCloud) Groups(ctx context.Context, names []string, optKey, optValue string) ([]controller.Group, error) {
	in := &autoscaling.DescribeAutoScalingGroupsInput{}
	if len(names) > 0 {
		in.AutoScalingGroupNames = names
	} else {
		in.Filters = []asgtypes.Filter{{Name: aws.String("tag:" + optKey), Values: []string{optValue}}}
	}
	var out []controller.Group
	p := autoscaling.NewDescribeAutoScalingGroupsPaginator(c.asg, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe auto scaling groups: %w", err)
		}
		for _, g := range page.AutoScalingGroups {
			cg := controller.Group{Name: aws.ToString(g.AutoScalingGroupName), Tags: map[string]string{}}
			for _, t := range g.Tags {
				cg.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			for _, i := range g.Instances {
				cg.Members = append(cg.Members, controller.GroupMember{
					ID: aws.ToString(i.InstanceId), LifecycleState: string(i.LifecycleState), Health: aws.ToString(i.HealthStatus),
				})
			}
			out = append(out, cg)
		}
	}
	return out, nil
}

// Instances returns the instances EC2 shows with the group's
// aws:autoscaling:groupName tag (DescribeInstances by that filter, so an
// instance EC2 does not know yet is simply absent).
func (c *ControllerCloud) Instances(ctx context.Context, group string) ([]controller.Instance, error) {
	in := &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("tag:aws:autoscaling:groupName"), Values: []string{group}}}}
	var out []controller.Instance
	p := ec2.NewDescribeInstancesPaginator(c.ec2, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances of %s: %w", group, err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				ci := controller.Instance{ID: aws.ToString(i.InstanceId), Launched: aws.ToTime(i.LaunchTime), Tags: map[string]string{}}
				if i.State != nil {
					ci.Running = i.State.Name == ec2types.InstanceStateNamePending || i.State.Name == ec2types.InstanceStateNameRunning
				}
				for _, t := range i.Tags {
					ci.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
				}
				out = append(out, ci)
			}
		}
	}
	return out, nil
}

// SetTag writes key=value on instance (CreateTags). EC2's
// InvalidInstanceID.NotFound comes back wrapping
// controller.ErrInstanceNotFound.
func (c *ControllerCloud) SetTag(ctx context.Context, instance, key, value string) error {
	_, err := c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{
		Resources: []string{instance},
		Tags:      []ec2types.Tag{{Key: aws.String(key), Value: aws.String(value)}},
	})
	if err != nil {
		return fmt.Errorf("tag %s with %s=%s: %w", instance, key, value, mapNotFound(err))
	}
	return nil
}

// DeleteTag deletes key from instance whatever its value (DeleteTags).
func (c *ControllerCloud) DeleteTag(ctx context.Context, instance, key string) error {
	_, err := c.ec2.DeleteTags(ctx, &ec2.DeleteTagsInput{
		Resources: []string{instance},
		Tags:      []ec2types.Tag{{Key: aws.String(key)}},
	})
	if err != nil {
		return fmt.Errorf("delete tag %s from %s: %w", key, instance, mapNotFound(err))
	}
	return nil
}

func mapNotFound(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && strings.HasPrefix(ae.ErrorCode(), "InvalidInstanceID.NotFound") {
		return fmt.Errorf("%w: %s", controller.ErrInstanceNotFound, ae.ErrorMessage())
	}
	return err
}

// CompleteWaiting completes, by instance id, the action of each of the
// group's hooks for the transition the instance waits in (launching for
// Pending:Wait, terminating for Terminating:Wait); hooks without an
// active action for it are skipped.
func (c *ControllerCloud) CompleteWaiting(ctx context.Context, group, instance, state, result string) error {
	hooks, err := c.as.LifecycleHooks(ctx, group)
	if err != nil {
		return err
	}
	want := lifecycle.TransitionLaunching
	if state == controller.StateTerminatingWait {
		want = lifecycle.TransitionTerminating
	}
	var errs []error
	for _, h := range hooks {
		if h.Transition != want {
			continue
		}
		err := c.as.Complete(ctx, lifecycle.Action{Group: group, InstanceID: instance, Hook: h}, lifecycle.Result(result))
		if err != nil && !errors.Is(err, lifecycle.ErrNoActiveAction) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ControllerQueue is the controller daemon's SQS queue.
type ControllerQueue struct {
	c          *sqs.Client
	url        string
	visibility time.Duration
}

var _ controller.Queue = (*ControllerQueue)(nil)

// NewControllerQueue returns the queue at url; a received message stays
// invisible for visibility (at least the longest reconcile).
func NewControllerQueue(cfg aws.Config, url string, visibility time.Duration) *ControllerQueue {
	return &ControllerQueue{c: sqs.NewFromConfig(cfg), url: url, visibility: visibility}
}

// ControllerQueue returns the daemon's queue adapter.
func (s Session) ControllerQueue(url string, visibility time.Duration) *ControllerQueue {
	return NewControllerQueue(s.cfg, url, visibility)
}

// Receive long-polls for up to ten messages.
func (q *ControllerQueue) Receive(ctx context.Context, wait time.Duration) ([]controller.Message, error) {
	out, err := q.c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(q.url), MaxNumberOfMessages: 10,
		WaitTimeSeconds: int32(wait / time.Second), VisibilityTimeout: int32(q.visibility / time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("receive messages from %s: %w", q.url, err)
	}
	ms := make([]controller.Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		ms = append(ms, controller.Message{Body: aws.ToString(m.Body), Handle: aws.ToString(m.ReceiptHandle)})
	}
	return ms, nil
}

// Delete deletes a handled message.
func (q *ControllerQueue) Delete(ctx context.Context, m controller.Message) error {
	if _, err := q.c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(m.Handle)}); err != nil {
		return fmt.Errorf("delete message from %s: %w", q.url, err)
	}
	return nil
}
