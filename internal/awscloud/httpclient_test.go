package awscloud_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	sbautoscaling "github.com/lifeguardhq/lifeguard/internal/sandbox/autoscaling"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// retries records every error the SDK retried.
type retries struct {
	aws.RetryerV2
	mu   sync.Mutex
	errs []error
}

func (r *retries) GetRetryToken(ctx context.Context, opErr error) (func(error) error, error) {
	r.mu.Lock()
	r.errs = append(r.errs, opErr)
	r.mu.Unlock()
	return r.RetryerV2.GetRetryToken(ctx, opErr)
}

// The group TestLargeResponsesAreNotRetried reads, and how many times: 25
// instances make an uncompressed response large enough (9.7 KB); with 400
// reads, a run without OwnRequestBodies sees 80 to 90 retries (3 s under
// -race).
const (
	nInst  = 25
	nCalls = 400
)

// TestLargeResponsesAreNotRetried reads a 25-instance group 400 times
// from a server on the same host, which answers before net/http's write
// loop has finished with many of the requests. Without OwnRequestBodies,
// some of the calls fail with "use of closed network connection" on a 200
// and are retried. The client declines gzip: compressed, the sandbox's
// answer would fit in the transport's first read and survive the early
// close on its own, and this test is about answers that do not (larger
// groups, servers that do not compress).
func TestLargeResponsesAreNotRetried(t *testing.T) {
	w := world.New(world.Config{RelaxLimits: true}, simclock.NewSim(), nil, nil)
	srv := httptest.NewServer(sbautoscaling.New(w))
	t.Cleanup(w.Close)
	t.Cleanup(srv.Close)
	rt := &retries{RetryerV2: retry.NewStandard()}
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.DisableCompression = true
	t.Cleanup(tr.CloseIdleConnections)
	cfg := aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", ""),
		HTTPClient:  &http.Client{Transport: tr},
		Retryer:     func() aws.Retryer { return rt },
	}
	awscloud.OwnRequestBodies(&cfg)
	c := autoscaling.NewFromConfig(cfg)
	ctx := t.Context()
	if _, err := c.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{LaunchConfigurationName: aws.String("lc"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("big"), LaunchConfigurationName: aws.String("lc"), MinSize: aws.Int32(0), MaxSize: aws.Int32(nInst), DesiredCapacity: aws.Int32(nInst), AvailabilityZones: []string{"us-east-1a"}}); err != nil {
		t.Fatal(err)
	}
	for i := range nCalls {
		out, err := c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"big"}})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if n := len(out.AutoScalingGroups[0].Instances); n != nInst {
			t.Fatalf("call %d: %d instances, want %d", i, n, nInst)
		}
	}
	if len(rt.errs) > 0 {
		t.Errorf("%d of %d calls were retried; first: %v", len(rt.errs), nCalls, rt.errs[0])
	}
}
