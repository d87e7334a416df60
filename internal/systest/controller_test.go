package systest_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// seedCheck is the seed's leader check: it reads the instance's own
// app:isLeader tag from instance metadata (IMDSv2) into the file
// is-leader, five times a second.
const seedCheck = `EP=$AWS_EC2_METADATA_SERVICE_ENDPOINT
while :; do
  T=$(curl -s -X PUT "$EP/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 60")
  v=$(curl -s -f -H "X-aws-ec2-metadata-token: $T" "$EP/latest/meta-data/tags/instance/app:isLeader")
  echo "$v" > is-leader.tmp && mv is-leader.tmp is-leader
  sleep 0.2
done`

// seedInstance is the user data of the scenarios' instances: the seed's
// check in the background, and the agent in leader.mode tag, whose marker
// file is the-leader.
func seedInstance(bin string) string {
	return agentScript(bin, `leader:
  mode: tag
  poll_interval: 500ms
  marker_file: $PWD/the-leader
`, "( "+seedCheck+" ) &\nexec BIN agent --config agent.yaml")
}

// tagSampler samples, every 50 ms, the instances tagged app:isLeader=true
// per group and measures the longest windows with two or more tagged
// instances, with two or more tagged instances Auto Scaling has not
// started terminating, and with none.
type tagSampler struct {
	c      clients
	groups []string

	mu      sync.Mutex
	samples int
	// since is when the current run of each condition started, per group.
	twoSince, liveTwoSince, zeroSince map[string]time.Time
	maxTwo, maxLiveTwo, maxZero       time.Duration
	nTwo, nLiveTwo, nZero             int             // samples in each condition
	armed                             map[string]bool // a group has had its first leader
}

func newTagSampler(c clients, groups ...string) *tagSampler {
	return &tagSampler{c: c, groups: groups, twoSince: map[string]time.Time{}, liveTwoSince: map[string]time.Time{}, zeroSince: map[string]time.Time{}, armed: map[string]bool{}}
}

func (s *tagSampler) run(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		gs, err := s.c.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: s.groups})
		if err != nil {
			continue
		}
		out, err := s.c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: aws.String("tag:app:isLeader"), Values: []string{"true"}},
			{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
		}})
		if err != nil {
			continue
		}
		state := map[string]string{}
		for _, g := range gs.AutoScalingGroups {
			for _, i := range g.Instances {
				state[aws.ToString(i.InstanceId)] = string(i.LifecycleState)
			}
		}
		tagged, live := map[string]int{}, map[string]int{}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				for _, tg := range i.Tags {
					if aws.ToString(tg.Key) == "aws:autoscaling:groupName" {
						g := aws.ToString(tg.Value)
						tagged[g]++
						if st := state[aws.ToString(i.InstanceId)]; st != "" && !strings.HasPrefix(st, "Terminating") {
							live[g]++
						}
					}
				}
			}
		}
		now := time.Now()
		s.mu.Lock()
		s.samples++
		for _, g := range s.groups {
			track := func(on bool, since map[string]time.Time, longest *time.Duration, n *int) {
				if !on {
					delete(since, g)
					return
				}
				*n++
				if _, ok := since[g]; !ok {
					since[g] = now
				}
				*longest = max(*longest, now.Sub(since[g]))
			}
			if tagged[g] > 0 {
				s.armed[g] = true
			}
			track(tagged[g] >= 2, s.twoSince, &s.maxTwo, &s.nTwo)
			track(live[g] >= 2, s.liveTwoSince, &s.maxLiveTwo, &s.nLiveTwo)
			track(s.armed[g] && tagged[g] == 0, s.zeroSince, &s.maxZero, &s.nZero)
		}
		s.mu.Unlock()
	}
}

// untilTagMoves returns how long it took for an instance of group other
// than old to be tagged, polling every 10 ms.
func untilTagMoves(t *testing.T, c clients, group, old string) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 30*time.Second {
		out, err := c.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: aws.String("tag:aws:autoscaling:groupName"), Values: []string{group}},
			{Name: aws.String("tag:app:isLeader"), Values: []string{"true"}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				if aws.ToString(i.InstanceId) != old {
					return time.Since(start)
				}
			}
		}
		time.Sleep(10 * time.Millisecond) // polling the tags
	}
	t.Fatalf("no instance of %s other than %s tagged within 30 s", group, old)
	return 0
}

