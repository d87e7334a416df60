package awscloud

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/lifeguardhq/lifeguard/internal/agent"
)

// InstanceTags writes and deletes tags on EC2 instances (CreateTags,
// DeleteTags): the agent's mirror of leadership. Its zero value is not
// usable; call NewInstanceTags.
type InstanceTags struct {
	c *ec2.Client
}

var _ agent.Tagger = (*InstanceTags)(nil)

// NewInstanceTags returns the tag adapter using the SDK configuration cfg.
func NewInstanceTags(cfg aws.Config) *InstanceTags { return &InstanceTags{c: ec2.NewFromConfig(cfg)} }

// InstanceTags returns the tag adapter.
func (s Session) InstanceTags() *InstanceTags { return NewInstanceTags(s.cfg) }

// SetTag writes key=value on instance, replacing any value it had.
func (t *InstanceTags) SetTag(ctx context.Context, instance, key, value string) error {
	_, err := t.c.CreateTags(ctx, &ec2.CreateTagsInput{
		Resources: []string{instance},
		Tags:      []ec2types.Tag{{Key: aws.String(key), Value: aws.String(value)}},
	})
	if err != nil {
		return fmt.Errorf("tag %s with %s=%s: %w", instance, key, value, err)
	}
	return nil
}

// DeleteTag deletes key from instance, whatever its value; deleting a tag
// the instance does not have is not an error.
func (t *InstanceTags) DeleteTag(ctx context.Context, instance, key string) error {
	_, err := t.c.DeleteTags(ctx, &ec2.DeleteTagsInput{
		Resources: []string{instance},
		Tags:      []ec2types.Tag{{Key: aws.String(key)}},
	})
	if err != nil {
		return fmt.Errorf("delete tag %s from %s: %w", key, instance, err)
	}
	return nil
}
