package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Traffic configures the instance's load balancer registration: the ELBv2
// target groups and classic load balancers it serves, registered at launch
// once the probes pass and deregistered (and drained) at the start of the
// terminate plan. With no target group, no load balancer and FromTags off
// (the default), the agent does nothing with load balancers.
type Traffic struct {
	// Mode says who registers and deregisters the instance: TrafficAuto
	// (the default) decides per load balancer from the Auto Scaling group's
	// attachments (DescribeAutoScalingGroups TargetGroupARNs and
	// LoadBalancerNames).
	Mode TrafficMode `yaml:"mode"`
	// TargetGroups are ELBv2 target groups to register the instance with.
	TargetGroups []TargetGroup `yaml:"target_groups"`
	// LoadBalancers are classic load balancers, by name.
	LoadBalancers []string `yaml:"load_balancers"`
	// FromTags adds the target groups and load balancers named by the
	// instance's tags TagTargetGroups and TagLoadBalancers, read once with
	// EC2 DescribeTags (which needs ec2:DescribeTags, and no instance
	// metadata option).
	FromTags bool `yaml:"from_tags"`
	// WaitHealthyTimeout bounds the launch's wait until every target is
	// healthy; past it the launch is abandoned.
	WaitHealthyTimeout Duration `yaml:"wait_healthy_timeout"`
	// WaitDrainedTimeout bounds the terminate plan's wait until every
	// target is drained; past it the plan goes on with the user's steps. Set
	// it above the deregistration delay (connection draining timeout).
	WaitDrainedTimeout Duration `yaml:"wait_drained_timeout"`
	// PollInterval is the time between two health reads while waiting.
	PollInterval Duration `yaml:"poll_interval"`
}

// TargetGroup is one ELBv2 target group the instance registers with.
type TargetGroup struct {
	// ARN is the target group's ARN.
	ARN string `yaml:"arn"`
	// Port is the port the instance serves the target group on; 0 means the
	// target group's own port.
	Port int `yaml:"port"`
}

// TrafficMode says who registers the instance with its load balancers.
type TrafficMode string

// The ownership modes.
const (
	// TrafficAuto is TrafficGroup for a load balancer attached to the
	// instance's Auto Scaling group, TrafficSelf for any other.
	TrafficAuto TrafficMode = "auto"
	// TrafficSelf: the agent registers at launch and deregisters at
	// termination.
	TrafficSelf TrafficMode = "self"
	// TrafficGroup: the Auto Scaling group registers and deregisters; the
	// agent waits for the group's deregistration at termination, and
	// deregisters itself only when the group will not (a spot interruption,
	// a SIGTERM drain).
	TrafficGroup TrafficMode = "group"
)

// The instance tags read when traffic.from_tags is on.
const (
	// TagTargetGroups lists target group ARNs, comma-separated, each with
	// an optional "=port".
	TagTargetGroups = "lifeguard:target-groups"
	// TagLoadBalancers lists classic load balancer names, comma-separated.
	TagLoadBalancers = "lifeguard:load-balancers"
)

// Traffic's defaults.
const (
	defaultWaitHealthy  = 5 * time.Minute
	defaultWaitDrained  = 6 * time.Minute // the default deregistration delay (300 s) and a minute
	defaultTrafficPoll  = 5 * time.Second
	maxClassicNameBytes = 32
)

func defaultTraffic() Traffic {
	return Traffic{
		Mode:               TrafficAuto,
		WaitHealthyTimeout: Duration(defaultWaitHealthy),
		WaitDrainedTimeout: Duration(defaultWaitDrained),
		PollInterval:       Duration(defaultTrafficPoll),
	}
}

// On reports whether the agent handles load balancers at all.
func (t Traffic) On() bool {
	return len(t.TargetGroups) > 0 || len(t.LoadBalancers) > 0 || t.FromTags
}

