package deploytest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// appPort is where the stand-in app answers the load balancers' health
// checks.
const appPort = 8080

// TestTrafficFromTagsCallsAreExactlyItsPolicy runs an agent whose traffic
// section names no target: `from_tags` reads them from the instance's
// tags, here a target group and a classic load balancer propagated from
// the group, so the policy grants both kinds on any resource. Through the
// launch (registered, healthy in both), an hour in service and the
// termination (deregistered, drained), every call the agent made must be
// granted and every grant used.
func TestTrafficFromTagsCallsAreExactlyItsPolicy(t *testing.T) {
	runAgentScenario(t, func(ctx context.Context, setup aws.Config) scenario {
		v2 := elasticloadbalancingv2.NewFromConfig(setup)
		tg, err := v2.CreateTargetGroup(ctx, &elasticloadbalancingv2.CreateTargetGroupInput{
			Name: aws.String("web"), Protocol: elbv2types.ProtocolEnumHttp, Port: aws.Int32(appPort), VpcId: aws.String("vpc-sandbox"),
			HealthCheckPath: aws.String("/"), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2),
		})
		if err != nil {
			t.Fatal(err)
		}
		tgARN := aws.ToString(tg.TargetGroups[0].TargetGroupArn)
		if _, err := v2.ModifyTargetGroupAttributes(ctx, &elasticloadbalancingv2.ModifyTargetGroupAttributesInput{
			TargetGroupArn: aws.String(tgARN),
			Attributes:     []elbv2types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("10")}},
		}); err != nil {
			t.Fatal(err)
		}
		// A target group no listener forwards to is "unused", never healthy.
		lbOut, err := v2.CreateLoadBalancer(ctx, &elasticloadbalancingv2.CreateLoadBalancerInput{Name: aws.String("web"), Subnets: []string{"subnet-1", "subnet-2"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v2.CreateListener(ctx, &elasticloadbalancingv2.CreateListenerInput{
			LoadBalancerArn: lbOut.LoadBalancers[0].LoadBalancerArn, Protocol: elbv2types.ProtocolEnumHttp, Port: aws.Int32(80),
			DefaultActions: []elbv2types.Action{{Type: elbv2types.ActionTypeEnumForward, TargetGroupArn: aws.String(tgARN)}},
		}); err != nil {
			t.Fatal(err)
		}
		classic := elasticloadbalancing.NewFromConfig(setup)
		if _, err := classic.CreateLoadBalancer(ctx, &elasticloadbalancing.CreateLoadBalancerInput{
			LoadBalancerName: aws.String("legacy"), AvailabilityZones: []string{"us-east-1a"},
			Listeners: []elbtypes.Listener{{Protocol: aws.String("HTTP"), LoadBalancerPort: 80, InstanceProtocol: aws.String("HTTP"), InstancePort: aws.Int32(appPort)}},
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := classic.ConfigureHealthCheck(ctx, &elasticloadbalancing.ConfigureHealthCheckInput{
			LoadBalancerName: aws.String("legacy"),
			HealthCheck: &elbtypes.HealthCheck{
				Target: aws.String("HTTP:8080/"), Interval: aws.Int32(5), Timeout: aws.Int32(2), HealthyThreshold: aws.Int32(2), UnhealthyThreshold: aws.Int32(2),
			},
		}); err != nil {
			t.Fatal(err)
		}
		tag := func(k, v string) astypes.Tag {
			return astypes.Tag{Key: aws.String(k), Value: aws.String(v), PropagateAtLaunch: aws.Bool(true), ResourceId: aws.String("web"), ResourceType: aws.String("auto-scaling-group")}
		}
		return scenario{
			yaml: []byte(`source: imds
launch: {hook: launch}
terminate:
  hook: terminate
  steps: [{name: drain, command: [drain], timeout: 5m}]
traffic:
  mode: self
  from_tags: true
  wait_drained_timeout: 1m
`),
			groupTags: []astypes.Tag{tag("lifeguard:target-groups", tgARN+"=8080"), tag("lifeguard:load-balancers", "legacy")},
			appPort:   appPort,
		}
	})
}

// TestTagModeCallsAreExactlyItsPolicy runs an agent in tag mode on an
// instance launched without metadata tags (a launch configuration shows
// none): it reads its leader tag with ec2:DescribeTags, the one call tag
// mode adds, and keeps no presence item without a table.
func TestTagModeCallsAreExactlyItsPolicy(t *testing.T) {
	runAgentScenario(t, func(ctx context.Context, setup aws.Config) scenario {
		return scenario{yaml: []byte(`source: imds
launch: {hook: launch}
terminate:
  hook: terminate
  steps: [{name: drain, command: [drain], timeout: 5m}]
leader: {mode: tag}
`)}
	})
}
