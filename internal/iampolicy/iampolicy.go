// Package iampolicy builds the least-privilege IAM policy for the features a
// lifeguard configuration turns on: the agent's (from its config.Agent) and
// the controller's (from its flags). It knows which AWS operations each
// feature calls and which IAM action, resource ARN and condition keys AWS
// supports for each; it makes no AWS call.
package iampolicy

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/config"
)

// Version is the IAM policy language version.
const Version = "2012-10-17"

// Policy is an IAM policy document.
type Policy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one Allow statement.
type Statement struct {
	Sid       string                         `json:"Sid"`
	Effect    string                         `json:"Effect"`
	Action    []string                       `json:"Action"`
	Resource  []string                       `json:"Resource"`
	Condition map[string]map[string][]string `json:"Condition,omitempty"`
}

// Scope narrows the ARNs: empty fields are wildcards.
type Scope struct {
	// Partition is aws unless set (aws-cn, aws-us-gov).
	Partition string
	// Region and Account are * unless set.
	Region, Account string
	// Group is the Auto Scaling group's name: with it the lifecycle actions
	// are granted on the group's ARN and the leader tag's writes on its
	// instances only (ec2:ResourceTag/aws:autoscaling:groupName).
	Group string
}

func (s Scope) part() string    { return or(s.Partition, "aws") }
func (s Scope) region() string  { return or(s.Region, "*") }
func (s Scope) account() string { return or(s.Account, "*") }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// arn builds arn:PARTITION:service:REGION:ACCOUNT:resource.
func (s Scope) arn(service, resource string) string {
	return fmt.Sprintf("arn:%s:%s:%s:%s:%s", s.part(), service, s.region(), s.account(), resource)
}

// JSON returns the policy indented, as `lifeguard iam-policy` prints it.
func (p Policy) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	return append(b, '\n'), nil
}