// settled waits until each group has exactly one tagged instance, InService
// and healthy, and the seed's check and the agent (in tag mode) on every
// InService instance agree.
func settled(t *testing.T, c clients, stateDir string, groups ...string) map[string]string {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(90 * time.Second)
	for {
		leaders, bad := map[string]string{}, []string{}
		gs, err := c.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: groups})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gs.AutoScalingGroups {
			name := aws.ToString(g.AutoScalingGroupName)
			if len(g.Instances) != int(aws.ToInt32(g.DesiredCapacity)) {
				bad = append(bad, fmt.Sprintf("%s: %d instances, desired %d", name, len(g.Instances), aws.ToInt32(g.DesiredCapacity)))
				continue
			}
			var ids []string
			inService := map[string]bool{}
			for _, i := range g.Instances {
				id := aws.ToString(i.InstanceId)
				ids = append(ids, id)
				inService[id] = i.LifecycleState == astypes.LifecycleStateInService && aws.ToString(i.HealthStatus) == "Healthy"
			}
			out, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
				{Name: aws.String("tag:aws:autoscaling:groupName"), Values: []string{name}},
				{Name: aws.String("tag:app:isLeader"), Values: []string{"true"}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			var tagged []string
			for _, r := range out.Reservations {
				for _, i := range r.Instances {
					tagged = append(tagged, aws.ToString(i.InstanceId))
				}
			}
			if len(tagged) != 1 || !inService[tagged[0]] {
				bad = append(bad, fmt.Sprintf("%s: tagged %v", name, tagged))
				continue
			}
			leaders[name] = tagged[0]
			for _, id := range ids {
				if !inService[id] {
					bad = append(bad, fmt.Sprintf("%s: %s not yet InService and healthy", name, id))
					continue
				}
				b, _ := os.ReadFile(filepath.Join(stateDir, "instances", id, "is-leader"))
				if got, want := strings.TrimSpace(string(b)), map[bool]string{true: "true"}[id == tagged[0]]; got != want {
					bad = append(bad, fmt.Sprintf("%s: the seed's check on %s reads %q, want %q", name, id, got, want))
				}
				_, err := os.Stat(filepath.Join(stateDir, "instances", id, "the-leader"))
				if marked := err == nil; marked != (id == tagged[0]) {
					bad = append(bad, fmt.Sprintf("%s: the agent's marker on %s exists: %t", name, id, marked))
				}
			}
		}
		if len(bad) == 0 {
			return leaders
		}
		if time.Now().After(deadline) {
			t.Fatalf("groups did not settle: %v", bad)
		}
		time.Sleep(100 * time.Millisecond) // polling the sandbox
	}
}

// TestControllerDaemon runs the seed's system with lifeguard controller as
// a daemon: Auto Scaling notifications (and terminate lifecycle
// notifications) to an SNS topic, the topic to an SQS queue, `lifeguard
// controller --queue-url`, two opted-in groups whose instances run the
// seed's own leader check against IMDS tags. After each scenario exactly
// one instance per group is tagged; the longest windows with two tagged
// instances and with none are logged.
func TestControllerDaemon(t *testing.T) {
	seedSystem(t, func(t *testing.T, cfg aws.Config, topicARN string) {
		q, topics := sqs.NewFromConfig(cfg), sns.NewFromConfig(cfg)
		url, queueARN := queue(t, q, "lifeguard-controller")
		if _, err := topics.Subscribe(context.Background(), &sns.SubscribeInput{TopicArn: aws.String(topicARN), Protocol: aws.String("sqs"), Endpoint: aws.String(queueARN)}); err != nil {
			t.Fatal(err)
		}
		ctl := exec.Command(lifeguardBinary(t), "controller", "--queue-url", url, "--interval", "10s", "--settle", "200ms")
		ctl.Stderr = &testWriter{t: t, prefix: "controller: "}
		if err := ctl.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ctl.Process.Kill(); _ = ctl.Wait() })
	})
}

// TestControllerLambda runs the seed's system exactly as its text
// describes it: the controller built as a Lambda zip (its bootstrap is the
// lifeguard binary), subscribed to the groups' SNS topic, with a reserved
// concurrency of one and a schedule rule for the periodic reconcile.
func TestControllerLambda(t *testing.T) {
	seedSystem(t, func(t *testing.T, cfg aws.Config, topicARN string) {
		ctx := context.Background()
		fns, topics, rules := lambda.NewFromConfig(cfg), sns.NewFromConfig(cfg), eventbridge.NewFromConfig(cfg)
		code := zipBootstrap(t, lifeguardBinary(t))
		fn, err := fns.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String("lifeguard-controller"), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
			Role: aws.String("arn:aws:iam::123456789012:role/lifeguard-controller"), Timeout: aws.Int32(60),
			Code:        &lambdatypes.FunctionCode{ZipFile: code},
			Environment: &lambdatypes.Environment{Variables: map[string]string{"LIFEGUARD_CONTROLLER_FLAGS": "--settle 200ms"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fns.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: fn.FunctionName, ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
		if _, err := fns.AddPermission(ctx, &lambda.AddPermissionInput{
			FunctionName: fn.FunctionName, StatementId: aws.String("sns"), Action: aws.String("lambda:InvokeFunction"),
			Principal: aws.String("sns.amazonaws.com"), SourceArn: aws.String(topicARN),
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := topics.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(topicARN), Protocol: aws.String("lambda"), Endpoint: fn.FunctionArn}); err != nil {
			t.Fatal(err)
		}
		if _, err := rules.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("lifeguard-reconcile"), ScheduleExpression: aws.String("rate(1 minute)")}); err != nil {
			t.Fatal(err)
		}
		if _, err := rules.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("lifeguard-reconcile"), Targets: []ebtypes.Target{{Id: aws.String("controller"), Arn: fn.FunctionArn}}}); err != nil {
			t.Fatal(err)
		}
	})
}

