package autoscaling_test

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	asg "github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/autoscaling"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sandboxtest"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

const (
	tgA = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/a/73e2d6bc24d8a067"
	tgB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/b/0123456789abcdef"
)

// balancers stands in for the load balancers' owner: it knows tgA, tgB and
// the classic load balancer "classic", and holds every deregistration until
// the test drains it.
type balancers struct {
	mu      sync.Mutex
	pending map[string][]func()
}

func (b *balancers) CheckTargetGroups(arns []string) error {
	for _, a := range arns {
		if a != tgA && a != tgB {
			return awsproto.Errorf("TargetGroupNotFound", "One or more target groups not found")
		}
	}
	return nil
}

func (b *balancers) CheckLoadBalancers(names []string) error {
	for _, n := range names {
		if n != "classic" {
			return awsproto.Errorf("LoadBalancerNotFound", "There is no ACTIVE Load Balancer named '%s'", n)
		}
	}
	return nil
}

func (b *balancers) Register([]string, []string, string, string) {}

func (b *balancers) Deregister(_, _ []string, id string, done func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending[id] = append(b.pending[id], done)
}

func (b *balancers) Healthy([]string, []string, string) (bool, bool) { return true, true }

func (b *balancers) drain(id string) {
	b.mu.Lock()
	dones := b.pending[id]
	delete(b.pending, id)
	b.mu.Unlock()
	for _, d := range dones {
		d()
	}
}

// newLBEnv serves the Auto Scaling handler over a world wired to a fake
// load balancers' owner.
func newLBEnv(t *testing.T) (*env, *balancers) {
	t.Helper()
	b := &balancers{pending: map[string][]func(){}}
	clock := simclock.NewSim()
	w := world.New(world.Config{RelaxLimits: true, Balancers: b}, clock, nil, nil)
	t.Cleanup(w.Close)
	endpoint, client := sandboxtest.Serve(t, autoscaling.New(w))
	e := &env{w: w, clock: clock, url: endpoint, http: client}
	e.client = asg.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:       client,
		RetryMaxAttempts: 1,
	})
	e.createLC(t)
	return e, b
}

func (e *env) createLBGroup(t *testing.T, in *asg.CreateAutoScalingGroupInput) {
	t.Helper()
	in.AutoScalingGroupName = aws.String("g")
	in.LaunchConfigurationName = aws.String("lc")
	in.MinSize, in.MaxSize = aws.Int32(0), aws.Int32(4)
	in.AvailabilityZones = []string{"us-east-1a"}
	if _, err := e.client.CreateAutoScalingGroup(t.Context(), in); err != nil {
		t.Fatalf("CreateAutoScalingGroup: %v", err)
	}
}

