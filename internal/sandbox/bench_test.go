package sandbox_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// BenchmarkGroupOf1000 launches a 1,000-instance group with no user data
// (each instance still gets its IMDS and API port) and then measures API
// latency against it through the real SDK over loopback HTTP. It reports
// instances/s for the launch and p50/p99 per operation.
//
//	go test -run='^$' -bench=GroupOf1000 -benchtime=1x ./internal/sandbox/
func BenchmarkGroupOf1000(b *testing.B) {
	for range b.N {
		benchGroup(b, 1000)
	}
}

func benchGroup(b *testing.B, n int) {
	srv, err := sandbox.New(sandbox.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	endpoint, err := srv.Listen()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()

	asg := autoscaling.NewFromConfig(aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", ""),
	})
	if _, err := asg.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String("lc"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro"),
	}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("big"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(int32(n)), DesiredCapacity: aws.Int32(int32(n)),
		AvailabilityZones: []string{"us-east-1a", "us-east-1b", "us-east-1c"},
	}); err != nil {
		b.Fatal(err)
	}
	var seq int64
	inService := 0
	for inService < n {
		evs, err := srv.World().EventsAfter(ctx, seq)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range evs {
			seq = e.Seq
			if e.Kind == world.EvInstanceState && e.State == world.StateInService {
				inService++
			}
		}
	}
	launch := time.Since(start)
	b.ReportMetric(float64(n)/launch.Seconds(), "instances/s")

	views, _ := srv.World().Groups([]string{"big"}, nil)
	ids := views[0].Instances
	ops := []struct {
		name string
		call func(i int) error
	}{
		{"DescribeAutoScalingGroups", func(int) error {
			_, err := asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"big"}})
			return err
		}},
		{"DescribeAutoScalingInstances", func(i int) error {
			_, err := asg.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{ids[i%len(ids)]}})
			return err
		}},
		{"SetInstanceHealth", func(i int) error {
			_, err := asg.SetInstanceHealth(ctx, &autoscaling.SetInstanceHealthInput{InstanceId: aws.String(ids[i%len(ids)]), HealthStatus: aws.String("Healthy")})
			return err
		}},
	}
	for _, op := range ops {
		lat := make([]time.Duration, 0, 500)
		for i := range 500 {
			t0 := time.Now()
			if err := op.call(i); err != nil {
				b.Fatalf("%s: %v", op.name, err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, fmt.Sprintf("%s-p50-ms", op.name))
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, fmt.Sprintf("%s-p99-ms", op.name))
	}
}
