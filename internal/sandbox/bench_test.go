package sandbox_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/smithy-go/middleware"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// BenchmarkGroupOf1000 launches a 1,000-instance group with no user data
// (each instance still gets its IMDS and API port) and then measures API
// latency against it through the real SDK over loopback HTTP. It reports
// instances/s for the launch and p50/p99 per operation, and how many calls
// the SDK had to retry. Those retries are the client's: when the sandbox
// answers before net/http's writeLoop has finished with the request, the
// writeLoop closes the reused connection ("use of closed network
// connection", aws-sdk-go-v2 issue 2737) and the SDK retries after a
// jittered backoff of up to a second, which is the tail of the p99. The
// p99 of the calls made in one attempt is reported besides.
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
	endpoint, stop, err := srv.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = stop() }()
	ctx := context.Background()

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
		call func(i int) (middleware.Metadata, error)
	}{
		{"DescribeAutoScalingGroups", func(int) (middleware.Metadata, error) {
			out, err := asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"big"}})
			if err != nil {
				return middleware.Metadata{}, err
			}
			return out.ResultMetadata, nil
		}},
		{"DescribeAutoScalingInstances", func(i int) (middleware.Metadata, error) {
			out, err := asg.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{ids[i%len(ids)]}})
			if err != nil {
				return middleware.Metadata{}, err
			}
			return out.ResultMetadata, nil
		}},
		{"SetInstanceHealth", func(i int) (middleware.Metadata, error) {
			out, err := asg.SetInstanceHealth(ctx, &autoscaling.SetInstanceHealthInput{InstanceId: aws.String(ids[i%len(ids)]), HealthStatus: aws.String("Healthy")})
			if err != nil {
				return middleware.Metadata{}, err
			}
			return out.ResultMetadata, nil
		}},
	}
	for _, op := range ops {
		all := make([]time.Duration, 0, 500)
		var once []time.Duration // calls that took one attempt
		for i := range 500 {
			t0 := time.Now()
			md, err := op.call(i)
			if err != nil {
				b.Fatalf("%s: %v", op.name, err)
			}
			d := time.Since(t0)
			all = append(all, d)
			if r, ok := retry.GetAttemptResults(md); !ok || len(r.Results) <= 1 {
				once = append(once, d)
			}
		}
		slices.Sort(all)
		slices.Sort(once)
		b.ReportMetric(ms(all[len(all)/2]), op.name+"-p50-ms")
		b.ReportMetric(ms(all[len(all)*99/100]), op.name+"-p99-ms")
		b.ReportMetric(ms(once[len(once)*99/100]), op.name+"-p99-one-attempt-ms")
		b.ReportMetric(float64(len(all)-len(once)), op.name+"-retried")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
