package elbv2_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	lb2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sandboxtest"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitBound = 10 * time.Second

func newClient(t *testing.T) (*lb2.Client, *sandboxtest.Sandbox) {
	t.Helper()
	sb := sandboxtest.Start(t, sandbox.Config{RelaxLimits: true})
	c := lb2.NewFromConfig(aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(sb.Endpoint), HTTPClient: sb.HTTP,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""), RetryMaxAttempts: 1,
	})
	return c, sb
}

// runningInstances starts a group of n instances (no processes) and
// returns their ids once EC2 reports them running.
func runningInstances(t *testing.T, sb *sandboxtest.Sandbox, n int) []string {
	t.Helper()
	if err := sb.World.CreateLaunchConfiguration(world.LaunchConfiguration{Name: "lc", ImageID: "ami-12345678", InstanceType: "t3.micro"}); err != nil {
		t.Fatal(err)
	}
	if err := sb.World.CreateAutoScalingGroup(world.CreateGroupInput{Name: "g", LaunchConfiguration: "lc", MinSize: &n, MaxSize: &n, Desired: &n, AvailabilityZones: []string{"us-east-1a"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	var seq int64
	for {
		is, err := sb.World.EC2().Instances(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, in := range is {
			if in.EC2State == "running" {
				ids = append(ids, in.ID)
			}
		}
		if len(ids) == n {
			slices.Sort(ids)
			return ids
		}
		evs, err := sb.Events.Wait(ctx, seq, eventlog.Control)
		if err != nil {
			t.Fatalf("instances never running: %v", err)
		}
		seq = evs[len(evs)-1].Seq
	}
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// fixture is a load balancer, a target group and a listener.
type fixture struct {
	lb, tg, listener string
}

func setUp(t *testing.T, ctx context.Context, c *lb2.Client) fixture {
	t.Helper()
	lb, err := c.CreateLoadBalancer(ctx, &lb2.CreateLoadBalancerInput{Name: aws.String("web"), Subnets: []string{"subnet-a1", "subnet-b2", "subnet-c3", "subnet-d4"}})
	if err != nil {
		t.Fatalf("CreateLoadBalancer: %v", err)
	}
	tg, err := c.CreateTargetGroup(ctx, &lb2.CreateTargetGroupInput{Name: aws.String("web"), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(8080), VpcId: aws.String("vpc-1")})
	if err != nil {
		t.Fatalf("CreateTargetGroup: %v", err)
	}
	l, err := c.CreateListener(ctx, &lb2.CreateListenerInput{
		LoadBalancerArn: lb.LoadBalancers[0].LoadBalancerArn, Protocol: types.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroups[0].TargetGroupArn}},
	})
	if err != nil {
		t.Fatalf("CreateListener: %v", err)
	}
	return fixture{*lb.LoadBalancers[0].LoadBalancerArn, *tg.TargetGroups[0].TargetGroupArn, *l.Listeners[0].ListenerArn}
}

func TestLoadBalancerTargetGroupListenerAndTargets(t *testing.T) {
	c, sb := newClient(t)
	ctx := context.Background()
	ids := runningInstances(t, sb, 2)
	f := setUp(t, ctx, c)

	lbs, err := c.DescribeLoadBalancers(ctx, &lb2.DescribeLoadBalancersInput{Names: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	lb := lbs.LoadBalancers[0]
	if *lb.LoadBalancerArn != f.lb || lb.Type != types.LoadBalancerTypeEnumApplication || lb.State.Code != types.LoadBalancerStateEnumActive ||
		!strings.HasSuffix(*lb.DNSName, ".us-east-1.elb.localhost") || len(lb.AvailabilityZones) < 2 || lb.CreatedTime == nil {
		t.Errorf("DescribeLoadBalancers = %+v", lb)
	}

	tgs, err := c.DescribeTargetGroups(ctx, &lb2.DescribeTargetGroupsInput{TargetGroupArns: []string{f.tg}})
	if err != nil {
		t.Fatal(err)
	}
	tg := tgs.TargetGroups[0]
	if *tg.HealthCheckIntervalSeconds != 30 || *tg.HealthCheckTimeoutSeconds != 5 || *tg.HealthyThresholdCount != 5 ||
		*tg.UnhealthyThresholdCount != 2 || *tg.HealthCheckPath != "/" || *tg.Matcher.HttpCode != "200" ||
		*tg.HealthCheckPort != "traffic-port" || !slices.Equal(tg.LoadBalancerArns, []string{f.lb}) || tg.TargetType != types.TargetTypeEnumInstance {
		t.Errorf("target group defaults = %+v", tg)
	}
	mod, err := c.ModifyTargetGroup(ctx, &lb2.ModifyTargetGroupInput{TargetGroupArn: &f.tg, HealthCheckPath: aws.String("/health"),
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2), Matcher: &types.Matcher{HttpCode: aws.String("200-299")}})
	if err != nil || *mod.TargetGroups[0].HealthCheckPath != "/health" || *mod.TargetGroups[0].Matcher.HttpCode != "200-299" {
		t.Fatalf("ModifyTargetGroup: %+v, %v", mod, err)
	}

	attrs, err := c.DescribeTargetGroupAttributes(ctx, &lb2.DescribeTargetGroupAttributesInput{TargetGroupArn: &f.tg})
	if err != nil || attr(attrs.Attributes, "deregistration_delay.timeout_seconds") != "300" {
		t.Fatalf("default deregistration delay: %+v, %v", attrs, err)
	}
	set, err := c.ModifyTargetGroupAttributes(ctx, &lb2.ModifyTargetGroupAttributesInput{TargetGroupArn: &f.tg,
		Attributes: []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("20")}}})
	if err != nil || attr(set.Attributes, "deregistration_delay.timeout_seconds") != "20" {
		t.Fatalf("ModifyTargetGroupAttributes: %+v, %v", set, err)
	}

	ls, err := c.DescribeListeners(ctx, &lb2.DescribeListenersInput{LoadBalancerArn: &f.lb})
	if err != nil || len(ls.Listeners) != 1 || *ls.Listeners[0].Port != 80 || *ls.Listeners[0].DefaultActions[0].TargetGroupArn != f.tg {
		t.Fatalf("DescribeListeners: %+v, %v", ls, err)
	}

	// Registration: nothing listens on the instances, so the targets
	// start initial and stay there until the checks decide.
	if _, err := c.RegisterTargets(ctx, &lb2.RegisterTargetsInput{TargetGroupArn: &f.tg, Targets: []types.TargetDescription{{Id: &ids[0]}, {Id: &ids[1], Port: aws.Int32(9090)}}}); err != nil {
		t.Fatal(err)
	}
	th, err := c.DescribeTargetHealth(ctx, &lb2.DescribeTargetHealthInput{TargetGroupArn: &f.tg})
	if err != nil || len(th.TargetHealthDescriptions) != 2 {
		t.Fatalf("DescribeTargetHealth: %+v, %v", th, err)
	}
	for _, d := range th.TargetHealthDescriptions {
		if d.TargetHealth.State != types.TargetHealthStateEnumInitial ||
			(d.TargetHealth.Reason != types.TargetHealthReasonEnumRegistrationInProgress && d.TargetHealth.Reason != types.TargetHealthReasonEnumInitialHealthChecking) {
			t.Errorf("just registered: %s:%d %+v", *d.Target.Id, *d.Target.Port, d.TargetHealth)
		}
	}
	if p := *th.TargetHealthDescriptions[1].Target.Port; p != 9090 || *th.TargetHealthDescriptions[1].HealthCheckPort != "9090" {
		t.Errorf("second target's port %d, health check port %s; want 9090", p, *th.TargetHealthDescriptions[1].HealthCheckPort)
	}

	// Deregistration without requests in flight completes at once.
	if _, err := c.DeregisterTargets(ctx, &lb2.DeregisterTargetsInput{TargetGroupArn: &f.tg, Targets: []types.TargetDescription{{Id: &ids[0]}}}); err != nil {
		t.Fatal(err)
	}
	th, err = c.DescribeTargetHealth(ctx, &lb2.DescribeTargetHealthInput{TargetGroupArn: &f.tg, Targets: []types.TargetDescription{{Id: &ids[0]}}})
	if err != nil {
		t.Fatal(err)
	}
	if h := th.TargetHealthDescriptions[0].TargetHealth; h.State != types.TargetHealthStateEnumUnused || h.Reason != types.TargetHealthReasonEnumNotRegistered || *h.Description != "Target is not registered to the target group" {
		t.Errorf("deregistered target: %+v", h)
	}

	// A target group no listener uses: its targets are unused, not in use.
	if _, err := c.DeleteListener(ctx, &lb2.DeleteListenerInput{ListenerArn: &f.listener}); err != nil {
		t.Fatal(err)
	}
	th, _ = c.DescribeTargetHealth(ctx, &lb2.DescribeTargetHealthInput{TargetGroupArn: &f.tg})
	if h := th.TargetHealthDescriptions[0].TargetHealth; h.State != types.TargetHealthStateEnumUnused || h.Reason != types.TargetHealthReasonEnumNotInUse {
		t.Errorf("target of a group without a listener: %+v", h)
	}
	if _, err := c.DeleteTargetGroup(ctx, &lb2.DeleteTargetGroupInput{TargetGroupArn: &f.tg}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteLoadBalancer(ctx, &lb2.DeleteLoadBalancerInput{LoadBalancerArn: &f.lb}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteLoadBalancer(ctx, &lb2.DeleteLoadBalancerInput{LoadBalancerArn: &f.lb}); err != nil {
		t.Errorf("deleting a deleted load balancer succeeds on AWS: %v", err)
	}
	all, err := c.DescribeLoadBalancers(ctx, &lb2.DescribeLoadBalancersInput{})
	if err != nil || len(all.LoadBalancers) != 0 {
		t.Errorf("after delete: %+v, %v", all, err)
	}
}

func attr(as []types.TargetGroupAttribute, key string) string {
	for _, a := range as {
		if *a.Key == key {
			return *a.Value
		}
	}
	return ""
}

func TestErrors(t *testing.T) {
	c, sb := newClient(t)
	ctx := context.Background()
	ids := runningInstances(t, sb, 1)
	f := setUp(t, ctx, c)
	missingTG := "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/0123456789abcdef"
	missingLB := "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/nope/0123456789abcdef"
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"describe a missing target group", func() error {
			_, err := c.DescribeTargetGroups(ctx, &lb2.DescribeTargetGroupsInput{TargetGroupArns: []string{missingTG}})
			return err
		}, "TargetGroupNotFound: One or more target groups not found"},
		{"register with a missing target group", func() error {
			_, err := c.RegisterTargets(ctx, &lb2.RegisterTargetsInput{TargetGroupArn: &missingTG, Targets: []types.TargetDescription{{Id: &ids[0]}}})
			return err
		}, "TargetGroupNotFound: One or more target groups not found"},
		{"health of a missing target group", func() error {
			_, err := c.DescribeTargetHealth(ctx, &lb2.DescribeTargetHealthInput{TargetGroupArn: &missingTG})
			return err
		}, "TargetGroupNotFound: One or more target groups not found"},
		{"describe a missing load balancer", func() error {
			_, err := c.DescribeLoadBalancers(ctx, &lb2.DescribeLoadBalancersInput{LoadBalancerArns: []string{missingLB}})
			return err
		}, "LoadBalancerNotFound: One or more load balancers not found"},
		{"listener on a missing load balancer", func() error {
			_, err := c.CreateListener(ctx, &lb2.CreateListenerInput{LoadBalancerArn: &missingLB, Protocol: types.ProtocolEnumHttp, Port: aws.Int32(81),
				DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: &f.tg}}})
			return err
		}, "LoadBalancerNotFound: One or more load balancers not found"},
		{"second listener on a port", func() error {
			_, err := c.CreateListener(ctx, &lb2.CreateListenerInput{LoadBalancerArn: &f.lb, Protocol: types.ProtocolEnumHttp, Port: aws.Int32(80),
				DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: &f.tg}}})
			return err
		}, "DuplicateListener: A listener already exists on this port for this load balancer"},
		{"missing listener", func() error {
			_, err := c.DescribeListeners(ctx, &lb2.DescribeListenersInput{ListenerArns: []string{f.listener + "0"}})
			return err
		}, "ListenerNotFound: One or more listeners not found"},
		{"same target group name, other settings", func() error {
			_, err := c.CreateTargetGroup(ctx, &lb2.CreateTargetGroupInput{Name: aws.String("web"), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(9999), VpcId: aws.String("vpc-1")})
			return err
		}, "DuplicateTargetGroupName: A target group with the same name 'web' exists, but with different settings"},
		{"unknown instance", func() error {
			_, err := c.RegisterTargets(ctx, &lb2.RegisterTargetsInput{TargetGroupArn: &f.tg, Targets: []types.TargetDescription{{Id: aws.String("i-0123456789abcdef0")}}})
			return err
		}, "InvalidTarget: The following targets are not valid instances: 'i-0123456789abcdef0'"},
		{"deregister a target never registered", func() error {
			_, err := c.DeregisterTargets(ctx, &lb2.DeregisterTargetsInput{TargetGroupArn: &f.tg, Targets: []types.TargetDescription{{Id: &ids[0]}}})
			return err
		}, "InvalidTarget: The specified target does not exist"},
		{"timeout not below the interval", func() error {
			_, err := c.ModifyTargetGroup(ctx, &lb2.ModifyTargetGroupInput{TargetGroupArn: &f.tg, HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(5)})
			return err
		}, "ValidationError: Health check interval must be greater than the timeout."},
		{"deregistration delay out of range", func() error {
			_, err := c.ModifyTargetGroupAttributes(ctx, &lb2.ModifyTargetGroupAttributesInput{TargetGroupArn: &f.tg,
				Attributes: []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("3601")}}})
			return err
		}, "ValidationError: 'deregistration_delay.timeout_seconds' must be"},
		{"unknown attribute", func() error {
			_, err := c.ModifyTargetGroupAttributes(ctx, &lb2.ModifyTargetGroupAttributesInput{TargetGroupArn: &f.tg,
				Attributes: []types.TargetGroupAttribute{{Key: aws.String("nope"), Value: aws.String("1")}}})
			return err
		}, "ValidationError: Target group attribute key 'nope' is not recognized"},
		{"target group in use", func() error {
			_, err := c.DeleteTargetGroup(ctx, &lb2.DeleteTargetGroupInput{TargetGroupArn: &f.tg})
			return err
		}, "ResourceInUse: Target group '" + f.tg + "' is currently in use by a listener or a rule"},
		{"network load balancer", func() error {
			_, err := c.CreateLoadBalancer(ctx, &lb2.CreateLoadBalancerInput{Name: aws.String("nlb"), Type: types.LoadBalancerTypeEnumNetwork, Subnets: []string{"subnet-a1", "subnet-b2", "subnet-c3"}})
			return err
		}, "ValidationError: Type: the sandbox serves application load balancers only"},
		{"one subnet", func() error {
			_, err := c.CreateLoadBalancer(ctx, &lb2.CreateLoadBalancerInput{Name: aws.String("one"), Subnets: []string{"subnet-a1"}})
			return err
		}, "ValidationError: At least two subnets in two different Availability Zones must be specified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := code(tc.call()); !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	// Typed errors, as the SDK models them.
	_, err := c.DescribeTargetHealth(ctx, &lb2.DescribeTargetHealthInput{TargetGroupArn: &missingTG})
	var nf *types.TargetGroupNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("TargetGroupNotFound is not the SDK's typed error: %T", err)
	}
}

