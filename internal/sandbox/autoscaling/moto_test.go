package autoscaling_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	asg "github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/lifeguardhq/lifeguard/internal/interop"
)

// startMoto runs moto_server on a free loopback port for the test. A
// missing moto_server skips loudly, and fails under CI=true.
func startMoto(t *testing.T) string { return interop.Moto(t) }

// lbObservation is what one run of the load balancer scenario saw.
type lbObservation struct {
	groupTGs, afterAttach, afterDetach []string // TargetGroupARNs; "state" per attached target group
	targets, targetsAfterDetach        []string // "id:port" in the target group
}

// observeLoadBalancers attaches a target group to a group of one instance,
// reads what Auto Scaling and ELBv2 report, detaches it and reads again.
// vpc returns the VPC to create the target group in.
func observeLoadBalancers(t *testing.T, endpoint string, client *http.Client, vpc func(aws.Config) string) lbObservation {
	t.Helper()
	cfg := aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), HTTPClient: client, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	}
	as, lb := asg.NewFromConfig(cfg), elbv2.NewFromConfig(cfg)
	ctx := t.Context()
	tg, err := lb.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: aws.String("web"), Protocol: elbv2types.ProtocolEnumHttp, Port: aws.Int32(8080), VpcId: aws.String(vpc(cfg))})
	if err != nil {
		t.Fatalf("CreateTargetGroup: %v", err)
	}
	arn := aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	if _, err := as.CreateLaunchConfiguration(ctx, &asg.CreateLaunchConfigurationInput{LaunchConfigurationName: aws.String("lc"), ImageId: aws.String(imageID), InstanceType: aws.String("t3.micro")}); err != nil {
		t.Fatal(err)
	}
	if _, err := as.CreateAutoScalingGroup(ctx, &asg.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("g"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(1), AvailabilityZones: []string{"us-east-1a"}}); err != nil {
		t.Fatal(err)
	}
	// Wait until the instance is in service (moto: at once).
	deadline := time.Now().Add(waitBound)
	for {
		g, err := as.DescribeAutoScalingGroups(ctx, &asg.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"g"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(g.AutoScalingGroups[0].Instances) == 1 && g.AutoScalingGroups[0].Instances[0].LifecycleState == "InService" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the instance never entered service")
		}
		time.Sleep(10 * time.Millisecond) // polling another implementation over the wire
	}
	states := func() []string {
		out, err := as.DescribeLoadBalancerTargetGroups(ctx, &asg.DescribeLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String("g")})
		if err != nil {
			t.Fatal(err)
		}
		s := []string{}
		for _, x := range out.LoadBalancerTargetGroups {
			s = append(s, aws.ToString(x.State))
		}
		return s
	}
	targets := func() []string {
		out, err := lb.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		s := []string{}
		for _, d := range out.TargetHealthDescriptions {
			s = append(s, fmt.Sprintf("%s:%d", aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port)))
		}
		return s
	}
	var o lbObservation
	if _, err := as.AttachLoadBalancerTargetGroups(ctx, &asg.AttachLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String("g"), TargetGroupARNs: []string{arn}}); err != nil {
		t.Fatal(err)
	}
	o.afterAttach, o.targets = states(), targets()
	g, err := as.DescribeAutoScalingGroups(ctx, &asg.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"g"}})
	if err != nil {
		t.Fatal(err)
	}
	o.groupTGs = slices.Clone(g.AutoScalingGroups[0].TargetGroupARNs)
	for i, a := range o.groupTGs {
		if a == arn {
			o.groupTGs[i] = "the target group"
		}
	}
	id := aws.ToString(g.AutoScalingGroups[0].Instances[0].InstanceId)
	for i, x := range o.targets {
		if x == id+":8080" {
			o.targets[i] = "the instance:8080"
		}
	}
	if _, err := as.DetachLoadBalancerTargetGroups(ctx, &asg.DetachLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String("g"), TargetGroupARNs: []string{arn}}); err != nil {
		t.Fatal(err)
	}
	// The instance had no request in flight: its deregistration completes
	// at once on both.
	o.afterDetach, o.targetsAfterDetach = states(), targets()
	return o
}

// TestLoadBalancerTargetGroupsAgainstMoto runs the same attach and detach on
// moto_server and on the sandbox and compares what the two report.
func TestLoadBalancerTargetGroupsAgainstMoto(t *testing.T) {
	moto := startMoto(t)
	transport := &http.Transport{Proxy: nil}
	t.Cleanup(transport.CloseIdleConnections)
	want := observeLoadBalancers(t, moto, &http.Client{Transport: transport}, func(cfg aws.Config) string {
		vpcs, err := ec2.NewFromConfig(cfg).DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{})
		if err != nil || len(vpcs.Vpcs) == 0 {
			t.Fatalf("moto's default VPC: %v", err)
		}
		return aws.ToString(vpcs.Vpcs[0].VpcId)
	})
	e := newEnv(t)
	got := observeLoadBalancers(t, e.url, e.http, func(aws.Config) string { return "vpc-0a1b2c3d" })
	checkFields(t, "sandbox against moto", []field{
		{"TargetGroupARNs", got.groupTGs, want.groupTGs},
		{"states after attaching", got.afterAttach, want.afterAttach},
		{"targets after attaching", got.targets, want.targets},
		{"states after detaching", got.afterDetach, want.afterDetach},
		{"targets after detaching", got.targetsAfterDetach, want.targetsAfterDetach},
	})
	t.Logf("moto: %+v", want)
}
