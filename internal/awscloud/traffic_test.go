package awscloud_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/lb"
)

// trafficMoto starts moto_server with a running instance in a VPC, a
// target group in that VPC and a classic load balancer, and returns the SDK
// configuration, the instance, the target group's ARN and the VPC.
func trafficMoto(t *testing.T) (cfg aws.Config, instance, tgARN, vpc string) {
	t.Helper()
	cfg = leaseMoto(t)
	ctx := t.Context()
	e := ec2.NewFromConfig(cfg)
	v, err := e.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	vpc = aws.ToString(v.Vpc.VpcId)
	sn, err := e.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(vpc), CidrBlock: aws.String("10.0.1.0/24"), AvailabilityZone: aws.String("us-east-1a")})
	if err != nil {
		t.Fatal(err)
	}
	run, err := e.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: sn.Subnet.SubnetId})
	if err != nil {
		t.Fatal(err)
	}
	instance = aws.ToString(run.Instances[0].InstanceId)
	tg, err := elasticloadbalancingv2.NewFromConfig(cfg).CreateTargetGroup(ctx, &elasticloadbalancingv2.CreateTargetGroupInput{
		Name: aws.String("web"), Protocol: "HTTP", Port: aws.Int32(80), VpcId: aws.String(vpc)})
	if err != nil {
		t.Fatal(err)
	}
	tgARN = aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	if _, err := elasticloadbalancing.NewFromConfig(cfg).CreateLoadBalancer(ctx, &elasticloadbalancing.CreateLoadBalancerInput{
		LoadBalancerName:  aws.String("web-classic"),
		Listeners:         []elbtypes.Listener{{Protocol: aws.String("HTTP"), LoadBalancerPort: 80, InstancePort: aws.Int32(8080)}},
		AvailabilityZones: []string{"us-east-1a"},
	}); err != nil {
		t.Fatal(err)
	}
	return cfg, instance, tgARN, vpc
}

func health(t *testing.T, r lb.Registrar, instance string, target lb.Target) lb.Health {
	t.Helper()
	h, err := r.Health(t.Context(), instance, target)
	if err != nil {
		t.Fatalf("Health(%s): %v", target, err)
	}
	return h
}