// TestInMemory checks that an in-memory sandbox serves the API without a
// data plane: a listener gets no loopback address, and a health check,
// which needs a socket, fails.
func TestInMemory(t *testing.T) {
	sb := sandboxtest.Start(t, sandbox.Config{InMemory: true})
	c := lb2.NewFromConfig(aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(sb.Endpoint), HTTPClient: sb.HTTP,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""), RetryMaxAttempts: 1,
	})
	ctx := context.Background()
	f := setUp(t, ctx, c)
	stats := sb.Server.Balancers().Stats()
	if len(stats) != 1 || len(stats[0].Listeners) != 1 || stats[0].Listeners[0].Address != "" {
		t.Fatalf("in memory, a listener has no address: %+v", stats)
	}
	if _, err := c.ModifyTargetGroup(ctx, &lb2.ModifyTargetGroupInput{TargetGroupArn: &f.tg, HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	ids := runningInstances(t, sb, 1)
	if _, err := c.RegisterTargets(ctx, &lb2.RegisterTargetsInput{TargetGroupArn: &f.tg, Targets: []types.TargetDescription{{Id: &ids[0]}}}); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel := context.WithTimeout(ctx, waitBound)
	defer cancel()
	var seq int64
	for failed := 0; failed < 2; {
		evs, err := sb.Events.Wait(ctx2, seq, eventlog.All)
		if err != nil {
			t.Fatalf("health checks in memory: %v", err)
		}
		for _, e := range evs {
			seq = e.Seq
			if e.Kind == "lb-health-check" {
				if e.Result != string(types.TargetHealthReasonEnumFailedHealthChecks) {
					t.Fatalf("a health check in memory: %s, want Target.FailedHealthChecks", e.Result)
				}
				failed++
				sb.Clock.Advance(5 * time.Second)
			}
		}
	}
	th, err := c.DescribeTargetHealth(ctx, &lb2.DescribeTargetHealthInput{TargetGroupArn: &f.tg})
	if err != nil || th.TargetHealthDescriptions[0].TargetHealth.State != types.TargetHealthStateEnumUnhealthy {
		t.Errorf("after two failed checks: %+v, %v", th, err)
	}
}
