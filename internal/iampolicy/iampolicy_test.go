package iampolicy

import (
	"slices"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/config"
)

const tgARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"

// lifecycleActions are what every agent is granted.
var lifecycleActions = []string{
	"autoscaling:CompleteLifecycleAction", "autoscaling:DescribeAutoScalingInstances",
	"autoscaling:DescribeLifecycleHooks", "autoscaling:RecordLifecycleActionHeartbeat",
}

func with(extra ...string) []string {
	out := append(slices.Clone(lifecycleActions), extra...)
	slices.Sort(out)
	return out
}

func parse(t *testing.T, yaml string) config.Agent {
	t.Helper()
	cfg, err := config.ParseAgent([]byte(yaml))
	if err != nil {
		t.Fatalf("ParseAgent: %v", err)
	}
	return cfg
}

func TestAgentActionsPerFeature(t *testing.T) {
	recv := []string{"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"}
	lease := []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"}
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"imds only", ``, with()},
		{"shared queue", "source: sqs\nsqs: {queue_url: https://sqs.us-east-1.amazonaws.com/123456789012/lc}\n", with(recv...)},
		{"per-instance queue", "source: sqs\nsqs: {topic_arn: arn:aws:sns:us-east-1:123456789012:lc}\n",
			with(append(slices.Clone(recv), "sns:Subscribe", "sns:Unsubscribe", "sqs:CreateQueue", "sqs:DeleteQueue", "sqs:SetQueueAttributes")...)},
		{"lease", "leader: {mode: lease, table: leases}\n", with(lease...)},
		{"lease with tag mirror", "leader: {mode: lease, table: leases, tag: {enabled: true}}\n", with(append(slices.Clone(lease), "ec2:CreateTags", "ec2:DeleteTags")...)},
		{"lease with tag mirror and follower value", "leader: {mode: lease, table: leases, tag: {enabled: true, key: leader, follower_value: \"false\"}}\n", with(append(slices.Clone(lease), "ec2:CreateTags")...)},
		{"tag mode", "leader: {mode: tag}\n", with("ec2:DescribeTags")},
		{"tag mode with presence", "leader: {mode: tag, table: leases}\n", with("dynamodb:DeleteItem", "dynamodb:PutItem", "ec2:DescribeTags")},
		{"target group, auto", "traffic: {target_groups: [{arn: " + tgARN + "}]}\n",
			with("autoscaling:DescribeAutoScalingGroups", "elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:RegisterTargets")},
		{"target group, self", "traffic: {mode: self, target_groups: [{arn: " + tgARN + "}]}\n",
			with("elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:RegisterTargets")},
		{"classic, self", "traffic: {mode: self, load_balancers: [web]}\n",
			with("elasticloadbalancing:DeregisterInstancesFromLoadBalancer", "elasticloadbalancing:DescribeInstanceHealth", "elasticloadbalancing:RegisterInstancesWithLoadBalancer")},
		{"from tags, group", "traffic: {mode: group, from_tags: true}\n",
			with("ec2:DescribeTags", "elasticloadbalancing:DeregisterInstancesFromLoadBalancer", "elasticloadbalancing:DeregisterTargets",
				"elasticloadbalancing:DescribeInstanceHealth", "elasticloadbalancing:DescribeTargetHealth",
				"elasticloadbalancing:RegisterInstancesWithLoadBalancer", "elasticloadbalancing:RegisterTargets")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Agent(parse(t, tc.yaml), Scope{})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Actions(); !slices.Equal(got, tc.want) {
				t.Errorf("actions\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// statement returns the statement granting action.
func statement(t *testing.T, p Policy, action string) Statement {
	t.Helper()
	for _, st := range p.Statement {
		if slices.Contains(st.Action, action) {
			return st
		}
	}
	t.Fatalf("no statement grants %s", action)
	return Statement{}
}

func TestAgentResourcesAndConditions(t *testing.T) {
	cfg := parse(t, "source: sqs\nsqs: {queue_url: https://sqs.eu-west-1.amazonaws.com/123456789012/lc}\n"+
		"leader: {mode: lease, table: leases, tag: {enabled: true, key: leader}}\n"+
		"traffic: {mode: self, target_groups: [{arn: "+tgARN+"}], load_balancers: [classic]}\n")
	p, err := Agent(cfg, Scope{Group: "web", Region: "eu-west-1", Account: "123456789012"})
	if err != nil {
		t.Fatal(err)
	}
	for action, want := range map[string]string{
		"autoscaling:CompleteLifecycleAction":                    "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:*:autoScalingGroupName/web",
		"sqs:ReceiveMessage":                                     "arn:aws:sqs:eu-west-1:123456789012:lc",
		"dynamodb:UpdateItem":                                    "arn:aws:dynamodb:eu-west-1:123456789012:table/leases",
		"ec2:CreateTags":                                         "arn:aws:ec2:eu-west-1:123456789012:instance/*",
		"elasticloadbalancing:RegisterTargets":                   tgARN,
		"elasticloadbalancing:RegisterInstancesWithLoadBalancer": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/classic",
		"elasticloadbalancing:DescribeTargetHealth":              "*",
		"autoscaling:DescribeAutoScalingInstances":               "*",
	} {
		if got := statement(t, p, action).Resource; !slices.Equal(got, []string{want}) {
			t.Errorf("%s on %q, want %q", action, got, want)
		}
	}
	cond := statement(t, p, "ec2:DeleteTags").Condition
	if got := cond["StringEquals"]["ec2:ResourceTag/aws:autoscaling:groupName"]; !slices.Equal(got, []string{"web"}) {
		t.Errorf("tag writes limited to group %q, want web", got)
	}
	if got := cond["ForAllValues:StringEquals"]["aws:TagKeys"]; !slices.Equal(got, []string{"leader"}) {
		t.Errorf("tag writes limited to keys %q, want leader", got)
	}
}

func TestControllerActionsPerFlag(t *testing.T) {
	base := Controller{OptInKey: "lifeguard:controller", OptInValue: "enabled", LeaderKey: "app:isLeader"}
	core := []string{"autoscaling:DescribeAutoScalingGroups", "ec2:CreateTags", "ec2:DeleteTags", "ec2:DescribeInstances"}
	plus := func(extra ...string) []string {
		out := append(slices.Clone(core), extra...)
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		name string
		mod  func(*Controller)
		want []string
	}{
		{"tag only", func(*Controller) {}, core},
		{"daemon queue", func(c *Controller) { c.QueueURL = "https://sqs.us-east-1.amazonaws.com/1/q" }, plus("sqs:DeleteMessage", "sqs:ReceiveMessage")},
		{"lambda sqs trigger", func(c *Controller) { c.QueueURL = "https://sqs.us-east-1.amazonaws.com/1/q"; c.SQSTrigger = true },
			plus("sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage")},
		{"reaper", func(c *Controller) { c.LeaseTable = "leases" }, plus("autoscaling:CompleteLifecycleAction", "autoscaling:DescribeLifecycleHooks", "dynamodb:Query")},
		{"queue reaper", func(c *Controller) { c.ReapQueues = true }, plus("sns:ListSubscriptions", "sns:Unsubscribe", "sqs:DeleteQueue", "sqs:GetQueueAttributes", "sqs:ListQueues")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mod(&c)
			p, err := ForController(c, Scope{})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Actions(); !slices.Equal(got, tc.want) {
				t.Errorf("actions\n got %q\nwant %q", got, tc.want)
			}
			cond := statement(t, p, "ec2:CreateTags").Condition
			if got := cond["StringEquals"]["ec2:ResourceTag/lifeguard:controller"]; !slices.Equal(got, []string{"enabled"}) {
				t.Errorf("tag writes on opted-in instances %q, want enabled", got)
			}
		})
	}
	if _, err := ForController(Controller{}, Scope{}); err == nil || !strings.Contains(err.Error(), "opt-in") {
		t.Errorf("ForController without tags: %v, want an error naming the opt-in tag", err)
	}
}

func TestActionMapsCalls(t *testing.T) {
	for _, tc := range []struct{ service, op, want string }{
		{"sqs", "ChangeMessageVisibilityBatch", "sqs:ChangeMessageVisibility"},
		{"elasticloadbalancingv2", "RegisterTargets", "elasticloadbalancing:RegisterTargets"},
		{"elasticloadbalancing", "DescribeInstanceHealth", "elasticloadbalancing:DescribeInstanceHealth"},
		{"imds", "imds:instance-id", ""},
		{"autoscaling", "CompleteLifecycleAction", "autoscaling:CompleteLifecycleAction"},
	} {
		if got := Action(tc.service, tc.op); got != tc.want {
			t.Errorf("Action(%q, %q) = %q, want %q", tc.service, tc.op, got, tc.want)
		}
	}
}

func TestQueueARN(t *testing.T) {
	got, err := QueueARN("", "https://sqs.us-east-1.amazonaws.com/123456789012/lc")
	if err != nil || got != "arn:aws:sqs:us-east-1:123456789012:lc" {
		t.Errorf("QueueARN = %q, %v", got, err)
	}
	if _, err := QueueARN("", "https://sqs.us-east-1.amazonaws.com/lc"); err == nil {
		t.Error("QueueARN of a URL without an account: no error")
	}
}