// zipBootstrap returns a Lambda zip whose executable bootstrap is the file
// at path.
func zipBootstrap(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// seedSystem builds the seed's system around a controller that deploy
// starts, fed by the topic topicARN: two opted-in groups whose instances
// run the seed's check, notifying the topic; then it runs the scenarios.
func seedSystem(t *testing.T, deploy func(t *testing.T, cfg aws.Config, topicARN string)) {
	sb := startSandbox(t, "--relax-limits")
	cfg := sdkConfig(t, sb.endpoint)
	c := newClients(cfg)
	topics := sns.NewFromConfig(cfg)
	ctx := context.Background()
	topic, err := topics.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("asg-events")})
	if err != nil {
		t.Fatal(err)
	}
	deploy(t, cfg, aws.ToString(topic.TopicArn))
	lt, err := c.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("seed"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{
			ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: ec2types.InstanceTypeT3Micro,
			UserData:        aws.String(b64(seedInstance(lifeguardBinary(t)))),
			MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{InstanceMetadataTags: ec2types.LaunchTemplateInstanceMetadataTagsStateEnabled, HttpTokens: ec2types.LaunchTemplateHttpTokensStateRequired},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	groups := []string{"blue", "green"}
	for _, g := range groups {
		if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
			AutoScalingGroupName: aws.String(g), LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId},
			MinSize: aws.Int32(0), MaxSize: aws.Int32(6), DesiredCapacity: aws.Int32(2), AvailabilityZones: []string{"us-east-1a"},
			Tags: []astypes.Tag{{Key: aws.String("lifeguard:controller"), Value: aws.String("enabled"), ResourceId: aws.String(g), ResourceType: aws.String("auto-scaling-group")}},
			LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{{
				LifecycleHookName: aws.String("leaving"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"),
				NotificationTargetARN: topic.TopicArn, RoleARN: aws.String("arn:aws:iam::123456789012:role/asg-notify"),
				HeartbeatTimeout: aws.Int32(5), DefaultResult: aws.String("CONTINUE"),
			}},
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.asg.PutNotificationConfiguration(ctx, &autoscaling.PutNotificationConfigurationInput{
			AutoScalingGroupName: aws.String(g), TopicARN: topic.TopicArn,
			NotificationTypes: []string{"autoscaling:EC2_INSTANCE_LAUNCH", "autoscaling:EC2_INSTANCE_TERMINATE", "autoscaling:EC2_INSTANCE_LAUNCH_ERROR", "autoscaling:EC2_INSTANCE_TERMINATE_ERROR"},
		}); err != nil {
			t.Fatal(err)
		}
	}

	sctx, stop := context.WithCancel(ctx)
	s := newTagSampler(c, groups...)
	var wg sync.WaitGroup
	wg.Go(func() { s.run(sctx) })
	defer func() {
		stop()
		wg.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		t.Logf("%d samples every 50 ms: two or more tagged instances in %d samples, longest window %v (not terminating: %d samples, %v); none tagged in %d samples, longest window %v",
			s.samples, s.nTwo, s.maxTwo, s.nLiveTwo, s.maxLiveTwo, s.nZero, s.maxZero)
	}()

	start := time.Now()
	leaders := settled(t, c, sb.stateDir, groups...)
	t.Logf("first leaders %v after %v", leaders, time.Since(start))
	step := func(name string, do func()) {
		t.Helper()
		start := time.Now()
		do()
		leaders = settled(t, c, sb.stateDir, groups...)
		t.Logf("%s: leaders %v, settled in %v", name, leaders, time.Since(start))
	}
	setDesiredAll := func(n int32) {
		for _, g := range groups {
			setDesired(t, c, g, n)
		}
	}
	step("scale-out", func() { setDesiredAll(4) })
	step("scale-in", func() { setDesiredAll(2) })
	step("termination of the leader", func() {
		if _, err := c.asg.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
			InstanceId: aws.String(leaders["blue"]), ShouldDecrementDesiredCapacity: aws.Bool(false),
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("termination of the leader: another instance tagged %v after the termination started", untilTagMoves(t, c, "blue", leaders["blue"]).Round(time.Millisecond))
	})
	old := leaders["green"]
	step("unhealthy leader", func() {
		if _, err := c.asg.SetInstanceHealth(ctx, &autoscaling.SetInstanceHealthInput{InstanceId: aws.String(old), HealthStatus: aws.String("Unhealthy")}); err != nil {
			t.Fatal(err)
		}
	})
	if leaders["green"] == old {
		t.Errorf("the unhealthy leader %s kept the tag", old)
	}
	step("bursts across both groups", func() {
		var bw sync.WaitGroup
		for _, n := range []int32{5, 3, 6, 1, 3} {
			for _, g := range groups {
				bw.Go(func() { setDesired(t, c, g, n) })
			}
			bw.Wait()
			time.Sleep(300 * time.Millisecond) // spacing the bursts
		}
	})
	s.mu.Lock()
	if s.maxLiveTwo > time.Second {
		t.Errorf("two tagged instances not terminating for %v", s.maxLiveTwo)
	}
	s.mu.Unlock()
}
