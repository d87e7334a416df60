package awscloud

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/lifeguardhq/lifeguard/internal/agent"
)

var _ agent.LeaderTagReader = (*Metadata)(nil)

// InstanceTag reads this instance's tag key from IMDS
// (tags/instance/<key>); found is false when the instance has no such
// tag. It returns an error wrapping agent.ErrNoMetadataTags when IMDS has
// no tags category at all (InstanceMetadataTags is not enabled).
func (m *Metadata) InstanceTag(ctx context.Context, key string) (value string, found bool, err error) {
	v, ok, err := m.get(ctx, "tags/instance/"+key)
	if err != nil || ok {
		return v, ok, err
	}
	if _, ok, err := m.get(ctx, "tags/instance"); err != nil {
		return "", false, err
	} else if !ok {
		return "", false, fmt.Errorf("read tags/instance/%s: %w", key, agent.ErrNoMetadataTags)
	}
	return "", false, nil
}

var _ agent.InstanceTagDescriber = (*InstanceTags)(nil)

// DescribeInstanceTag reads instance's tag key with EC2 DescribeTags
// (filters resource-id and key): tag mode's way when IMDS shows no tags.
// It needs ec2:DescribeTags; found is false when the instance has no such
// tag.
func (t *InstanceTags) DescribeInstanceTag(ctx context.Context, instance, key string) (value string, found bool, err error) {
	out, err := t.c.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []ec2types.Filter{
		{Name: aws.String("resource-id"), Values: []string{instance}},
		{Name: aws.String("key"), Values: []string{key}},
	}})
	if err != nil {
		return "", false, fmt.Errorf("read tag %s of %s with DescribeTags: %w", key, instance, err)
	}
	for _, tag := range out.Tags {
		if aws.ToString(tag.ResourceId) == instance && aws.ToString(tag.Key) == key {
			return aws.ToString(tag.Value), true, nil
		}
	}
	return "", false, nil
}
