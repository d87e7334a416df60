package elb_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sandboxtest"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClient(t *testing.T) (*elb.Client, *sandboxtest.Sandbox) {
	t.Helper()
	sb := sandboxtest.Start(t, sandbox.Config{RelaxLimits: true})
	return elb.NewFromConfig(aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(sb.Endpoint), HTTPClient: sb.HTTP,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""), RetryMaxAttempts: 1,
	}), sb
}

func runningInstances(t *testing.T, sb *sandboxtest.Sandbox, n int) []string {
	t.Helper()
	if err := sb.World.CreateLaunchConfiguration(world.LaunchConfiguration{Name: "lc", ImageID: "ami-12345678", InstanceType: "t3.micro"}); err != nil {
		t.Fatal(err)
	}
	if err := sb.World.CreateAutoScalingGroup(world.CreateGroupInput{Name: "g", LaunchConfiguration: "lc", MinSize: &n, MaxSize: &n, Desired: &n, AvailabilityZones: []string{"us-east-1a"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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

func instanceIDs(is []types.Instance) []string {
	var out []string
	for _, i := range is {
		out = append(out, *i.InstanceId)
	}
	slices.Sort(out)
	return out
}

func TestClassicLoadBalancer(t *testing.T) {
	c, sb := newClient(t)
	ctx := context.Background()
	ids := runningInstances(t, sb, 2)
	out, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{
		LoadBalancerName: aws.String("old"), AvailabilityZones: []string{"us-east-1a"},
		Listeners: []types.Listener{{Protocol: aws.String("HTTP"), LoadBalancerPort: 80, InstancePort: aws.Int32(8080)}},
		Tags:      []types.Tag{{Key: aws.String("team"), Value: aws.String("web")}},
	})
	if err != nil || !strings.HasPrefix(*out.DNSName, "old-") || !strings.HasSuffix(*out.DNSName, ".us-east-1.elb.localhost") {
		t.Fatalf("CreateLoadBalancer: %+v, %v", out, err)
	}
	d, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerNames: []string{"old"}})
	if err != nil {
		t.Fatal(err)
	}
	desc := d.LoadBalancerDescriptions[0]
	if *desc.DNSName != *out.DNSName || *desc.HealthCheck.Target != "TCP:8080" || *desc.HealthCheck.Interval != 30 ||
		len(desc.ListenerDescriptions) != 1 || *desc.ListenerDescriptions[0].Listener.InstancePort != 8080 {
		t.Errorf("DescribeLoadBalancers = %+v", desc)
	}

	reg, err := c.RegisterInstancesWithLoadBalancer(ctx, &elb.RegisterInstancesWithLoadBalancerInput{LoadBalancerName: aws.String("old"),
		Instances: []types.Instance{{InstanceId: &ids[0]}}})
	if err != nil || !slices.Equal(instanceIDs(reg.Instances), ids[:1]) {
		t.Fatalf("Register one: %+v, %v", reg, err)
	}
	reg, err = c.RegisterInstancesWithLoadBalancer(ctx, &elb.RegisterInstancesWithLoadBalancerInput{LoadBalancerName: aws.String("old"),
		Instances: []types.Instance{{InstanceId: &ids[1]}}})
	if err != nil || !slices.Equal(instanceIDs(reg.Instances), ids) {
		t.Fatalf("the response lists every instance now registered: %+v, %v", reg, err)
	}
	h, err := c.DescribeInstanceHealth(ctx, &elb.DescribeInstanceHealthInput{LoadBalancerName: aws.String("old")})
	if err != nil || len(h.InstanceStates) != 2 {
		t.Fatalf("DescribeInstanceHealth: %+v, %v", h, err)
	}
	for _, s := range h.InstanceStates {
		if *s.State != "OutOfService" || *s.ReasonCode != "ELB" || *s.Description != "Instance registration is still in progress." {
			t.Errorf("just registered: %s %s %s %s", *s.InstanceId, *s.State, *s.ReasonCode, *s.Description)
		}
	}

	hc, err := c.ConfigureHealthCheck(ctx, &elb.ConfigureHealthCheckInput{LoadBalancerName: aws.String("old"), HealthCheck: &types.HealthCheck{
		Target: aws.String("HTTP:8080/health"), Interval: aws.Int32(10), Timeout: aws.Int32(5), HealthyThreshold: aws.Int32(2), UnhealthyThreshold: aws.Int32(3)}})
	if err != nil || *hc.HealthCheck.Target != "HTTP:8080/health" || *hc.HealthCheck.UnhealthyThreshold != 3 {
		t.Fatalf("ConfigureHealthCheck: %+v, %v", hc, err)
	}

	attrs, err := c.DescribeLoadBalancerAttributes(ctx, &elb.DescribeLoadBalancerAttributesInput{LoadBalancerName: aws.String("old")})
	if err != nil || attrs.LoadBalancerAttributes.ConnectionDraining.Enabled || *attrs.LoadBalancerAttributes.ConnectionDraining.Timeout != 300 {
		t.Fatalf("default attributes: %+v, %v", attrs, err)
	}
	mod, err := c.ModifyLoadBalancerAttributes(ctx, &elb.ModifyLoadBalancerAttributesInput{LoadBalancerName: aws.String("old"),
		LoadBalancerAttributes: &types.LoadBalancerAttributes{ConnectionDraining: &types.ConnectionDraining{Enabled: true, Timeout: aws.Int32(30)}}})
	if err != nil || !mod.LoadBalancerAttributes.ConnectionDraining.Enabled || *mod.LoadBalancerAttributes.ConnectionDraining.Timeout != 30 {
		t.Fatalf("ModifyLoadBalancerAttributes: %+v, %v", mod, err)
	}

	if _, err := c.AddTags(ctx, &elb.AddTagsInput{LoadBalancerNames: []string{"old"}, Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("test")}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.DescribeTags(ctx, &elb.DescribeTagsInput{LoadBalancerNames: []string{"old"}})
	if err != nil || len(tags.TagDescriptions) != 1 || len(tags.TagDescriptions[0].Tags) != 2 || *tags.TagDescriptions[0].Tags[0].Key != "env" {
		t.Fatalf("DescribeTags: %+v, %v", tags, err)
	}

	// No request in flight: deregistration completes at once, draining or not.
	dr, err := c.DeregisterInstancesFromLoadBalancer(ctx, &elb.DeregisterInstancesFromLoadBalancerInput{LoadBalancerName: aws.String("old"),
		Instances: []types.Instance{{InstanceId: &ids[0]}}})
	if err != nil || !slices.Equal(instanceIDs(dr.Instances), ids[1:]) {
		t.Fatalf("Deregister: %+v, %v", dr, err)
	}
	if _, err := c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerName: aws.String("old")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerName: aws.String("old")}); err != nil {
		t.Errorf("deleting a deleted classic load balancer succeeds on AWS: %v", err)
	}
}