// Actions returns every action the policy grants, sorted, each once.
func (p Policy) Actions() []string {
	var out []string
	for _, st := range p.Statement {
		out = append(out, st.Action...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Allows reports whether some statement grants action (service:Operation,
// compared case-insensitively as IAM does).
func (p Policy) Allows(action string) bool {
	for _, st := range p.Statement {
		for _, a := range st.Action {
			if strings.EqualFold(a, action) {
				return true
			}
		}
	}
	return false
}

// Action returns the IAM action that authorizes a call of operation op of
// service (an SDK package name, as lifeguard_aws_calls_total labels it):
// SQS batch operations are authorized by their single form, and instance
// metadata needs no permission ("" for it).
func Action(service, op string) string {
	switch service {
	case "imds":
		return ""
	case "elasticloadbalancingv2":
		service = "elasticloadbalancing"
	case "sqs":
		op = strings.TrimSuffix(op, "Batch")
	}
	return service + ":" + op
}

// builder collects statements, merging the actions of statements with the
// same resources and conditions.
type builder struct{ sts []Statement }

func (b *builder) add(sid string, actions []string, resources []string, cond map[string]map[string][]string) {
	for i := range b.sts {
		st := &b.sts[i]
		if slices.Equal(st.Resource, resources) && condEqual(st.Condition, cond) {
			st.Action = append(st.Action, actions...)
			sort.Strings(st.Action)
			st.Action = slices.Compact(st.Action)
			return
		}
	}
	a := slices.Clone(actions)
	sort.Strings(a)
	b.sts = append(b.sts, Statement{Sid: sid, Effect: "Allow", Action: a, Resource: resources, Condition: cond})
}

func condEqual(a, b map[string]map[string][]string) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func (b *builder) policy() Policy {
	return Policy{Version: Version, Statement: b.sts}
}

// QueueARN returns the ARN of the SQS queue at url
// (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME), in partition.
func QueueARN(partition, queueURL string) (string, error) {
	u, err := url.Parse(queueURL)
	if err != nil {
		return "", fmt.Errorf("queue URL %q: %w", queueURL, err)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", fmt.Errorf("queue URL %q is not https://sqs.REGION.amazonaws.com/ACCOUNT/NAME", queueURL)
	}
	region := "*"
	if host := strings.Split(u.Hostname(), "."); len(host) >= 3 && host[0] == "sqs" {
		region = host[1]
	}
	return fmt.Sprintf("arn:%s:sqs:%s:%s:%s", or(partition, "aws"), region, parts[0], parts[1]), nil
}

// groupARN is the group's ARN pattern (every group unless s.Group).
func (s Scope) groupARN() string {
	return s.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/"+or(s.Group, "*"))
}

// Agent returns the policy of the instance role for an agent running cfg.
func Agent(cfg config.Agent, s Scope) (Policy, error) {
	var b builder
	// The lifecycle: confirm the wait state and read the hooks (no resource
	// level permissions), complete and heartbeat on the group.
	b.add("Read", []string{"autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeLifecycleHooks"}, []string{"*"}, nil)
	b.add("LifecycleActions", []string{"autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"}, []string{s.groupARN()}, nil)

	if cfg.Source == config.SourceSQS {
		recv := []string{"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"}
		switch {
		case cfg.SQS.QueueURL != "":
			arn, err := QueueARN(s.Partition, cfg.SQS.QueueURL)
			if err != nil {
				return Policy{}, fmt.Errorf("sqs.queue_url: %w", err)
			}
			b.add("LifecycleQueue", recv, []string{arn}, nil)
		case cfg.SQS.TopicARN != "":
			own := append(slices.Clone(recv), "sqs:CreateQueue", "sqs:DeleteQueue", "sqs:SetQueueAttributes")
			b.add("InstanceQueue", own, []string{s.arn("sqs", cfg.SQS.QueuePrefix+"*")}, nil)
			b.add("LifecycleTopic", []string{"sns:Subscribe", "sns:Unsubscribe"}, []string{cfg.SQS.TopicARN}, nil)
		}
	}

	l := cfg.Leader
	table := s.arn("dynamodb", "table/"+l.Table)
	switch l.Mode {
	case config.LeaderLease:
		b.add("LeaderLease", []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"}, []string{table}, nil)
		if l.Tag.Enabled {
			cond := map[string]map[string][]string{"ForAllValues:StringEquals": {"aws:TagKeys": {l.Tag.Key}}}
			if s.Group != "" {
				cond["StringEquals"] = map[string][]string{"ec2:ResourceTag/aws:autoscaling:groupName": {s.Group}}
			}
			// Followers get follower_value written, or the key deleted.
			acts := []string{"ec2:CreateTags"}
			if l.Tag.FollowerValue == "" {
				acts = append(acts, "ec2:DeleteTags")
			}
			b.add("LeaderTag", acts, []string{s.arn("ec2", "instance/*")}, cond)
		}
	case config.LeaderByTag:
		// Read from instance metadata; ec2:DescribeTags is the fallback when
		// the launch template does not show tags in instance metadata.
		b.add("Describe", []string{"ec2:DescribeTags"}, []string{"*"}, nil)
		if l.Table != "" {
			b.add("LeaderPresence", []string{"dynamodb:DeleteItem", "dynamodb:PutItem"}, []string{table}, nil)
		}
	}

	t := cfg.Traffic
	if t.On() {
		var tgs, lbs []string
		for _, tg := range t.TargetGroups {
			tgs = append(tgs, tg.ARN)
		}
		for _, n := range t.LoadBalancers {
			lbs = append(lbs, s.arn("elasticloadbalancing", "loadbalancer/"+n))
		}
		if t.FromTags {
			// The tags may name any target group or load balancer.
			tgs = []string{s.arn("elasticloadbalancing", "targetgroup/*")}
			lbs = []string{s.arn("elasticloadbalancing", "loadbalancer/*")}
			b.add("Describe", []string{"ec2:DescribeTags"}, []string{"*"}, nil)
		}
		var reads []string
		if len(tgs) > 0 {
			b.add("TargetGroups", []string{"elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"}, slices.Compact(sorted(tgs)), nil)
			reads = append(reads, "elasticloadbalancing:DescribeTargetHealth")
		}
		if len(lbs) > 0 {
			b.add("ClassicLoadBalancers", []string{"elasticloadbalancing:DeregisterInstancesFromLoadBalancer", "elasticloadbalancing:RegisterInstancesWithLoadBalancer"}, slices.Compact(sorted(lbs)), nil)
			reads = append(reads, "elasticloadbalancing:DescribeInstanceHealth")
		}
		if t.Mode == config.TrafficAuto {
			reads = append(reads, "autoscaling:DescribeAutoScalingGroups")
		}
		// Health and group reads have no resource-level permissions.
		b.add("Describe", reads, []string{"*"}, nil)
	}
	return b.policy(), nil
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// Controller is what the controller's flags turn on.
type Controller struct {
	// QueueURL is --queue-url (the daemon's queue); "" for none.
	QueueURL string
	// SQSTrigger is set when a Lambda function reads QueueURL through an
	// event source mapping, which also needs sqs:GetQueueAttributes.
	SQSTrigger bool
	// LeaseTable is --lease-table (the orphan reaper); "" for none.
	LeaseTable string
	// ReapQueues is --reap-queues, with QueuePrefix its --queue-prefix.
	ReapQueues  bool
	QueuePrefix string
	// OptInKey and OptInValue are --opt-in-tag; LeaderKey is --leader-tag-key.
	OptInKey, OptInValue string
	LeaderKey            string
}

// ForController returns the policy of the controller's role.
func ForController(c Controller, s Scope) (Policy, error) {
	if c.OptInKey == "" || c.LeaderKey == "" {
		return Policy{}, fmt.Errorf("the opt-in tag and the leader tag key are required")
	}
	var b builder
	b.add("Read", []string{"autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstances"}, []string{"*"}, nil)
	b.add("LeaderTag", []string{"ec2:CreateTags", "ec2:DeleteTags"}, []string{s.arn("ec2", "instance/*")}, map[string]map[string][]string{
		"StringEquals":              {"ec2:ResourceTag/" + c.OptInKey: {c.OptInValue}},
		"ForAllValues:StringEquals": {"aws:TagKeys": {c.LeaderKey}},
	})
	if c.QueueURL != "" {
		arn, err := QueueARN(s.Partition, c.QueueURL)
		if err != nil {
			return Policy{}, fmt.Errorf("--queue-url: %w", err)
		}
		acts := []string{"sqs:DeleteMessage", "sqs:ReceiveMessage"}
		if c.SQSTrigger {
			acts = append(acts, "sqs:GetQueueAttributes")
		}
		b.add("Notifications", acts, []string{arn}, nil)
	}
	if c.LeaseTable != "" {
		b.add("Read", []string{"autoscaling:DescribeLifecycleHooks"}, []string{"*"}, nil)
		b.add("ReapActions", []string{"autoscaling:CompleteLifecycleAction"}, []string{s.groupARN()}, map[string]map[string][]string{
			"StringEquals": {"autoscaling:ResourceTag/" + c.OptInKey: {c.OptInValue}},
		})
		b.add("Presence", []string{"dynamodb:Query"}, []string{s.arn("dynamodb", "table/"+c.LeaseTable)}, nil)
	}
	if c.ReapQueues {
		b.add("Read", []string{"sns:ListSubscriptions", "sqs:ListQueues"}, []string{"*"}, nil)
		b.add("ReapQueues", []string{"sqs:DeleteQueue", "sqs:GetQueueAttributes"}, []string{s.arn("sqs", or(c.QueuePrefix, "lifeguard-")+"*")}, nil)
		b.add("ReapSubscriptions", []string{"sns:Unsubscribe"}, []string{s.arn("sns", "*")}, nil)
	}
	return b.policy(), nil
}