// TestRegistrarsAgainstMoto registers, reads and deregisters an instance
// with a target group and a classic load balancer on moto_server, and maps
// the errors of a missing target group and load balancer.
func TestRegistrarsAgainstMoto(t *testing.T) {
	cfg, instance, tgARN, _ := trafficMoto(t)
	ctx := t.Context()
	t.Run("target group", func(t *testing.T) {
		r := awscloud.NewELBv2(cfg)
		tg := lb.Target{Kind: lb.KindTargetGroup, Name: tgARN, Port: 8080}
		if h := health(t, r, instance, tg); h.State != lb.StateUnused || h.Reason != "Target.NotRegistered" {
			t.Errorf("before registration: %+v, want unused (Target.NotRegistered)", h)
		}
		for range 2 { // registering twice is not an error
			if err := r.Register(ctx, instance, tg); err != nil {
				t.Fatalf("Register: %v", err)
			}
		}
		// moto reports a registered running instance healthy at once.
		if h := health(t, r, instance, tg); h.State != lb.StateHealthy {
			t.Errorf("after registration: %+v, want healthy", h)
		}
		if err := r.Deregister(ctx, instance, tg); err != nil {
			t.Fatalf("Deregister: %v", err)
		}
		if h := health(t, r, instance, tg); h.State != lb.StateUnused {
			t.Errorf("after deregistration: %+v, want unused", h)
		}
		// moto refuses to deregister a target that is not registered
		// (InvalidTarget), which lb.Traffic takes as nothing to drain.
		if err := r.Deregister(ctx, instance, tg); err != nil && !errors.Is(err, lb.ErrInvalidTarget) {
			t.Errorf("second Deregister = %v, want nil or lb.ErrInvalidTarget", err)
		}
		gone := lb.Target{Kind: lb.KindTargetGroup, Name: strings.Replace(tgARN, "targetgroup/web/", "targetgroup/gone/", 1)}
		if _, err := r.Health(ctx, instance, gone); !errors.Is(err, lb.ErrNotFound) {
			t.Errorf("Health(missing target group) = %v, want lb.ErrNotFound", err)
		}
		if err := r.Register(ctx, instance, gone); !errors.Is(err, lb.ErrNotFound) {
			t.Errorf("Register(missing target group) = %v, want lb.ErrNotFound", err)
		}
	})
	t.Run("classic load balancer", func(t *testing.T) {
		r := awscloud.NewELB(cfg)
		elb := lb.Target{Kind: lb.KindClassic, Name: "web-classic"}
		if h := health(t, r, instance, elb); h.State != lb.StateUnused {
			t.Errorf("before registration: %+v, want unused", h)
		}
		if err := r.Register(ctx, instance, elb); err != nil {
			t.Fatalf("Register: %v", err)
		}
		if h := health(t, r, instance, elb); h.State != lb.StateHealthy {
			t.Errorf("after registration: %+v, want healthy (InService)", h)
		}
		if err := r.Deregister(ctx, instance, elb); err != nil {
			t.Fatalf("Deregister: %v", err)
		}
		if h := health(t, r, instance, elb); h.State != lb.StateUnused {
			t.Errorf("after deregistration: %+v, want unused", h)
		}
		gone := lb.Target{Kind: lb.KindClassic, Name: "nope"}
		if _, err := r.Health(ctx, instance, gone); !errors.Is(err, lb.ErrNotFound) {
			t.Errorf("Health(missing load balancer) = %v, want lb.ErrNotFound", err)
		}
	})
	t.Run("whole cycle through lb.Traffic", func(t *testing.T) {
		tr := &lb.Traffic{Registrars: map[lb.Kind]lb.Registrar{lb.KindTargetGroup: awscloud.NewELBv2(cfg), lb.KindClassic: awscloud.NewELB(cfg)}}
		targets := []lb.Target{{Kind: lb.KindTargetGroup, Name: tgARN}, {Kind: lb.KindClassic, Name: "web-classic"}}
		if err := tr.Register(ctx, instance, targets); err != nil {
			t.Fatal(err)
		}
		if err := tr.WaitHealthy(ctx, instance, targets, 30e9); err != nil {
			t.Fatal(err)
		}
		if err := tr.Deregister(ctx, instance, targets); err != nil {
			t.Fatal(err)
		}
		if err := tr.WaitDrained(ctx, instance, targets, 30e9); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTrafficSourcesAgainstMoto reads a group's attached target groups and
// an instance's lifeguard tags on moto_server.
func TestTrafficSourcesAgainstMoto(t *testing.T) {
	cfg, instance, tgARN, _ := trafficMoto(t)
	ctx := context.Background()
	asg := autoscaling.NewFromConfig(cfg)
	if _, err := asg.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String("lc"), ImageId: aws.String("ami-12c6146b"), InstanceType: aws.String("t3.micro"),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("g"), LaunchConfigurationName: aws.String("lc"), MinSize: aws.Int32(0), MaxSize: aws.Int32(1),
		AvailabilityZones: []string{"us-east-1a"}, TargetGroupARNs: []string{tgARN}, LoadBalancerNames: []string{"web-classic"},
	}); err != nil {
		t.Fatal(err)
	}
	at, err := awscloud.NewAutoScaling(cfg).Attachments(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if !at.Attached(lb.Target{Kind: lb.KindTargetGroup, Name: tgARN}) || !at.Attached(lb.Target{Kind: lb.KindClassic, Name: "web-classic"}) {
		t.Errorf("Attachments = %+v, want the target group and the load balancer", at)
	}
	if _, err := awscloud.NewAutoScaling(cfg).Attachments(ctx, "nope"); err == nil {
		t.Error("Attachments(missing group) = nil error")
	}

	tags := awscloud.NewInstanceTags(cfg)
	if err := tags.SetTag(ctx, instance, "lifeguard:target-groups", tgARN+"=8080"); err != nil {
		t.Fatal(err)
	}
	if err := tags.SetTag(ctx, instance, "Name", "web"); err != nil {
		t.Fatal(err)
	}
	got, err := tags.Tags(ctx, instance, "lifeguard:target-groups", "lifeguard:load-balancers")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["lifeguard:target-groups"] != tgARN+"=8080" {
		t.Errorf("Tags = %q, want only lifeguard:target-groups", got)
	}
}
