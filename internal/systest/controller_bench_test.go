package systest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// BenchmarkControllerIdle measures what `lifeguard controller` (the daemon,
// the real binary) costs when nothing happens: three opted-in groups of two
// InService instances whose leader tag has settled, the reaper on
// (--lease-table) and the queue sweep on (--reap-queues), no queue message.
// Every request the controller sends goes through a counting proxy in front
// of the sandbox. The daemon runs with --interval 10s for two minutes (12
// periodic reconciles of every group); the figures are per periodic
// reconcile, scaled to one hour at the default --interval of one minute
// (60 periodic reconciles an hour):
//
//   - reconciles/group-hour: reconciles of one group (each idle reconcile
//     reads its group once: DescribeAutoScalingGroups naming it);
//
//   - ec2-calls/group-hour: EC2 requests (DescribeInstances by the group's
//     tag; CreateTags and DeleteTags would count too, and are none when
//     idle);
//
//   - asg-calls/group-hour: Auto Scaling requests naming the group;
//
//   - shared-calls/hour: requests made once per periodic reconcile whatever
//     the number of groups (DescribeAutoScalingGroups listing the opted-in
//     groups, the sweep's ListQueues; DescribeInstances for the sweep only
//     when per-instance queues exist, none here).
//
//     go test -run='^$' -bench=ControllerIdle -benchtime=1x ./internal/systest/
func BenchmarkControllerIdle(b *testing.B) {
	const (
		groups   = 3
		interval = 10 * time.Second
		window   = 2 * time.Minute
	)
	for b.Loop() {
		controllerIdle(b, groups, interval, window)
	}
	b.ReportMetric(0, "ns/op")
}

// controllerIdle runs one measurement of BenchmarkControllerIdle.
func controllerIdle(b *testing.B, groups int, interval, window time.Duration) {
	sb := startSandbox(b, "--relax-limits")
	proxy := newCountingProxy(b, sb.endpoint)
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(sb.endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("sandbox", "sandbox", "")}
	asg, ec := autoscaling.NewFromConfig(cfg), ec2.NewFromConfig(cfg)
	ctx := context.Background()
	if _, err := asg.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String("lc"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro"),
		UserData: aws.String(base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\nexec sleep 3600\n"))),
	}); err != nil {
		b.Fatal(err)
	}
	names := make([]string, groups)
	for i := range names {
		names[i] = "idle-" + string(rune('a'+i))
		if _, err := asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
			AutoScalingGroupName: aws.String(names[i]), LaunchConfigurationName: aws.String("lc"),
			MinSize: aws.Int32(2), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(2), AvailabilityZones: []string{"us-east-1a"},
			Tags: []astypes.Tag{{Key: aws.String("lifeguard:controller"), Value: aws.String("enabled"), ResourceId: aws.String(names[i]), ResourceType: aws.String("auto-scaling-group")}},
		}); err != nil {
			b.Fatal(err)
		}
	}
	env := append(os.Environ(), "AWS_ENDPOINT_URL="+proxy.url, "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=sandbox",
		"AWS_SECRET_ACCESS_KEY=sandbox", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(b.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(b.TempDir(), "none"))
	mk := exec.Command(lifeguardBinary(b), "leader", "create-table", "--table", "leases")
	mk.Env = env
	if out, err := mk.CombinedOutput(); err != nil {
		b.Fatalf("leader create-table: %v %s", err, out)
	}
	ctl := exec.Command(lifeguardBinary(b), "controller", "--interval", interval.String(), "--lease-table", "leases", "--reap-queues")
	ctl.Env = env
	ctl.Stderr = &testWriter{t: b, prefix: "controller: "}
	if err := ctl.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ctl.Process.Kill(); _ = ctl.Wait() })

	// Settled: every group InService with exactly one leader tag.
	for deadline := time.Now().Add(2 * time.Minute); !idleSettled(b, ec, asg, names); {
		if time.Now().After(deadline) {
			b.Fatal("the groups did not settle within two minutes")
		}
		time.Sleep(500 * time.Millisecond) // polling the sandbox
	}
	time.Sleep(interval) // one more periodic reconcile: all at rest
	before := proxy.snapshot()
	time.Sleep(window)
	after := proxy.snapshot()
	d := map[string]int{}
	for k, v := range after {
		if n := v - before[k]; n > 0 {
			d[k] = n
		}
	}
	ticks := d["autoscaling:DescribeAutoScalingGroups:list"]
	if ticks == 0 {
		b.Fatalf("no periodic reconcile in %v: %v", window, d)
	}
	perGroupHour := func(n int) float64 { return float64(n) / float64(ticks) / float64(groups) * 60 }
	ec2Calls, asgCalls := 0, 0
	for k, n := range d {
		switch {
		case strings.HasPrefix(k, "ec2:"):
			ec2Calls += n
		case k == "autoscaling:DescribeAutoScalingGroups:named":
			asgCalls += n
		}
	}
	shared := ticks + d["sqs:ListQueues"]
	b.ReportMetric(perGroupHour(d["autoscaling:DescribeAutoScalingGroups:named"]), "reconciles/group-hour")
	b.ReportMetric(perGroupHour(ec2Calls), "ec2-calls/group-hour")
	b.ReportMetric(perGroupHour(asgCalls), "asg-calls/group-hour")
	b.ReportMetric(float64(shared)/float64(ticks)*60, "shared-calls/hour")
	b.Logf("idle %v at --interval %v, %d groups: %d periodic reconciles, requests %v", window, interval, groups, ticks, d)
}