func TestClassicErrors(t *testing.T) {
	c, sb := newClient(t)
	ctx := context.Background()
	ids := runningInstances(t, sb, 1)
	if _, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{LoadBalancerName: aws.String("old"), AvailabilityZones: []string{"us-east-1a"},
		Listeners: []types.Listener{{Protocol: aws.String("HTTP"), LoadBalancerPort: 80, InstancePort: aws.Int32(8080)}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"describe a missing load balancer", func() error {
			_, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerNames: []string{"nope"}})
			return err
		}, "LoadBalancerNotFound: There is no ACTIVE Load Balancer named 'nope'"},
		{"register with a missing load balancer", func() error {
			_, err := c.RegisterInstancesWithLoadBalancer(ctx, &elb.RegisterInstancesWithLoadBalancerInput{LoadBalancerName: aws.String("nope"), Instances: []types.Instance{{InstanceId: &ids[0]}}})
			return err
		}, "LoadBalancerNotFound: There is no ACTIVE Load Balancer named 'nope'"},
		{"register an unknown instance", func() error {
			_, err := c.RegisterInstancesWithLoadBalancer(ctx, &elb.RegisterInstancesWithLoadBalancerInput{LoadBalancerName: aws.String("old"), Instances: []types.Instance{{InstanceId: aws.String("i-0123456789abcdef0")}}})
			return err
		}, "InvalidInstance: The requested instance 'i-0123456789abcdef0' is not in a valid state or does not exist"},
		{"health of an instance not registered", func() error {
			_, err := c.DescribeInstanceHealth(ctx, &elb.DescribeInstanceHealthInput{LoadBalancerName: aws.String("old"), Instances: []types.Instance{{InstanceId: &ids[0]}}})
			return err
		}, "InvalidInstance: Could not find EC2 instance " + ids[0] + "."},
		{"same name again", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{LoadBalancerName: aws.String("old"), AvailabilityZones: []string{"us-east-1a"},
				Listeners: []types.Listener{{Protocol: aws.String("HTTP"), LoadBalancerPort: 81, InstancePort: aws.Int32(8080)}}})
			return err
		}, "DuplicateLoadBalancerName: "},
		{"health check target without a path", func() error {
			_, err := c.ConfigureHealthCheck(ctx, &elb.ConfigureHealthCheckInput{LoadBalancerName: aws.String("old"), HealthCheck: &types.HealthCheck{
				Target: aws.String("HTTP:8080"), Interval: aws.Int32(10), Timeout: aws.Int32(5), HealthyThreshold: aws.Int32(2), UnhealthyThreshold: aws.Int32(2)}})
			return err
		}, "ValidationError: HealthCheck.Target 'HTTP:8080' must be PROTOCOL:PORT[/PATH]"},
		{"draining timeout out of range", func() error {
			_, err := c.ModifyLoadBalancerAttributes(ctx, &elb.ModifyLoadBalancerAttributesInput{LoadBalancerName: aws.String("old"),
				LoadBalancerAttributes: &types.LoadBalancerAttributes{ConnectionDraining: &types.ConnectionDraining{Enabled: true, Timeout: aws.Int32(0)}}})
			return err
		}, "ValidationError: ConnectionDraining.Timeout must be between 1 and 3600 seconds"},
		{"no listener", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{LoadBalancerName: aws.String("empty"), AvailabilityZones: []string{"us-east-1a"}, Listeners: []types.Listener{}})
			return err
		}, "ValidationError: Listeners: give at least one listener"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := code(tc.call()); !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	_, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerNames: []string{"nope"}})
	var nf *types.AccessPointNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("LoadBalancerNotFound is not the SDK's typed AccessPointNotFoundException: %T", err)
	}
}