func TestGroupLoadBalancerShapes(t *testing.T) {
	e, _ := newLBEnv(t)
	e.createLBGroup(t, &asg.CreateAutoScalingGroupInput{
		TargetGroupARNs:        []string{tgA},
		LoadBalancerNames:      []string{"classic"},
		TrafficSources:         []types.TrafficSourceIdentifier{{Identifier: aws.String(tgB)}},
		HealthCheckType:        aws.String("ELB"),
		HealthCheckGracePeriod: aws.Int32(120),
	})
	got := describeGroup(t, e, "g")
	checkFields(t, "group", []field{
		{"TargetGroupARNs", got.TargetGroupARNs, []string{tgA}},
		{"LoadBalancerNames", got.LoadBalancerNames, []string{"classic"}},
		{"TrafficSources", got.TrafficSources, []types.TrafficSourceIdentifier{
			{Identifier: aws.String(tgA), Type: aws.String("elbv2")},
			{Identifier: aws.String("classic"), Type: aws.String("elb")},
			{Identifier: aws.String(tgB), Type: aws.String("elbv2")},
		}},
		{"HealthCheckType", got.HealthCheckType, aws.String("ELB")},
		{"HealthCheckGracePeriod", got.HealthCheckGracePeriod, aws.Int32(120)},
	})

	tgs, err := e.client.DescribeLoadBalancerTargetGroups(t.Context(), &asg.DescribeLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String("g")})
	if err != nil {
		t.Fatal(err)
	}
	// Only the target group attached the older way; attached at creation, so InService.
	checkFields(t, "DescribeLoadBalancerTargetGroups", []field{
		{"LoadBalancerTargetGroups", tgs.LoadBalancerTargetGroups, []types.LoadBalancerTargetGroupState{{LoadBalancerTargetGroupARN: aws.String(tgA), State: aws.String("InService")}}},
		{"NextToken", tgs.NextToken, (*string)(nil)},
	})
	lbs, err := e.client.DescribeLoadBalancers(t.Context(), &asg.DescribeLoadBalancersInput{AutoScalingGroupName: aws.String("g")})
	if err != nil {
		t.Fatal(err)
	}
	checkFields(t, "DescribeLoadBalancers", []field{
		{"LoadBalancers", lbs.LoadBalancers, []types.LoadBalancerState{{LoadBalancerName: aws.String("classic"), State: aws.String("InService")}}},
	})
	ts, err := e.client.DescribeTrafficSources(t.Context(), &asg.DescribeTrafficSourcesInput{AutoScalingGroupName: aws.String("g")})
	if err != nil {
		t.Fatal(err)
	}
	want := []types.TrafficSourceState{
		{Identifier: aws.String(tgA), TrafficSource: aws.String(tgA), Type: aws.String("elbv2"), State: aws.String("InService")},
		{Identifier: aws.String("classic"), TrafficSource: aws.String("classic"), Type: aws.String("elb"), State: aws.String("InService")},
		{Identifier: aws.String(tgB), TrafficSource: aws.String(tgB), Type: aws.String("elbv2"), State: aws.String("InService")},
	}
	checkFields(t, "DescribeTrafficSources", []field{{"TrafficSources", ts.TrafficSources, want}})
	ts, err = e.client.DescribeTrafficSources(t.Context(), &asg.DescribeTrafficSourcesInput{AutoScalingGroupName: aws.String("g"), TrafficSourceType: aws.String("elb")})
	if err != nil {
		t.Fatal(err)
	}
	checkFields(t, "DescribeTrafficSources elb", []field{{"TrafficSources", ts.TrafficSources, want[1:2]}})
	// Paged one at a time.
	var ids []string
	p := asg.NewDescribeTrafficSourcesPaginator(e.client, &asg.DescribeTrafficSourcesInput{AutoScalingGroupName: aws.String("g"), MaxRecords: aws.Int32(1)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.TrafficSources {
			ids = append(ids, aws.ToString(s.Identifier))
		}
	}
	if !slices.Equal(ids, []string{tgA, "classic", tgB}) {
		t.Errorf("paged %v", ids)
	}
}

