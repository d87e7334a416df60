package awscloud

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/lifeguardhq/lifeguard/internal/lb"
)

// Attachments returns the load balancers the group attaches itself
// (DescribeAutoScalingGroups): its TargetGroupARNs and LoadBalancerNames,
// and its traffic sources of types elbv2 and elb.
func (a *AutoScaling) Attachments(ctx context.Context, group string) (lb.Attachments, error) {
	out, err := a.c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil {
		return lb.Attachments{}, fmt.Errorf("describe auto scaling group %s: %w", group, err)
	}
	if len(out.AutoScalingGroups) == 0 {
		return lb.Attachments{}, fmt.Errorf("describe auto scaling group %s: no such group", group)
	}
	g := out.AutoScalingGroups[0]
	at := lb.Attachments{TargetGroupARNs: g.TargetGroupARNs, LoadBalancerNames: g.LoadBalancerNames}
	for _, ts := range g.TrafficSources {
		switch aws.ToString(ts.Type) {
		case "elbv2":
			at.TargetGroupARNs = append(at.TargetGroupARNs, aws.ToString(ts.Identifier))
		case "elb":
			at.LoadBalancerNames = append(at.LoadBalancerNames, aws.ToString(ts.Identifier))
		}
	}
	return at, nil
}

// Tags returns the instance's tags among keys (EC2 DescribeTags, which
// needs ec2:DescribeTags but no instance metadata option); a key the
// instance lacks is absent from the map.
func (t *InstanceTags) Tags(ctx context.Context, instance string, keys ...string) (map[string]string, error) {
	in := &ec2.DescribeTagsInput{Filters: []ec2types.Filter{
		{Name: aws.String("resource-id"), Values: []string{instance}},
		{Name: aws.String("key"), Values: keys},
	}}
	tags := map[string]string{}
	for p := ec2.NewDescribeTagsPaginator(t.c, in); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe tags of %s: %w", instance, err)
		}
		for _, td := range out.Tags {
			tags[aws.ToString(td.Key)] = aws.ToString(td.Value)
		}
	}
	return tags, nil
}