// validate checks t when it is on (On); off, it is ignored and not
// validated, as sqs is under source imds.
func (t Traffic) validate(v *validator) {
	if !t.On() {
		return
	}
	oneOf(v, "traffic.mode", t.Mode, TrafficAuto, TrafficSelf, TrafficGroup)
	seen := map[string]bool{}
	for i, tg := range t.TargetGroups {
		path := fmt.Sprintf("traffic.target_groups[%d]", i)
		if err := CheckTargetGroupARN(tg.ARN); err != nil {
			v.add(path+".arn", err.Error(), "give the ARN DescribeTargetGroups shows, arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID")
		}
		if tg.Port < 0 || tg.Port > 65535 {
			v.add(path+".port", fmt.Sprintf("%d is not a port", tg.Port), "use 1 to 65535, or 0 for the target group's own port")
		}
		key := tg.ARN + "=" + strconv.Itoa(tg.Port)
		if seen[key] {
			v.add(path, "listed twice", "remove the duplicate")
		}
		seen[key] = true
	}
	for i, name := range t.LoadBalancers {
		path := fmt.Sprintf("traffic.load_balancers[%d]", i)
		if err := CheckLoadBalancerName(name); err != nil {
			v.add(path, err.Error(), "give the classic load balancer's name, as DescribeLoadBalancers shows it")
		}
		if seen["elb:"+name] {
			v.add(path, "listed twice", "remove the duplicate")
		}
		seen["elb:"+name] = true
	}
	if t.WaitHealthyTimeout < Duration(time.Second) {
		v.add("traffic.wait_healthy_timeout", fmt.Sprintf("%s is too short", t.WaitHealthyTimeout), "use at least 1s; healthy takes HealthyThresholdCount × HealthCheckIntervalSeconds")
	}
	if t.WaitDrainedTimeout < Duration(time.Second) {
		v.add("traffic.wait_drained_timeout", fmt.Sprintf("%s is too short", t.WaitDrainedTimeout), "use at least 1s, above the deregistration delay")
	}
	if t.PollInterval < Duration(time.Second) {
		v.add("traffic.poll_interval", fmt.Sprintf("%s is too short", t.PollInterval), "use at least 1s")
	}
}

// CheckTargetGroupARN reports whether arn looks like a target group's ARN.
func CheckTargetGroupARN(arn string) error {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "elasticloadbalancing" || !strings.HasPrefix(parts[5], "targetgroup/") {
		return fmt.Errorf("%q is not a target group ARN", arn)
	}
	return nil
}

// CheckLoadBalancerName reports whether name can be a classic load
// balancer's name: 1 to 32 letters, digits and hyphens, not starting or
// ending with a hyphen.
func CheckLoadBalancerName(name string) error {
	if name == "" || len(name) > maxClassicNameBytes || strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") {
		return fmt.Errorf("%q is not a load balancer name", name)
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("%q is not a load balancer name", name)
		}
	}
	return nil
}

// ParseTargetGroupsTag parses the value of TagTargetGroups: target group
// ARNs separated by commas, each with an optional "=port". Blank entries
// are skipped.
func ParseTargetGroupsTag(value string) ([]TargetGroup, error) {
	var out []TargetGroup
	for entry := range strings.SplitSeq(value, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		arn, port, hasPort := strings.Cut(entry, "=")
		tg := TargetGroup{ARN: strings.TrimSpace(arn)}
		if err := CheckTargetGroupARN(tg.ARN); err != nil {
			return nil, fmt.Errorf("tag %s: %w", TagTargetGroups, err)
		}
		if hasPort {
			p, err := strconv.Atoi(strings.TrimSpace(port))
			if err != nil || p < 1 || p > 65535 {
				return nil, fmt.Errorf("tag %s: %q: the port after = must be 1 to 65535", TagTargetGroups, entry)
			}
			tg.Port = p
		}
		out = append(out, tg)
	}
	return out, nil
}

// ParseLoadBalancersTag parses the value of TagLoadBalancers: classic load
// balancer names separated by commas. Blank entries are skipped.
func ParseLoadBalancersTag(value string) ([]string, error) {
	var out []string
	for name := range strings.SplitSeq(value, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if err := CheckLoadBalancerName(name); err != nil {
			return nil, fmt.Errorf("tag %s: %w", TagLoadBalancers, err)
		}
		out = append(out, name)
	}
	return out, nil
}