func TestAttachAndDetachThroughTheSDK(t *testing.T) {
	e, b := newLBEnv(t)
	e.createLBGroup(t, &asg.CreateAutoScalingGroupInput{DesiredCapacity: aws.Int32(1)})
	id := e.waitInState(t, "g", world.StateInService, 1)[0]
	if _, err := e.client.AttachLoadBalancerTargetGroups(t.Context(), &asg.AttachLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String("g"), TargetGroupARNs: []string{tgA}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.AttachLoadBalancers(t.Context(), &asg.AttachLoadBalancersInput{AutoScalingGroupName: aws.String("g"), LoadBalancerNames: []string{"classic"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.AttachTrafficSources(t.Context(), &asg.AttachTrafficSourcesInput{AutoScalingGroupName: aws.String("g"),
		TrafficSources: []types.TrafficSourceIdentifier{{Identifier: aws.String(tgB), Type: aws.String("elbv2")}}}); err != nil {
		t.Fatal(err)
	}
	e.waitEvent(t, "registration", func(ev world.Event) bool { return ev.Kind == world.EvInstanceRegistered && ev.Instance == id })
	states := func() map[string]string {
		ts, err := e.client.DescribeTrafficSources(t.Context(), &asg.DescribeTrafficSourcesInput{AutoScalingGroupName: aws.String("g")})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, s := range ts.TrafficSources {
			m[aws.ToString(s.Identifier)] = aws.ToString(s.State)
		}
		return m
	}
	if got := states(); got[tgA] != "Added" || got["classic"] != "Added" || got[tgB] != "Added" {
		t.Errorf("after attaching: %v, want all Added", got)
	}
	if _, err := e.client.DetachLoadBalancerTargetGroups(t.Context(), &asg.DetachLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String("g"), TargetGroupARNs: []string{tgA}}); err != nil {
		t.Fatal(err)
	}
	tgs, err := e.client.DescribeLoadBalancerTargetGroups(t.Context(), &asg.DescribeLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String("g")})
	if err != nil {
		t.Fatal(err)
	}
	if len(tgs.LoadBalancerTargetGroups) != 1 || aws.ToString(tgs.LoadBalancerTargetGroups[0].State) != "Removing" {
		t.Errorf("while draining: %+v, want %s Removing", tgs.LoadBalancerTargetGroups, tgA)
	}
	b.drain(id)
	e.waitFor(t, "target group removed", func() bool { _, ok := states()[tgA]; return !ok })
	if _, err := e.client.DetachLoadBalancers(t.Context(), &asg.DetachLoadBalancersInput{AutoScalingGroupName: aws.String("g"), LoadBalancerNames: []string{"classic"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.DetachTrafficSources(t.Context(), &asg.DetachTrafficSourcesInput{AutoScalingGroupName: aws.String("g"),
		TrafficSources: []types.TrafficSourceIdentifier{{Identifier: aws.String(tgB)}}}); err != nil {
		t.Fatal(err)
	}
	b.drain(id)
	e.waitFor(t, "all removed", func() bool { return len(states()) == 0 })
	got := describeGroup(t, e, "g")
	checkFields(t, "group after detaching", []field{
		{"TargetGroupARNs", got.TargetGroupARNs, []string{}},
		{"LoadBalancerNames", got.LoadBalancerNames, []string{}},
		{"TrafficSources", got.TrafficSources, []types.TrafficSourceIdentifier{}},
	})
}

// TestLoadBalancerOrderingThroughTheSDK drives a launch and a scale-in with
// hooks through the API and reads the order from the event log.
func TestLoadBalancerOrderingThroughTheSDK(t *testing.T) {
	e, b := newLBEnv(t)
	e.createLBGroup(t, &asg.CreateAutoScalingGroupInput{
		DesiredCapacity: aws.Int32(1),
		TargetGroupARNs: []string{tgA},
		LifecycleHookSpecificationList: []types.LifecycleHookSpecification{
			hook("ready", world.TransitionLaunching, 300, "ABANDON"),
			hook("drain", world.TransitionTerminating, 300, "CONTINUE"),
		},
	})
	id := e.waitInState(t, "g", world.StatePendingWait, 1)[0]
	if _, err := e.client.CompleteLifecycleAction(t.Context(), &asg.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String("g"),
		LifecycleHookName: aws.String("ready"), InstanceId: aws.String(id), LifecycleActionResult: aws.String("CONTINUE")}); err != nil {
		t.Fatal(err)
	}
	e.waitInState(t, "g", world.StateInService, 1)
	if _, err := e.client.SetDesiredCapacity(t.Context(), &asg.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	e.waitEvent(t, "deregistration", func(ev world.Event) bool { return ev.Kind == world.EvInstanceDeregistering && ev.Instance == id })
	if st := e.instanceState(t, id); aws.ToString(st.LifecycleState) != world.StateTerminating {
		t.Fatalf("while draining: %s, want Terminating", aws.ToString(st.LifecycleState))
	}
	acts, err := e.client.DescribeScalingActivities(t.Context(), &asg.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String("g")})
	if err != nil {
		t.Fatal(err)
	}
	if got := acts.Activities[0].StatusCode; got != types.ScalingActivityStatusCodeWaitingForELBConnectionDraining {
		t.Errorf("terminate activity %s, want WaitingForELBConnectionDraining", got)
	}
	// Completing the terminate hook before Terminating:Wait fails, as on AWS.
	_, err = e.client.CompleteLifecycleAction(t.Context(), &asg.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String("g"),
		LifecycleHookName: aws.String("drain"), InstanceId: aws.String(id), LifecycleActionResult: aws.String("CONTINUE")})
	if code, msg := apiError(t, err); code != "ValidationError" || msg != "No active Lifecycle Action found with instance ID "+id {
		t.Errorf("completing while draining: %s %s", code, msg)
	}
	b.drain(id)
	e.waitInState(t, "g", world.StateTerminatingWait, 1)

	var order []string
	for _, ev := range e.w.Events() {
		if ev.Instance != id {
			continue
		}
		switch {
		case ev.Kind == world.EvInstanceState && ev.Detail == "":
			order = append(order, ev.State)
		case ev.Kind == world.EvInstanceRegistered, ev.Kind == world.EvInstanceDeregistering, ev.Kind == world.EvInstanceDeregistered:
			order = append(order, ev.Kind)
		}
	}
	want := []string{world.StatePendingWait, world.StatePendingProceed, world.EvInstanceRegistered, world.StateInService,
		world.StateTerminating, world.EvInstanceDeregistering, world.EvInstanceDeregistered, world.StateTerminatingWait}
	if !slices.Equal(order, want) {
		t.Errorf("order\n got %v\nwant %v", order, want)
	}
}

func TestLoadBalancerErrors(t *testing.T) {
	e, _ := newLBEnv(t)
	e.createLBGroup(t, &asg.CreateAutoScalingGroupInput{})
	g := aws.String("g")
	tests := []struct {
		name      string
		call      func() error
		code, msg string
	}{
		{"unknown target group", func() error {
			_, err := e.client.AttachLoadBalancerTargetGroups(t.Context(), &asg.AttachLoadBalancerTargetGroupsInput{AutoScalingGroupName: g, TargetGroupARNs: []string{"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/1"}})
			return err
		}, "ValidationError", "Provided Target Groups may not be valid. Please ensure they exist and try again."},
		{"unknown classic load balancer", func() error {
			_, err := e.client.AttachTrafficSources(t.Context(), &asg.AttachTrafficSourcesInput{AutoScalingGroupName: g, TrafficSources: []types.TrafficSourceIdentifier{{Identifier: aws.String("nope"), Type: aws.String("elb")}}})
			return err
		}, "ValidationError", "Provided Load Balancers may not be valid. Please ensure they exist and try again."},
		{"unknown group", func() error {
			_, err := e.client.AttachLoadBalancers(t.Context(), &asg.AttachLoadBalancersInput{AutoScalingGroupName: aws.String("nope"), LoadBalancerNames: []string{"classic"}})
			return err
		}, "ValidationError", "AutoScalingGroup name not found - AutoScalingGroup nope not found"},
		{"classic name without a type", func() error {
			_, err := e.client.AttachTrafficSources(t.Context(), &asg.AttachTrafficSourcesInput{AutoScalingGroupName: g, TrafficSources: []types.TrafficSourceIdentifier{{Identifier: aws.String("classic")}}})
			return err
		}, "ValidationError", "Traffic source classic needs a Type: elb for a Classic Load Balancer's name, elbv2 for a target group's ARN."},
		{"VPC Lattice", func() error {
			_, err := e.client.AttachTrafficSources(t.Context(), &asg.AttachTrafficSourcesInput{AutoScalingGroupName: g, TrafficSources: []types.TrafficSourceIdentifier{{Identifier: aws.String("arn:aws:vpc-lattice:us-east-1:123456789012:targetgroup/tg-1234567890123456")}}})
			return err
		}, "ValidationError", "The lifeguard sandbox does not model VPC Lattice traffic sources; remove it from the request."},
		{"bad traffic source type filter", func() error {
			_, err := e.client.DescribeTrafficSources(t.Context(), &asg.DescribeTrafficSourcesInput{AutoScalingGroupName: g, TrafficSourceType: aws.String("alb")})
			return err
		}, "ValidationError", "Traffic source type alb is not valid. Valid values are: elb, elbv2, vpc-lattice."},
		{"describe without a group", func() error {
			_, err := e.client.DescribeLoadBalancerTargetGroups(t.Context(), &asg.DescribeLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String("nope")})
			return err
		}, "ValidationError", "AutoScalingGroup name not found - AutoScalingGroup nope not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := apiError(t, tt.call())
			if code != tt.code || msg != tt.msg {
				t.Errorf("got %s %q, want %s %q", code, msg, tt.code, tt.msg)
			}
		})
	}
	// Without its list (the SDK checks this itself; a hand-written request
	// need not).
	status, body := e.post(t, form("AttachLoadBalancerTargetGroups", "AutoScalingGroupName", "g"))
	if status != 400 || !strings.Contains(body, "1 validation error detected: Value null at &#39;targetGroupARNs&#39; failed to satisfy constraint: Member must not be null") {
		t.Errorf("attach without TargetGroupARNs: %d %s", status, body)
	}
	// UpdateAutoScalingGroup has no load balancer members (the SDK cannot
	// send them; a hand-written request can).
	status, body = e.post(t, form("UpdateAutoScalingGroup", "AutoScalingGroupName", "g", "TargetGroupARNs.member.1", tgA))
	if status != 400 || !strings.Contains(body, "UpdateAutoScalingGroup has no TargetGroupARNs parameter: use AttachLoadBalancerTargetGroups and its Detach counterpart.") {
		t.Errorf("update with TargetGroupARNs: %d %s", status, body)
	}
	if got := describeGroup(t, e, "g"); len(got.TrafficSources) != 0 {
		t.Errorf("failed calls attached %+v", got.TrafficSources)
	}
}

// TestTargetGroupOfTheWholeSandbox attaches a real ELBv2 target group of the
// sandbox: the launched instance is a target at the group's port, and on
// scale-in it is drained (at once: it has no request in flight) before its
// terminate hook runs.
func TestTargetGroupOfTheWholeSandbox(t *testing.T) {
	e := newEnv(t)
	lb := elbv2.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(e.url),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:       e.http,
		RetryMaxAttempts: 1,
	})
	tg, err := lb.CreateTargetGroup(t.Context(), &elbv2.CreateTargetGroupInput{
		Name: aws.String("web"), Protocol: elbv2types.ProtocolEnumHttp, Port: aws.Int32(8080), VpcId: aws.String("vpc-0a1b2c3d"),
	})
	if err != nil {
		t.Fatalf("CreateTargetGroup: %v", err)
	}
	arn := aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	g := e.createGroup(t, groupSpec{desired: 1, hooks: []types.LifecycleHookSpecification{hook("drain", world.TransitionTerminating, 300, "CONTINUE")}})
	// Created without it, then attached: the group's instance is registered.
	id := e.waitInState(t, g, world.StateInService, 1)[0]
	if _, err := e.client.AttachLoadBalancerTargetGroups(t.Context(), &asg.AttachLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String(g), TargetGroupARNs: []string{arn}}); err != nil {
		t.Fatal(err)
	}
	health, err := lb.DescribeTargetHealth(t.Context(), &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if len(health.TargetHealthDescriptions) != 1 || aws.ToString(health.TargetHealthDescriptions[0].Target.Id) != id || aws.ToInt32(health.TargetHealthDescriptions[0].Target.Port) != 8080 {
		t.Fatalf("targets %+v, want %s at 8080", health.TargetHealthDescriptions, id)
	}
	// An unknown target group is Auto Scaling's error, not ELB's.
	_, err = e.client.AttachLoadBalancerTargetGroups(t.Context(), &asg.AttachLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String(g), TargetGroupARNs: []string{arn + "0"}})
	if code, msg := apiError(t, err); code != "ValidationError" || msg != "Provided Target Groups may not be valid. Please ensure they exist and try again." {
		t.Errorf("unknown target group: %s %q", code, msg)
	}

	if _, err := e.client.SetDesiredCapacity(t.Context(), &asg.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(g), DesiredCapacity: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	e.waitInState(t, g, world.StateTerminatingWait, 1)
	health, err = lb.DescribeTargetHealth(t.Context(), &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if len(health.TargetHealthDescriptions) != 0 {
		t.Errorf("in Terminating:Wait the target group still has %+v", health.TargetHealthDescriptions)
	}
	var order []string
	for _, ev := range e.w.Events() {
		if ev.Instance == id && (ev.Kind == world.EvInstanceDeregistering || ev.Kind == world.EvInstanceDeregistered || ev.Kind == world.EvInstanceState && ev.Detail == "" && strings.HasPrefix(ev.State, "Terminating")) {
			order = append(order, ev.Kind+":"+ev.State)
		}
	}
	want := []string{"instance-state:Terminating", "instance-deregistering:Terminating", "instance-deregistered:Terminating", "instance-state:Terminating:Wait"}
	if !slices.Equal(order, want) {
		t.Errorf("order\n got %v\nwant %v", order, want)
	}
}
