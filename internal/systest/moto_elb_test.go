package systest_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	lb2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	lb2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sandboxtest"
)

// elbSide is one server's side of the load balancer comparison: its
// clients, its subnets and VPC, and the ARNs earlier steps got.
type elbSide struct {
	v2      *lb2.Client
	classic *elb.Client
	subnets []string
	vpc     string
	lb, tg  string
	lis     string
}

// motoNetwork creates the VPC and two subnets in two zones moto's
// CreateLoadBalancer requires (the sandbox accepts any well-formed ids).
func motoNetwork(t *testing.T, url string) (vpc string, subnets []string) {
	t.Helper()
	ctx := context.Background()
	c := ec2.NewFromConfig(staticConfig(url))
	v, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	for i, az := range []string{"us-east-1a", "us-east-1b"} {
		s, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: v.Vpc.VpcId, AvailabilityZone: aws.String(az), CidrBlock: aws.String("10.0." + strconv.Itoa(i+1) + ".0/24")})
		if err != nil {
			t.Fatal(err)
		}
		subnets = append(subnets, aws.ToString(s.Subnet.SubnetId))
	}
	return aws.ToString(v.Vpc.VpcId), subnets
}

// TestDifferentialLoadBalancersAgainstMoto runs the same ELBv2 and classic
// ELB calls against moto_server and the sandbox through the Go SDK: error
// codes must match, and every field moto sends the sandbox must send.
// Registration of instances is left out (moto's instances are not the
// sandbox's); the data plane is tested in package lbproxy.
func TestDifferentialLoadBalancersAgainstMoto(t *testing.T) {
	motoURL := startMoto(t)
	sb := sandboxtest.Start(t, sandbox.Config{})
	mvpc, msubnets := motoNetwork(t, motoURL)
	moto := &elbSide{v2: lb2.NewFromConfig(staticConfig(motoURL)), classic: elb.NewFromConfig(staticConfig(motoURL)), subnets: msubnets, vpc: mvpc}
	mine := &elbSide{v2: lb2.NewFromConfig(staticConfig(sb.Endpoint)), classic: elb.NewFromConfig(staticConfig(sb.Endpoint)),
		subnets: []string{"subnet-1", "subnet-2"}, vpc: "vpc-1"}
	ctx := context.Background()
	missing := func(s *elbSide, what string) string {
		return "arn:aws:elasticloadbalancing:us-east-1:123456789012:" + what + "/nope/0123456789abcdef"
	}
	steps := []diffStep[*elbSide]{
		{name: "CreateLoadBalancer", call: func(s *elbSide) (any, error) {
			out, err := s.v2.CreateLoadBalancer(ctx, &lb2.CreateLoadBalancerInput{Name: aws.String("web"), Subnets: s.subnets})
			if err == nil {
				s.lb = aws.ToString(out.LoadBalancers[0].LoadBalancerArn)
			}
			return out, err
		}, values: func(out any) map[string]string {
			lb := out.(*lb2.CreateLoadBalancerOutput).LoadBalancers[0]
			return map[string]string{"name": aws.ToString(lb.LoadBalancerName), "type": string(lb.Type), "scheme": string(lb.Scheme)}
		}},
		{name: "DescribeLoadBalancers", call: func(s *elbSide) (any, error) {
			return s.v2.DescribeLoadBalancers(ctx, &lb2.DescribeLoadBalancersInput{Names: []string{"web"}})
		}},
		{name: "DescribeLoadBalancers missing", call: func(s *elbSide) (any, error) {
			return s.v2.DescribeLoadBalancers(ctx, &lb2.DescribeLoadBalancersInput{LoadBalancerArns: []string{missing(s, "loadbalancer/app")}})
		}},
		{name: "CreateTargetGroup", call: func(s *elbSide) (any, error) {
			out, err := s.v2.CreateTargetGroup(ctx, &lb2.CreateTargetGroupInput{Name: aws.String("web"), Protocol: lb2types.ProtocolEnumHttp,
				Port: aws.Int32(8080), VpcId: aws.String(s.vpc), HealthCheckPath: aws.String("/health"), HealthCheckIntervalSeconds: aws.Int32(10), HealthCheckTimeoutSeconds: aws.Int32(5)})
			if err == nil {
				s.tg = aws.ToString(out.TargetGroups[0].TargetGroupArn)
			}
			return out, err
		}, values: func(out any) map[string]string {
			tg := out.(*lb2.CreateTargetGroupOutput).TargetGroups[0]
			return map[string]string{"path": aws.ToString(tg.HealthCheckPath), "port": aws.ToString(tg.HealthCheckPort), "matcher": aws.ToString(tg.Matcher.HttpCode)}
		}},
		{name: "CreateTargetGroup same name other port", call: func(s *elbSide) (any, error) {
			return s.v2.CreateTargetGroup(ctx, &lb2.CreateTargetGroupInput{Name: aws.String("web"), Protocol: lb2types.ProtocolEnumHttp, Port: aws.Int32(9090), VpcId: aws.String(s.vpc)})
		}},
		{name: "DescribeTargetGroups", call: func(s *elbSide) (any, error) {
			return s.v2.DescribeTargetGroups(ctx, &lb2.DescribeTargetGroupsInput{TargetGroupArns: []string{s.tg}})
		}},
		{name: "DescribeTargetGroups missing", call: func(s *elbSide) (any, error) {
			return s.v2.DescribeTargetGroups(ctx, &lb2.DescribeTargetGroupsInput{TargetGroupArns: []string{missing(s, "targetgroup")}})
		}},
		{name: "DescribeTargetGroupAttributes", call: func(s *elbSide) (any, error) {
			return s.v2.DescribeTargetGroupAttributes(ctx, &lb2.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(s.tg)})
		}, values: func(out any) map[string]string {
			return map[string]string{"delay": tgAttr(out.(*lb2.DescribeTargetGroupAttributesOutput).Attributes, "deregistration_delay.timeout_seconds")}
		}},
		{name: "ModifyTargetGroupAttributes", call: func(s *elbSide) (any, error) {
			return s.v2.ModifyTargetGroupAttributes(ctx, &lb2.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(s.tg),
				Attributes: []lb2types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("30")}}})
		}, values: func(out any) map[string]string {
			return map[string]string{"delay": tgAttr(out.(*lb2.ModifyTargetGroupAttributesOutput).Attributes, "deregistration_delay.timeout_seconds")}
		}},
		{name: "ModifyTargetGroup", call: func(s *elbSide) (any, error) {
			return s.v2.ModifyTargetGroup(ctx, &lb2.ModifyTargetGroupInput{TargetGroupArn: aws.String(s.tg), HealthyThresholdCount: aws.Int32(2), Matcher: &lb2types.Matcher{HttpCode: aws.String("200-299")}})
		}, values: func(out any) map[string]string {
			tg := out.(*lb2.ModifyTargetGroupOutput).TargetGroups[0]
			return map[string]string{"matcher": aws.ToString(tg.Matcher.HttpCode)}
		}},
		{name: "CreateListener", call: func(s *elbSide) (any, error) {
			out, err := s.v2.CreateListener(ctx, &lb2.CreateListenerInput{LoadBalancerArn: aws.String(s.lb), Protocol: lb2types.ProtocolEnumHttp, Port: aws.Int32(80),
				DefaultActions: []lb2types.Action{{Type: lb2types.ActionTypeEnumForward, TargetGroupArn: aws.String(s.tg)}}})
			if err == nil {
				s.lis = aws.ToString(out.Listeners[0].ListenerArn)
			}
			return out, err
		}},
		{name: "DescribeListeners", call: func(s *elbSide) (any, error) {
			return s.v2.DescribeListeners(ctx, &lb2.DescribeListenersInput{LoadBalancerArn: aws.String(s.lb)})
		}},
		{name: "DescribeListeners missing", call: func(s *elbSide) (any, error) {
			return s.v2.DescribeListeners(ctx, &lb2.DescribeListenersInput{ListenerArns: []string{s.lis + "0"}})
		}},
		{name: "DescribeTargetHealth empty", call: func(s *elbSide) (any, error) {
			return s.v2.DescribeTargetHealth(ctx, &lb2.DescribeTargetHealthInput{TargetGroupArn: aws.String(s.tg)})
		}},
		{name: "DescribeTargetHealth missing group", call: func(s *elbSide) (any, error) {
			return s.v2.DescribeTargetHealth(ctx, &lb2.DescribeTargetHealthInput{TargetGroupArn: aws.String(missing(s, "targetgroup"))})
		}},
		{name: "RegisterTargets missing group", call: func(s *elbSide) (any, error) {
			return s.v2.RegisterTargets(ctx, &lb2.RegisterTargetsInput{TargetGroupArn: aws.String(missing(s, "targetgroup")), Targets: []lb2types.TargetDescription{{Id: aws.String("i-0123456789abcdef0")}}})
		}},
		{name: "DeleteTargetGroup in use", call: func(s *elbSide) (any, error) {
			return s.v2.DeleteTargetGroup(ctx, &lb2.DeleteTargetGroupInput{TargetGroupArn: aws.String(s.tg)})
		}},
		{name: "DeleteListener", call: func(s *elbSide) (any, error) {
			return s.v2.DeleteListener(ctx, &lb2.DeleteListenerInput{ListenerArn: aws.String(s.lis)})
		}},
		{name: "DeleteTargetGroup", call: func(s *elbSide) (any, error) {
			return s.v2.DeleteTargetGroup(ctx, &lb2.DeleteTargetGroupInput{TargetGroupArn: aws.String(s.tg)})
		}},
		{name: "DeleteLoadBalancer", call: func(s *elbSide) (any, error) {
			return s.v2.DeleteLoadBalancer(ctx, &lb2.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(s.lb)})
		}},

		{name: "classic CreateLoadBalancer", call: func(s *elbSide) (any, error) {
			return s.classic.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{LoadBalancerName: aws.String("old"), AvailabilityZones: []string{"us-east-1a"},
				Listeners: []elbtypes.Listener{{Protocol: aws.String("HTTP"), LoadBalancerPort: 80, InstanceProtocol: aws.String("HTTP"), InstancePort: aws.Int32(8080)}}})
		}},
		{name: "classic DescribeLoadBalancers", call: func(s *elbSide) (any, error) {
			return s.classic.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerNames: []string{"old"}})
		}},
		{name: "classic DescribeLoadBalancers missing", call: func(s *elbSide) (any, error) {
			return s.classic.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerNames: []string{"nope"}})
		}},
		{name: "classic ConfigureHealthCheck", call: func(s *elbSide) (any, error) {
			return s.classic.ConfigureHealthCheck(ctx, &elb.ConfigureHealthCheckInput{LoadBalancerName: aws.String("old"), HealthCheck: &elbtypes.HealthCheck{
				Target: aws.String("HTTP:8080/health"), Interval: aws.Int32(10), Timeout: aws.Int32(5), HealthyThreshold: aws.Int32(2), UnhealthyThreshold: aws.Int32(2)}})
		}, values: func(out any) map[string]string {
			return map[string]string{"target": aws.ToString(out.(*elb.ConfigureHealthCheckOutput).HealthCheck.Target)}
		}},
		{name: "classic ModifyLoadBalancerAttributes", call: func(s *elbSide) (any, error) {
			return s.classic.ModifyLoadBalancerAttributes(ctx, &elb.ModifyLoadBalancerAttributesInput{LoadBalancerName: aws.String("old"),
				LoadBalancerAttributes: &elbtypes.LoadBalancerAttributes{ConnectionDraining: &elbtypes.ConnectionDraining{Enabled: true, Timeout: aws.Int32(30)}}})
		}},
		{name: "classic DescribeLoadBalancerAttributes", call: func(s *elbSide) (any, error) {
			return s.classic.DescribeLoadBalancerAttributes(ctx, &elb.DescribeLoadBalancerAttributesInput{LoadBalancerName: aws.String("old")})
		}, values: func(out any) map[string]string {
			d := out.(*elb.DescribeLoadBalancerAttributesOutput).LoadBalancerAttributes.ConnectionDraining
			return map[string]string{"draining": boolString(d.Enabled), "timeout": int32String(d.Timeout)}
		}},
		{name: "classic AddTags", call: func(s *elbSide) (any, error) {
			return s.classic.AddTags(ctx, &elb.AddTagsInput{LoadBalancerNames: []string{"old"}, Tags: []elbtypes.Tag{{Key: aws.String("team"), Value: aws.String("web")}}})
		}},
		{name: "classic DescribeTags", call: func(s *elbSide) (any, error) {
			return s.classic.DescribeTags(ctx, &elb.DescribeTagsInput{LoadBalancerNames: []string{"old"}})
		}},
		{name: "classic DescribeInstanceHealth none", call: func(s *elbSide) (any, error) {
			return s.classic.DescribeInstanceHealth(ctx, &elb.DescribeInstanceHealthInput{LoadBalancerName: aws.String("old")})
		}},
		{name: "classic Register missing", call: func(s *elbSide) (any, error) {
			return s.classic.RegisterInstancesWithLoadBalancer(ctx, &elb.RegisterInstancesWithLoadBalancerInput{LoadBalancerName: aws.String("nope"),
				Instances: []elbtypes.Instance{{InstanceId: aws.String("i-0123456789abcdef0")}}})
		}},
		{name: "classic DeleteLoadBalancer", call: func(s *elbSide) (any, error) {
			return s.classic.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerName: aws.String("old")})
		}},
	}
	runDiff(t, moto, mine, steps, diffRules{
		// moto answers RegisterInstancesWithLoadBalancer for a missing
		// load balancer with a 500 whose body is not XML; AWS answers
		// LoadBalancerNotFound (AccessPointNotFoundException).
		awsCode: map[string]string{"classic Register missing": "LoadBalancerNotFound"},
		// moto sends empty SslPolicy and AlpnPolicy on HTTP listeners; AWS
		// sends them for HTTPS and TLS listeners only.
		motoOnly: []string{"Listeners[].SslPolicy", "Listeners[].AlpnPolicy"},
		// moto leaves Scheme empty when it is not given; AWS defaults it
		// to internet-facing.
		awsValue: map[string]map[string]string{"CreateLoadBalancer": {"scheme": "internet-facing"}},
	})
}

func tgAttr(as []lb2types.TargetGroupAttribute, key string) string {
	for _, a := range as {
		if aws.ToString(a.Key) == key {
			return aws.ToString(a.Value)
		}
	}
	return ""
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func int32String(p *int32) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(int(*p))
}