// idleSettled reports whether every group has its instances InService and
// exactly one of them tagged app:isLeader=true.
func idleSettled(tb testing.TB, ec *ec2.Client, asg *autoscaling.Client, names []string) bool {
	ctx := context.Background()
	gs, err := asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: names})
	if err != nil {
		tb.Fatal(err)
	}
	for _, g := range gs.AutoScalingGroups {
		n := 0
		for _, i := range g.Instances {
			if i.LifecycleState == astypes.LifecycleStateInService {
				n++
			}
		}
		if n != 2 {
			return false
		}
		out, err := ec.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: aws.String("tag:aws:autoscaling:groupName"), Values: []string{aws.ToString(g.AutoScalingGroupName)}},
			{Name: aws.String("tag:app:isLeader"), Values: []string{"true"}},
		}})
		if err != nil {
			tb.Fatal(err)
		}
		tagged := 0
		for _, r := range out.Reservations {
			tagged += len(r.Instances)
		}
		if tagged != 1 {
			return false
		}
	}
	return len(gs.AutoScalingGroups) == len(names)
}

// countingProxy forwards to the sandbox and counts requests by service and
// operation ("ec2:DescribeInstances", "sqs:ListQueues"; Auto Scaling's
// DescribeAutoScalingGroups split into :named and :list).
type countingProxy struct {
	url   string
	mu    sync.Mutex
	calls map[string]int
}

func newCountingProxy(tb testing.TB, target string) *countingProxy {
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	p := &countingProxy{calls: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.count(r, body)
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *countingProxy) count(r *http.Request, body []byte) {
	var key string
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		svc, op, _ := strings.Cut(target, ".")
		switch {
		case strings.HasPrefix(svc, "AmazonSQS"):
			svc = "sqs"
		case strings.HasPrefix(svc, "DynamoDB"):
			svc = "dynamodb"
		}
		key = svc + ":" + op
	} else if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
		op := form.Get("Action")
		svc := "other"
		switch {
		case form.Get("Version") == "2011-01-01":
			svc = "autoscaling"
		case strings.HasPrefix(form.Get("Version"), "2016-11-15"):
			svc = "ec2"
		case form.Get("Version") == "2010-03-31":
			svc = "sns"
		case form.Get("Version") == "2012-11-05":
			svc = "sqs"
		}
		key = svc + ":" + op
		if op == "DescribeAutoScalingGroups" {
			if form.Get("AutoScalingGroupNames.member.1") != "" {
				key += ":named"
			} else {
				key += ":list"
			}
		}
	} else {
		key = "unknown:" + r.Method + " " + r.URL.Path
	}
	p.mu.Lock()
	p.calls[key]++
	p.mu.Unlock()
}

func (p *countingProxy) snapshot() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.calls)
}
