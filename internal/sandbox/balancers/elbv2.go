package balancers

import (
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
)

// Tag is a key and a value.
type Tag struct{ Key, Value string }

// Zone is an Availability Zone a load balancer is in, and its subnet.
type Zone struct{ Name, Subnet string }

// LoadBalancer is an application load balancer as DescribeLoadBalancers
// shows it.
type LoadBalancer struct {
	ARN, Name, DNSName, Scheme, Type, State, VPCID, IPAddressType, HostedZoneID string
	Created                                                                     time.Time
	Zones                                                                       []Zone
	SecurityGroups                                                              []string
	Tags                                                                        []Tag
}

type loadBalancer struct {
	LoadBalancer
	id string
}

// HealthCheck is a target group's health check.
type HealthCheck struct {
	Protocol, Port, Path, Matcher                           string
	Interval, Timeout, HealthyThreshold, UnhealthyThreshold int
	Enabled                                                 bool
}

// TargetGroup is a target group as DescribeTargetGroups shows it.
type TargetGroup struct {
	ARN, Name, Protocol, ProtocolVersion, VPCID, TargetType, IPAddressType string
	Port                                                                   int
	HealthCheck                                                            HealthCheck
	LoadBalancerARNs                                                       []string
}

type targetGroup struct {
	b *Balancers
	TargetGroup
	attrs   map[string]string
	targets []*member
	next    int // round robin
}

// Listener is a listener as DescribeListeners shows it, with the loopback
// address its data plane listens on.
type Listener struct {
	ARN, LoadBalancerARN, Protocol, TargetGroupARN string
	Port                                           int
	// Address is host:port of the listener's loopback socket ("" while no
	// data plane runs).
	Address string
}

type listener struct {
	Listener
	requests, errors5xx, noTarget int64
}

// Target is a target of RegisterTargets, DeregisterTargets and
// DescribeTargetHealth: an instance id (or an IP address) and a port (0:
// the group's).
type Target struct {
	ID   string
	Port int
}

// TargetHealth is one member of DescribeTargetHealth.
type TargetHealth struct {
	Target
	HealthCheckPort            string
	State, Reason, Description string
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)

func notFoundLB() error {
	return awsproto.Errorf("LoadBalancerNotFound", "One or more load balancers not found")
}

func notFoundTG() error {
	return awsproto.Errorf("TargetGroupNotFound", "One or more target groups not found")
}

// CreateLoadBalancerInput is an application load balancer to create.
type CreateLoadBalancerInput struct {
	Name, Type, Scheme, IPAddressType string
	Subnets, SecurityGroups           []string
	Tags                              []Tag
}

// CreateLoadBalancer creates an application load balancer. Creating one
// again with the same name and settings returns the existing one.
func (b *Balancers) CreateLoadBalancer(in CreateLoadBalancerInput) (LoadBalancer, error) {
	if !nameRE.MatchString(in.Name) || strings.HasPrefix(in.Name, "internal-") {
		return LoadBalancer{}, awsproto.Validation("The load balancer name '%s' is not valid: use 1 to 32 letters, digits and hyphens, not starting or ending with a hyphen nor starting with 'internal-'", in.Name)
	}
	if in.Type == "" {
		in.Type = "application"
	}
	if in.Type != "application" {
		return LoadBalancer{}, awsproto.Validation("Type: the sandbox serves application load balancers only, not '%s'; omit Type or set it to application", in.Type)
	}
	if in.Scheme == "" {
		in.Scheme = "internet-facing"
	}
	if in.Scheme != "internet-facing" && in.Scheme != "internal" {
		return LoadBalancer{}, awsproto.Validation("1 validation error detected: Value '%s' at 'scheme' failed to satisfy constraint: Member must satisfy enum value set: [internet-facing, internal]", in.Scheme)
	}
	if in.IPAddressType == "" {
		in.IPAddressType = "ipv4"
	}
	zones := map[string]string{}
	for _, s := range in.Subnets {
		zones[b.subnetZone(s)] = s
	}
	if len(zones) < 2 {
		return LoadBalancer{}, awsproto.Validation("At least two subnets in two different Availability Zones must be specified")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, lb := range b.lbs {
		if lb.Name == in.Name {
			if lb.Scheme == in.Scheme && slices.Equal(sortedCopy(in.Subnets), subnetsOf(lb.Zones)) {
				return lb.view(), nil
			}
			return LoadBalancer{}, awsproto.Errorf("DuplicateLoadBalancerName", "A load balancer with the same name '%s' exists, but with different settings", in.Name)
		}
	}
	id := b.hexLocked(16)
	lb := &loadBalancer{id: id, LoadBalancer: LoadBalancer{
		ARN: b.arn("loadbalancer/app/" + in.Name + "/" + id), Name: in.Name, Type: in.Type, Scheme: in.Scheme,
		State: "active", VPCID: "vpc-" + b.hexLocked(17), IPAddressType: in.IPAddressType, HostedZoneID: "Z35SXDOTRQ7X7K",
		DNSName:        in.Name + "-" + b.digitsLocked(10) + "." + b.cfg.Region + ".elb.localhost",
		Created:        b.clock.Now().UTC(),
		SecurityGroups: slices.Clone(in.SecurityGroups), Tags: slices.Clone(in.Tags),
	}}
	if lb.Scheme == "internal" {
		lb.DNSName = "internal-" + lb.DNSName
	}
	for _, z := range slices.Sorted(maps.Keys(zones)) {
		lb.Zones = append(lb.Zones, Zone{Name: z, Subnet: zones[z]})
	}
	b.lbs[lb.ARN] = lb
	b.control("elasticloadbalancing", EvELBv2, lb.ARN, "", "load balancer created", map[string]string{"dns": lb.DNSName})
	return lb.view(), nil
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}

func subnetsOf(zs []Zone) []string {
	var out []string
	for _, z := range zs {
		out = append(out, z.Subnet)
	}
	slices.Sort(out)
	return out
}

func (lb *loadBalancer) view() LoadBalancer {
	v := lb.LoadBalancer
	v.Zones, v.SecurityGroups, v.Tags = slices.Clone(v.Zones), slices.Clone(v.SecurityGroups), slices.Clone(v.Tags)
	return v
}

// LoadBalancers returns the application load balancers named by ARN or
// name (all when both are empty), sorted by name.
func (b *Balancers) LoadBalancers(arns, names []string) ([]LoadBalancer, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []LoadBalancer
	switch {
	case len(arns) > 0:
		for _, a := range arns {
			lb, ok := b.lbs[a]
			if !ok {
				return nil, notFoundLB()
			}
			out = append(out, lb.view())
		}
		return out, nil
	case len(names) > 0:
		for _, n := range names {
			found := false
			for _, lb := range b.lbs {
				if lb.Name == n {
					out, found = append(out, lb.view()), true
				}
			}
			if !found {
				return nil, notFoundLB()
			}
		}
		return out, nil
	}
	for _, lb := range b.lbs {
		out = append(out, lb.view())
	}
	slices.SortFunc(out, func(x, y LoadBalancer) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

// DeleteLoadBalancer deletes a load balancer and its listeners. Deleting
// one that does not exist succeeds, as on AWS.
func (b *Balancers) DeleteLoadBalancer(arn string) error {
	if !strings.HasPrefix(arn, "arn:") {
		return awsproto.Validation("'%s' is not a valid load balancer ARN", arn)
	}
	b.mu.Lock()
	lb, ok := b.lbs[arn]
	if !ok {
		b.mu.Unlock()
		return nil
	}
	var calls []func()
	for _, l := range b.listenersOfLocked(arn) {
		calls = append(calls, b.deleteListenerLocked(l)...)
	}
	delete(b.lbs, arn)
	b.control("elasticloadbalancing", EvELBv2, lb.ARN, "", "load balancer deleted", nil)
	b.mu.Unlock()
	run(calls)
	return nil
}

func run(calls []func()) {
	for _, c := range calls {
		c()
	}
}

func (b *Balancers) listenersOfLocked(lbARN string) []*listener {
	var out []*listener
	for _, l := range b.listeners {
		if l.LoadBalancerARN == lbARN {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(x, y *listener) int { return x.Port - y.Port })
	return out
}

// CreateTargetGroupInput is a target group to create; zero fields take
// AWS's defaults.
type CreateTargetGroupInput struct {
	Name, Protocol, VPCID, TargetType string
	Port                              int
	HealthCheck                       HealthCheck
	// Set says which health check fields were given.
	Set  map[string]bool
	Tags []Tag
}

// Default health check of an HTTP target group.
var defaultHealthCheck = HealthCheck{
	Protocol: "HTTP", Port: "traffic-port", Path: "/", Matcher: "200",
	Interval: 30, Timeout: 5, HealthyThreshold: 5, UnhealthyThreshold: 2, Enabled: true,
}

// CreateTargetGroup creates a target group (HTTP, instance or ip
// targets). Creating one again with the same name and settings returns
// the existing one.
func (b *Balancers) CreateTargetGroup(in CreateTargetGroupInput) (TargetGroup, error) {
	if !nameRE.MatchString(in.Name) {
		return TargetGroup{}, awsproto.Validation("Target group name '%s' can only contain characters that are alphanumeric characters or hyphens(-) and must be 1 to 32 characters long, not starting or ending with a hyphen", in.Name)
	}
	if in.TargetType == "" {
		in.TargetType = "instance"
	}
	if in.TargetType != "instance" && in.TargetType != "ip" {
		return TargetGroup{}, awsproto.Validation("TargetType: the sandbox's target groups take instance or ip targets, not '%s'", in.TargetType)
	}
	if in.Protocol != "HTTP" {
		return TargetGroup{}, awsproto.Validation("Protocol: the sandbox's target groups speak HTTP (its data plane proxies plain HTTP); set Protocol to HTTP, not '%s'", in.Protocol)
	}
	if in.Port < 1 || in.Port > 65535 {
		return TargetGroup{}, awsproto.Validation("A port must be specified for a target group of target type '%s': set Port between 1 and 65535", in.TargetType)
	}
	if in.VPCID == "" {
		return TargetGroup{}, awsproto.Validation("A VPC ID must be specified for a target group of target type '%s'", in.TargetType)
	}
	hc := defaultHealthCheck
	if err := mergeHealthCheck(&hc, in.HealthCheck, in.Set); err != nil {
		return TargetGroup{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, tg := range b.tgs {
		if tg.Name == in.Name {
			if tg.Protocol == in.Protocol && tg.Port == in.Port && tg.VPCID == in.VPCID && tg.TargetType == in.TargetType && tg.HealthCheck == hc {
				return tg.viewLocked(), nil
			}
			return TargetGroup{}, awsproto.Errorf("DuplicateTargetGroupName", "A target group with the same name '%s' exists, but with different settings", in.Name)
		}
	}
	tg := &targetGroup{b: b, TargetGroup: TargetGroup{
		ARN: b.arn("targetgroup/" + in.Name + "/" + b.hexLocked(16)), Name: in.Name, Protocol: in.Protocol, ProtocolVersion: "HTTP1",
		Port: in.Port, VPCID: in.VPCID, TargetType: in.TargetType, IPAddressType: "ipv4", HealthCheck: hc,
	}, attrs: defaultTGAttributes()}
	b.tgs[tg.ARN] = tg
	b.control("elasticloadbalancing", EvELBv2, tg.ARN, "", "target group created", nil)
	return tg.viewLocked(), nil
}

// mergeHealthCheck applies the given fields to hc and validates the
// result in AWS's words.
func mergeHealthCheck(hc *HealthCheck, in HealthCheck, set map[string]bool) error {
	if set["HealthCheckProtocol"] {
		if in.Protocol != "HTTP" {
			return awsproto.Validation("HealthCheckProtocol: the sandbox checks targets over HTTP; set it to HTTP, not '%s'", in.Protocol)
		}
		hc.Protocol = in.Protocol
	}
	if set["HealthCheckPort"] {
		if in.Port != "traffic-port" {
			if n, err := strconv.Atoi(in.Port); err != nil || n < 1 || n > 65535 {
				return awsproto.Validation("Health check port '%s' must be 'traffic-port' or a port between 1 and 65535", in.Port)
			}
		}
		hc.Port = in.Port
	}
	if set["HealthCheckPath"] {
		if !strings.HasPrefix(in.Path, "/") || len(in.Path) > 1024 {
			return awsproto.Validation("Health check path '%s' must start with '/' and be at most 1024 characters long", in.Path)
		}
		hc.Path = in.Path
	}
	if set["Matcher"] {
		if !validMatcher(in.Matcher) {
			return awsproto.Validation("Health check matcher HTTP code '%s' must be a code, a range (200-299) or a list of codes (200,202) between 200 and 499", in.Matcher)
		}
		hc.Matcher = in.Matcher
	}
	if set["HealthCheckEnabled"] {
		if !in.Enabled {
			return awsproto.Validation("HealthCheckEnabled: health checks cannot be disabled for target groups with target type 'instance' or 'ip'; leave it true")
		}
		hc.Enabled = in.Enabled
	}
	for _, f := range []struct {
		name    string
		dst     *int
		v       int
		lo, hi  int
		message string
	}{
		{"HealthCheckIntervalSeconds", &hc.Interval, in.Interval, 5, 300, "Health check interval must be between 5 and 300 seconds"},
		{"HealthCheckTimeoutSeconds", &hc.Timeout, in.Timeout, 2, 120, "Health check timeout must be between 2 and 120 seconds"},
		{"HealthyThresholdCount", &hc.HealthyThreshold, in.HealthyThreshold, 2, 10, "Healthy threshold count must be between 2 and 10"},
		{"UnhealthyThresholdCount", &hc.UnhealthyThreshold, in.UnhealthyThreshold, 2, 10, "Unhealthy threshold count must be between 2 and 10"},
	} {
		if !set[f.name] {
			continue
		}
		if f.v < f.lo || f.v > f.hi {
			return awsproto.Validation("%s: %s, not %d", f.name, f.message, f.v)
		}
		*f.dst = f.v
	}
	if hc.Timeout >= hc.Interval {
		return awsproto.Validation("Health check interval must be greater than the timeout.")
	}
	return nil
}

func defaultTGAttributes() map[string]string {
	return map[string]string{
		"deregistration_delay.timeout_seconds":  "300",
		"stickiness.enabled":                    "false",
		"stickiness.type":                       "lb_cookie",
		"stickiness.lb_cookie.duration_seconds": "86400",
		"slow_start.duration_seconds":           "0",
		"load_balancing.algorithm.type":         "round_robin",
		"load_balancing.cross_zone.enabled":     "use_load_balancer_configuration",
		"target_group_health.unhealthy_state_routing.minimum_healthy_targets.count": "1",
	}
}

func (tg *targetGroup) viewLocked() TargetGroup {
	v := tg.TargetGroup
	v.LoadBalancerARNs = nil
	seen := map[string]bool{}
	for _, l := range tg.b.listeners {
		if l.TargetGroupARN == tg.ARN && !seen[l.LoadBalancerARN] {
			seen[l.LoadBalancerARN] = true
			v.LoadBalancerARNs = append(v.LoadBalancerARNs, l.LoadBalancerARN)
		}
	}
	slices.Sort(v.LoadBalancerARNs)
	return v
}

func (tg *targetGroup) inUseLocked() bool {
	for _, l := range tg.b.listeners {
		if l.TargetGroupARN == tg.ARN {
			return true
		}
	}
	return false
}

// TargetGroups returns target groups by ARN, by name, or those a load
// balancer forwards to (all when none is given), sorted by name.
func (b *Balancers) TargetGroups(arns, names []string, lbARN string) ([]TargetGroup, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if lbARN != "" {
		if _, ok := b.lbs[lbARN]; !ok {
			return nil, notFoundLB()
		}
	}
	var out []TargetGroup
	switch {
	case len(arns) > 0:
		for _, a := range arns {
			tg, ok := b.tgs[a]
			if !ok {
				return nil, notFoundTG()
			}
			out = append(out, tg.viewLocked())
		}
	case len(names) > 0:
		for _, n := range names {
			tg := b.tgByNameLocked(n)
			if tg == nil {
				return nil, notFoundTG()
			}
			out = append(out, tg.viewLocked())
		}
	default:
		for _, tg := range b.tgs {
			out = append(out, tg.viewLocked())
		}
		slices.SortFunc(out, func(x, y TargetGroup) int { return strings.Compare(x.Name, y.Name) })
	}
	if lbARN != "" {
		out = slices.DeleteFunc(out, func(tg TargetGroup) bool { return !slices.Contains(tg.LoadBalancerARNs, lbARN) })
	}
	return out, nil
}

func (b *Balancers) tgByNameLocked(name string) *targetGroup {
	for _, tg := range b.tgs {
		if tg.Name == name {
			return tg
		}
	}
	return nil
}

// DeleteTargetGroup deletes a target group no listener uses.
func (b *Balancers) DeleteTargetGroup(arn string) error {
	b.mu.Lock()
	tg, ok := b.tgs[arn]
	if !ok {
		b.mu.Unlock()
		return notFoundTG()
	}
	if tg.inUseLocked() {
		b.mu.Unlock()
		return awsproto.Errorf("ResourceInUse", "Target group '%s' is currently in use by a listener or a rule", arn)
	}
	var calls []func()
	for _, m := range tg.targets {
		m.stop()
		calls = append(calls, m.waiters...)
		m.waiters = nil
	}
	delete(b.tgs, arn)
	b.control("elasticloadbalancing", EvELBv2, arn, "", "target group deleted", nil)
	b.mu.Unlock()
	run(calls)
	return nil
}

// ModifyTargetGroup changes a target group's health check.
func (b *Balancers) ModifyTargetGroup(arn string, hc HealthCheck, set map[string]bool) (TargetGroup, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tg, ok := b.tgs[arn]
	if !ok {
		return TargetGroup{}, notFoundTG()
	}
	next := tg.HealthCheck
	if err := mergeHealthCheck(&next, hc, set); err != nil {
		return TargetGroup{}, err
	}
	tg.HealthCheck = next
	b.control("elasticloadbalancing", EvELBv2, arn, "", "target group modified", nil)
	return tg.viewLocked(), nil
}

// TargetGroupAttributes returns a target group's attributes, sorted by key.
func (b *Balancers) TargetGroupAttributes(arn string) ([]Tag, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tg, ok := b.tgs[arn]
	if !ok {
		return nil, notFoundTG()
	}
	return sortedAttrs(tg.attrs), nil
}

func sortedAttrs(m map[string]string) []Tag {
	var out []Tag
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, Tag{k, m[k]})
	}
	return out
}

// ModifyTargetGroupAttributes sets attributes and returns them all.
func (b *Balancers) ModifyTargetGroupAttributes(arn string, attrs []Tag) ([]Tag, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tg, ok := b.tgs[arn]
	if !ok {
		return nil, notFoundTG()
	}
	for _, a := range attrs {
		if _, known := tg.attrs[a.Key]; !known {
			return nil, awsproto.Validation("Target group attribute key '%s' is not recognized", a.Key)
		}
		if a.Key == "deregistration_delay.timeout_seconds" {
			if n, err := strconv.Atoi(a.Value); err != nil || n < 0 || n > 3600 {
				return nil, awsproto.Validation("'deregistration_delay.timeout_seconds' must be a number of seconds between 0 and 3600, not '%s'", a.Value)
			}
		}
	}
	for _, a := range attrs {
		tg.attrs[a.Key] = a.Value
	}
	b.control("elasticloadbalancing", EvELBv2, arn, "", "target group attributes modified", nil)
	return sortedAttrs(tg.attrs), nil
}

func (tg *targetGroup) delay() time.Duration {
	n, _ := strconv.Atoi(tg.attrs["deregistration_delay.timeout_seconds"])
	return time.Duration(n) * time.Second
}

// CreateListener creates an HTTP listener forwarding to a target group and
// opens its loopback port on the data plane.
func (b *Balancers) CreateListener(lbARN, protocol string, port int, action, tgARN string) (Listener, error) {
	if protocol != "HTTP" {
		return Listener{}, awsproto.Validation("Protocol: the sandbox's listeners speak HTTP; set it to HTTP, not '%s'", protocol)
	}
	if port < 1 || port > 65535 {
		return Listener{}, awsproto.Validation("1 validation error detected: Value '%d' at 'port' failed to satisfy constraint: Member must have value between 1 and 65535", port)
	}
	if action != "forward" {
		return Listener{}, awsproto.Validation("DefaultActions: the sandbox's listeners take one forward action; set DefaultActions.member.1.Type to forward, not '%s'", action)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	lb, ok := b.lbs[lbARN]
	if !ok {
		return Listener{}, notFoundLB()
	}
	tg, ok := b.tgs[tgARN]
	if !ok {
		return Listener{}, notFoundTG()
	}
	for _, l := range b.listenersOfLocked(lbARN) {
		if l.Port == port {
			return Listener{}, awsproto.Errorf("DuplicateListener", "A listener already exists on this port for this load balancer '%s'", lbARN)
		}
	}
	wasInUse := tg.inUseLocked()
	l := &listener{Listener: Listener{
		ARN: b.arn("listener/app/" + lb.Name + "/" + lb.id + "/" + b.hexLocked(16)), LoadBalancerARN: lbARN,
		Protocol: protocol, Port: port, TargetGroupARN: tgARN,
	}}
	if err := b.openLocked(l.ARN, &l.Address); err != nil {
		return Listener{}, awsproto.Internal(err)
	}
	b.listeners[l.ARN] = l
	b.keys[l.ARN] = route{listener: l}
	b.control("elasticloadbalancing", EvELBv2, l.ARN, "", "listener created", map[string]string{"address": l.Address, "port": strconv.Itoa(port)})
	if !wasInUse {
		for _, m := range tg.targets {
			if m.state == StateUnused {
				b.startLocked(tg, m)
			}
		}
	}
	return l.Listener, nil
}

// Listeners returns listeners by ARN or those of a load balancer.
func (b *Balancers) Listeners(lbARN string, arns []string) ([]Listener, error) {
	if lbARN == "" && len(arns) == 0 {
		return nil, awsproto.Validation("You must specify either listener ARNs or a load balancer ARN")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Listener
	if len(arns) > 0 {
		for _, a := range arns {
			l, ok := b.listeners[a]
			if !ok || (lbARN != "" && l.LoadBalancerARN != lbARN) {
				return nil, awsproto.Errorf("ListenerNotFound", "One or more listeners not found")
			}
			out = append(out, l.Listener)
		}
		return out, nil
	}
	if _, ok := b.lbs[lbARN]; !ok {
		return nil, notFoundLB()
	}
	for _, l := range b.listenersOfLocked(lbARN) {
		out = append(out, l.Listener)
	}
	return out, nil
}

// DeleteListener deletes a listener and closes its port.
func (b *Balancers) DeleteListener(arn string) error {
	b.mu.Lock()
	l, ok := b.listeners[arn]
	if !ok {
		b.mu.Unlock()
		return awsproto.Errorf("ListenerNotFound", "One or more listeners not found")
	}
	calls := b.deleteListenerLocked(l)
	b.mu.Unlock()
	run(calls)
	return nil
}

func (b *Balancers) deleteListenerLocked(l *listener) []func() {
	delete(b.listeners, l.ARN)
	b.closeKeyLocked(l.ARN)
	b.control("elasticloadbalancing", EvELBv2, l.ARN, "", "listener deleted", nil)
	tg := b.tgs[l.TargetGroupARN]
	if tg == nil || tg.inUseLocked() {
		return nil
	}
	var calls []func()
	for _, m := range tg.targets {
		if m.state == StateDraining {
			continue
		}
		m.stop()
		if m.set(StateUnused, ReasonNotInUse, "Target group is not configured to receive traffic from the load balancer") {
			b.targetEvent(tg, m)
		}
	}
	return calls
}

// RegisterTargets registers targets with a target group. Instance targets
// must exist and be running (their private IP is resolved first, without
// the owner's lock).
func (b *Balancers) RegisterTargets(arn string, targets []Target) error {
	if len(targets) == 0 {
		return awsproto.Validation("Targets: give at least one target (Targets.member.1.Id)")
	}
	ips := make([]string, len(targets))
	b.mu.Lock()
	tg, ok := b.tgs[arn]
	var kind string
	if ok {
		kind = tg.TargetType
	}
	b.mu.Unlock()
	if !ok {
		return notFoundTG()
	}
	for i, t := range targets {
		if t.Port < 0 || t.Port > 65535 {
			return awsproto.Validation("1 validation error detected: Value '%d' at 'targets.%d.member.port' failed to satisfy constraint: Member must have value between 1 and 65535", t.Port, i+1)
		}
		ip, err := b.targetIP(kind, t.ID)
		if err != nil {
			return err
		}
		ips[i] = ip
	}
	b.mu.Lock()
	tg, ok = b.tgs[arn]
	if !ok {
		b.mu.Unlock()
		return notFoundTG()
	}
	var calls []func()
	for i, t := range targets {
		calls = append(calls, b.registerLocked(tg, t, ips[i])...)
	}
	b.mu.Unlock()
	run(calls)
	return nil
}

// targetIP is where a target is reached: an instance's private IP, or the
// ip target itself.
func (b *Balancers) targetIP(kind, id string) (string, error) {
	if kind == "ip" {
		if net.ParseIP(id) == nil {
			return "", awsproto.Errorf("InvalidTarget", "The IP address '%s' is not a valid IPv4 address", id)
		}
		return id, nil
	}
	ip, state, ok := b.resolve(id)
	if !ok {
		return "", awsproto.Errorf("InvalidTarget", "The following targets are not valid instances: '%s'", id)
	}
	if state != "running" {
		return "", awsproto.Errorf("InvalidTarget", "The following targets are not in a running state and cannot be registered: '%s'", id)
	}
	return ip, nil
}

func (tg *targetGroup) find(t Target) *member {
	port := t.Port
	if port == 0 {
		port = tg.Port
	}
	for _, m := range tg.targets {
		if m.id == t.ID && m.port == port {
			return m
		}
	}
	return nil
}

// registerLocked adds a target (or takes back a draining one) and starts
// its health checks when a listener uses the group.
func (b *Balancers) registerLocked(tg *targetGroup, t Target, ip string) []func() {
	if t.Port == 0 {
		t.Port = tg.Port
	}
	m := tg.find(t)
	var calls []func()
	switch {
	case m == nil:
		b.regs++
		m = &member{id: t.ID, port: t.Port, ip: ip, reg: b.regs}
		tg.targets = append(tg.targets, m)
	case m.state == StateDraining:
		m.stop()
		calls, m.waiters = m.waiters, nil
	default:
		return nil // registered already: nothing changes
	}
	m.ip, m.ok, m.fail = ip, 0, 0
	b.control("elasticloadbalancing", EvTarget, tg.ARN, t.ID, "target registered", map[string]string{"port": strconv.Itoa(t.Port), "address": net.JoinHostPort(ip, strconv.Itoa(t.Port))})
	if tg.inUseLocked() {
		b.startLocked(tg, m)
	} else {
		m.set(StateUnused, ReasonNotInUse, "Target group is not configured to receive traffic from the load balancer")
		b.targetEvent(tg, m)
	}
	return calls
}

// startLocked puts a member in initial and schedules its first check.
func (b *Balancers) startLocked(tg *targetGroup, m *member) {
	m.stop()
	m.ok, m.fail = 0, 0
	m.set(StateInitial, ReasonRegistration, "Target registration is in progress")
	b.targetEvent(tg, m)
	b.checkLaterLocked(tg, m, 0)
}

func (b *Balancers) targetEvent(tg *targetGroup, m *member) {
	b.events.Append(eventEntry(tg.ARN, m, m.state, m.reason))
}

func (tg *targetGroup) resource() string { return tg.ARN }

func (tg *targetGroup) probeLocked() (probe, bool) {
	hc := tg.HealthCheck
	if !hc.Enabled || !tg.inUseLocked() {
		return probe{}, false
	}
	pr := probe{
		path: hc.Path, matcher: hc.Matcher, healthy: hc.HealthyThreshold, unhealthy: hc.UnhealthyThreshold,
		interval: time.Duration(hc.Interval) * time.Second, timeout: time.Duration(hc.Timeout) * time.Second,
	}
	if hc.Port != "traffic-port" {
		pr.port, _ = strconv.Atoi(hc.Port)
	}
	return pr, true
}

func (tg *targetGroup) resultLocked(m *member, r result) []func() {
	pr, _ := tg.probeLocked()
	next := step(m, pr, r)
	changed := false
	switch {
	case next == StateHealthy:
		changed = m.set(StateHealthy, "", "")
	case next == StateUnhealthy:
		changed = m.set(StateUnhealthy, r.reason, r.description)
	case m.state == StateInitial:
		changed = m.set(StateInitial, ReasonInitialCheck, "Initial health checking in progress")
	case m.state == StateUnhealthy && !r.ok:
		changed = m.set(StateUnhealthy, r.reason, r.description)
	}
	if changed {
		tg.b.targetEvent(tg, m)
	}
	return nil
}

// DeregisterTargets starts draining targets. Each must be registered.
func (b *Balancers) DeregisterTargets(arn string, targets []Target) error {
	if len(targets) == 0 {
		return awsproto.Validation("Targets: give at least one target (Targets.member.1.Id)")
	}
	b.mu.Lock()
	tg, ok := b.tgs[arn]
	if !ok {
		b.mu.Unlock()
		return notFoundTG()
	}
	for _, t := range targets {
		if tg.find(t) == nil {
			b.mu.Unlock()
			return awsproto.Errorf("InvalidTarget", "The specified target does not exist, is not in the same VPC as the target group, or has an unsupported instance type")
		}
	}
	var calls []func()
	for _, t := range targets {
		calls = append(calls, b.deregisterLocked(tg, tg.find(t), nil)...)
	}
	b.mu.Unlock()
	run(calls)
	return nil
}

// deregisterLocked drains a member: no new requests; it leaves the group
// once it has no request in flight or after the deregistration delay,
// whichever comes first (AWS completes at once a deregistration without
// in-flight requests).
func (b *Balancers) deregisterLocked(tg *targetGroup, m *member, done func()) []func() {
	if done != nil {
		m.waiters = append(m.waiters, done)
	}
	if m.state == StateDraining {
		return nil
	}
	m.stop()
	m.set(StateDraining, ReasonDeregistration, "Target deregistration is in progress")
	b.targetEvent(tg, m)
	if m.inflight == 0 || tg.delay() == 0 {
		return b.finishLocked(tg, m)
	}
	gen := m.gen
	m.drain = b.after(tg.delay(), func() []func() {
		if m.gen != gen {
			return nil
		}
		return b.finishLocked(tg, m)
	})
	return nil
}

// finishLocked ends a member's draining: it leaves the group.
func (b *Balancers) finishLocked(tg *targetGroup, m *member) []func() {
	m.stop()
	tg.targets = slices.DeleteFunc(tg.targets, func(x *member) bool { return x == m })
	m.set(StateUnused, ReasonNotRegistered, "Target is not registered to the target group")
	b.targetEvent(tg, m)
	calls := m.waiters
	m.waiters = nil
	return calls
}

// TargetHealth describes the health of the given targets, or of every
// registered target when none is given.
func (b *Balancers) TargetHealth(arn string, targets []Target) ([]TargetHealth, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tg, ok := b.tgs[arn]
	if !ok {
		return nil, notFoundTG()
	}
	hcPort := func(port int) string {
		if tg.HealthCheck.Port == "traffic-port" {
			return strconv.Itoa(port)
		}
		return tg.HealthCheck.Port
	}
	var out []TargetHealth
	if len(targets) == 0 {
		for _, m := range tg.targets {
			out = append(out, TargetHealth{Target: Target{m.id, m.port}, HealthCheckPort: hcPort(m.port), State: m.state, Reason: m.reason, Description: m.description})
		}
		return out, nil
	}
	for _, t := range targets {
		if t.Port == 0 {
			t.Port = tg.Port
		}
		m := tg.find(t)
		if m == nil {
			out = append(out, TargetHealth{Target: t, HealthCheckPort: hcPort(t.Port), State: StateUnused, Reason: ReasonNotRegistered, Description: "Target is not registered to the target group"})
			continue
		}
		out = append(out, TargetHealth{Target: Target{m.id, m.port}, HealthCheckPort: hcPort(m.port), State: m.state, Reason: m.reason, Description: m.description})
	}
	return out, nil
}
