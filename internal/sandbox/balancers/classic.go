package balancers

import (
	"fmt"
	"hash/fnv"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
)

// ClassicListener is a classic load balancer's listener, with the
// loopback address its data plane listens on.
type ClassicListener struct {
	Protocol, InstanceProtocol     string
	LoadBalancerPort, InstancePort int
	Address                        string
}

// ClassicHealthCheck is a classic load balancer's health check.
type ClassicHealthCheck struct {
	Target                                                  string
	Interval, Timeout, HealthyThreshold, UnhealthyThreshold int
}

// ClassicAttributes are the attributes the sandbox keeps.
type ClassicAttributes struct {
	CrossZone        bool
	DrainingEnabled  bool
	DrainingTimeout  int
	IdleTimeout      int
	AccessLogEnabled bool
}

// Classic is a classic load balancer as DescribeLoadBalancers shows it.
type Classic struct {
	Name, DNSName, Scheme, HostedZoneID, VPCID string
	Created                                    time.Time
	Listeners                                  []ClassicListener
	Zones, Subnets, SecurityGroups             []string
	HealthCheck                                ClassicHealthCheck
	Instances                                  []string
}

type classic struct {
	b *Balancers
	Classic
	attrs     ClassicAttributes
	tags      map[string]string
	instances []*member
	next      int
	counts    map[int]*counts // by load balancer port
}

// counts are one classic listener's data-plane counts.
type counts struct{ requests, errors5xx, noTarget int64 }

// InstanceState is one member of DescribeInstanceHealth.
type InstanceState struct {
	InstanceID, State, ReasonCode, Description string
}

func classicNotFound(name string) error {
	return awsproto.Errorf("LoadBalancerNotFound", "There is no ACTIVE Load Balancer named '%s'", name)
}

func (c *classic) key(port int) string { return "classic/" + c.Name + "/" + strconv.Itoa(port) }

// CreateClassicInput is a classic load balancer to create.
type CreateClassicInput struct {
	Name, Scheme                   string
	Listeners                      []ClassicListener
	Zones, Subnets, SecurityGroups []string
	Tags                           []Tag
}

// CreateClassic creates a classic load balancer, opens a loopback port per
// listener and returns its DNS name.
func (b *Balancers) CreateClassic(in CreateClassicInput) (string, error) {
	if !nameRE.MatchString(in.Name) {
		return "", awsproto.Validation("LoadBalancerName '%s' must be 1 to 32 letters, digits and hyphens, not starting or ending with a hyphen", in.Name)
	}
	if len(in.Listeners) == 0 {
		return "", awsproto.Validation("Listeners: give at least one listener (Listeners.member.1.Protocol, LoadBalancerPort, InstancePort)")
	}
	if len(in.Zones) == 0 && len(in.Subnets) == 0 {
		return "", awsproto.Validation("Either AvailabilityZones or SubnetIds must be specified")
	}
	if in.Scheme == "" {
		in.Scheme = "internet-facing"
	}
	seen := map[int]bool{}
	for i := range in.Listeners {
		l := &in.Listeners[i]
		l.Protocol = strings.ToUpper(l.Protocol)
		if l.InstanceProtocol == "" {
			l.InstanceProtocol = l.Protocol
		}
		l.InstanceProtocol = strings.ToUpper(l.InstanceProtocol)
		if l.Protocol != "HTTP" || l.InstanceProtocol != "HTTP" {
			return "", awsproto.Errorf("UnsupportedProtocol", "Listeners.member.%d: the sandbox's classic listeners speak HTTP to HTTP, not %s to %s", i+1, l.Protocol, l.InstanceProtocol)
		}
		if l.LoadBalancerPort < 1 || l.LoadBalancerPort > 65535 || l.InstancePort < 1 || l.InstancePort > 65535 {
			return "", awsproto.Validation("Listeners.member.%d: LoadBalancerPort and InstancePort must be between 1 and 65535", i+1)
		}
		if seen[l.LoadBalancerPort] {
			return "", awsproto.Errorf("DuplicateListener", "A listener already exists for %s with LoadBalancerPort %d", in.Name, l.LoadBalancerPort)
		}
		seen[l.LoadBalancerPort] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.classics[in.Name]; ok {
		return "", awsproto.Errorf("DuplicateLoadBalancerName", "Load Balancer named '%s' already exists and it is configured with different parameters.", c.Name)
	}
	zones := slices.Clone(in.Zones)
	for _, s := range in.Subnets {
		zones = append(zones, b.subnetZone(s))
	}
	c := &classic{b: b, tags: map[string]string{}, counts: map[int]*counts{}, Classic: Classic{
		Name: in.Name, Scheme: in.Scheme, HostedZoneID: "Z35SXDOTRQ7X7K", VPCID: "",
		DNSName: in.Name + "-" + b.digitsLocked(10) + "." + b.cfg.Region + ".elb.localhost",
		Created: b.clock.Now().UTC(), Zones: sortedCopy(zones), Subnets: sortedCopy(in.Subnets),
		SecurityGroups: slices.Clone(in.SecurityGroups), Listeners: slices.Clone(in.Listeners),
		HealthCheck: ClassicHealthCheck{Target: "TCP:" + strconv.Itoa(in.Listeners[0].InstancePort), Interval: 30, Timeout: 5, UnhealthyThreshold: 2, HealthyThreshold: 10},
	}, attrs: ClassicAttributes{DrainingTimeout: 300, IdleTimeout: 60}}
	if in.Scheme == "internal" {
		c.DNSName = "internal-" + c.DNSName
	}
	// Zones without subnets place it in the account's default VPC, one
	// default subnet per zone, with the default security group.
	c.VPCID = "vpc-" + b.hexLocked(17)
	if len(in.Subnets) == 0 {
		for _, z := range c.Zones {
			c.Subnets = append(c.Subnets, defaultSubnet(z))
		}
	}
	if len(c.SecurityGroups) == 0 {
		c.SecurityGroups = []string{"sg-" + b.hexLocked(17)}
	}
	for _, t := range in.Tags {
		c.tags[t.Key] = t.Value
	}
	for i := range c.Listeners {
		if err := b.openLocked(c.key(c.Listeners[i].LoadBalancerPort), &c.Listeners[i].Address); err != nil {
			for _, l := range c.Listeners[:i] {
				b.closeKeyLocked(c.key(l.LoadBalancerPort))
			}
			return "", awsproto.Internal(err)
		}
		c.counts[c.Listeners[i].LoadBalancerPort] = &counts{}
		b.keys[c.key(c.Listeners[i].LoadBalancerPort)] = route{classic: c, port: c.Listeners[i].InstancePort, counts: c.counts[c.Listeners[i].LoadBalancerPort]}
	}
	b.classics[c.Name] = c
	b.control("elasticloadbalancing", EvELB, c.Name, "", "load balancer created", map[string]string{"dns": c.DNSName})
	return c.DNSName, nil
}

func (c *classic) viewLocked() Classic {
	v := c.Classic
	v.Listeners = slices.Clone(v.Listeners)
	v.Instances = c.registeredLocked()
	return v
}

func (c *classic) registeredLocked() []string {
	out := []string{}
	for _, m := range c.instances {
		if m.state != StateDraining {
			out = append(out, m.id)
		}
	}
	return out
}

// Classics returns classic load balancers by name (all when none).
func (b *Balancers) Classics(names []string) ([]Classic, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Classic
	if len(names) > 0 {
		for _, n := range names {
			c, ok := b.classics[n]
			if !ok {
				return nil, classicNotFound(n)
			}
			out = append(out, c.viewLocked())
		}
		return out, nil
	}
	for _, n := range slices.Sorted(maps.Keys(b.classics)) {
		out = append(out, b.classics[n].viewLocked())
	}
	return out, nil
}

// DeleteClassic deletes a classic load balancer; one that does not exist
// is deleted already, as on AWS.
func (b *Balancers) DeleteClassic(name string) {
	b.mu.Lock()
	c, ok := b.classics[name]
	if !ok {
		b.mu.Unlock()
		return
	}
	var calls []func()
	for _, l := range c.Listeners {
		b.closeKeyLocked(c.key(l.LoadBalancerPort))
	}
	for _, m := range c.instances {
		m.stop()
		calls = append(calls, m.waiters...)
		m.waiters = nil
	}
	delete(b.classics, name)
	b.control("elasticloadbalancing", EvELB, name, "", "load balancer deleted", nil)
	b.mu.Unlock()
	run(calls)
}

// RegisterInstances registers running instances and returns every
// instance now registered.
func (b *Balancers) RegisterInstances(name string, ids []string) ([]string, error) {
	b.mu.Lock()
	_, ok := b.classics[name]
	b.mu.Unlock()
	if !ok {
		return nil, classicNotFound(name)
	}
	ips := make([]string, len(ids))
	for i, id := range ids {
		ip, state, ok := b.resolve(id)
		if !ok || state != "running" {
			return nil, awsproto.Errorf("InvalidInstance", "The requested instance '%s' is not in a valid state or does not exist", id)
		}
		ips[i] = ip
	}
	b.mu.Lock()
	c, ok := b.classics[name]
	if !ok {
		b.mu.Unlock()
		return nil, classicNotFound(name)
	}
	var calls []func()
	for i, id := range ids {
		calls = append(calls, b.registerInstanceLocked(c, id, ips[i])...)
	}
	out := c.registeredLocked()
	b.mu.Unlock()
	run(calls)
	return out, nil
}

func (c *classic) find(id string) *member {
	for _, m := range c.instances {
		if m.id == id {
			return m
		}
	}
	return nil
}

func (b *Balancers) registerInstanceLocked(c *classic, id, ip string) []func() {
	m := c.find(id)
	var calls []func()
	switch {
	case m == nil:
		b.regs++
		m = &member{id: id, ip: ip, reg: b.regs}
		c.instances = append(c.instances, m)
	case m.state == StateDraining:
		m.stop()
		calls, m.waiters = m.waiters, nil
	default:
		return nil
	}
	m.ip, m.ok, m.fail = ip, 0, 0
	m.set(StateInitial, "ELB", "Instance registration is still in progress.")
	b.control("elasticloadbalancing", EvTarget, c.Name, id, "instance registered", map[string]string{"state": "OutOfService"})
	b.checkLaterLocked(c, m, 0)
	return calls
}

// DeregisterInstances deregisters instances (draining them when connection
// draining is enabled) and returns the instances still registered.
func (b *Balancers) DeregisterInstances(name string, ids []string) ([]string, error) {
	b.mu.Lock()
	c, ok := b.classics[name]
	if !ok {
		b.mu.Unlock()
		return nil, classicNotFound(name)
	}
	for _, id := range ids {
		if m := c.find(id); m == nil || m.state == StateDraining {
			b.mu.Unlock()
			return nil, awsproto.Errorf("InvalidInstance", "The requested instance '%s' is not registered with the load balancer '%s'", id, name)
		}
	}
	var calls []func()
	for _, id := range ids {
		calls = append(calls, b.deregisterInstanceLocked(c, c.find(id), nil)...)
	}
	out := c.registeredLocked()
	b.mu.Unlock()
	run(calls)
	return out, nil
}

func (b *Balancers) deregisterInstanceLocked(c *classic, m *member, done func()) []func() {
	if done != nil {
		m.waiters = append(m.waiters, done)
	}
	if m.state == StateDraining {
		return nil
	}
	m.stop()
	m.set(StateDraining, "ELB", "Instance deregistration currently in progress.")
	b.control("elasticloadbalancing", EvTarget, c.Name, m.id, "instance deregistered", map[string]string{"state": "draining"})
	if !c.attrs.DrainingEnabled || m.inflight == 0 {
		return b.finishInstanceLocked(c, m)
	}
	gen := m.gen
	m.drain = b.after(time.Duration(c.attrs.DrainingTimeout)*time.Second, func() []func() {
		if m.gen != gen {
			return nil
		}
		return b.finishInstanceLocked(c, m)
	})
	return nil
}

func (b *Balancers) finishInstanceLocked(c *classic, m *member) []func() {
	m.stop()
	c.instances = slices.DeleteFunc(c.instances, func(x *member) bool { return x == m })
	b.control("elasticloadbalancing", EvTarget, c.Name, m.id, "instance drained", map[string]string{"state": "OutOfService"})
	calls := m.waiters
	m.waiters = nil
	return calls
}

// classicState maps a member's state to classic ELB's words.
func classicState(m *member) InstanceState {
	switch m.state {
	case StateHealthy:
		return InstanceState{m.id, "InService", "N/A", "N/A"}
	case StateUnhealthy:
		return InstanceState{m.id, "OutOfService", "Instance", "Instance has failed at least the UnhealthyThreshold number of health checks consecutively."}
	}
	return InstanceState{m.id, "OutOfService", "ELB", "Instance registration is still in progress."}
}

// InstanceHealth describes the given instances, or every registered one.
func (b *Balancers) InstanceHealth(name string, ids []string) ([]InstanceState, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.classics[name]
	if !ok {
		return nil, classicNotFound(name)
	}
	out := []InstanceState{}
	if len(ids) == 0 {
		for _, m := range c.instances {
			if m.state != StateDraining {
				out = append(out, classicState(m))
			}
		}
		return out, nil
	}
	for _, id := range ids {
		m := c.find(id)
		if m == nil || m.state == StateDraining {
			return nil, awsproto.Errorf("InvalidInstance", "Could not find EC2 instance %s.", id)
		}
		out = append(out, classicState(m))
	}
	return out, nil
}

// ConfigureHealthCheck sets a classic load balancer's health check.
func (b *Balancers) ConfigureHealthCheck(name string, hc ClassicHealthCheck) (ClassicHealthCheck, error) {
	if _, _, err := parseClassicTarget(hc.Target); err != nil {
		return ClassicHealthCheck{}, err
	}
	for _, f := range []struct {
		name   string
		v      int
		lo, hi int
	}{
		{"HealthCheck.Interval", hc.Interval, 5, 300}, {"HealthCheck.Timeout", hc.Timeout, 2, 60},
		{"HealthCheck.HealthyThreshold", hc.HealthyThreshold, 2, 10}, {"HealthCheck.UnhealthyThreshold", hc.UnhealthyThreshold, 2, 10},
	} {
		if f.v < f.lo || f.v > f.hi {
			return ClassicHealthCheck{}, awsproto.Validation("%s must be between %d and %d, not %d", f.name, f.lo, f.hi, f.v)
		}
	}
	if hc.Timeout >= hc.Interval {
		return ClassicHealthCheck{}, awsproto.Validation("HealthCheck.Timeout must be less than HealthCheck.Interval")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.classics[name]
	if !ok {
		return ClassicHealthCheck{}, classicNotFound(name)
	}
	c.HealthCheck = hc
	b.control("elasticloadbalancing", EvELB, name, "", "health check configured", map[string]string{"target": hc.Target})
	return hc, nil
}

// parseClassicTarget reads "HTTP:80/path", "TCP:80".
func parseClassicTarget(t string) (probe, int, error) {
	proto, rest, ok := strings.Cut(t, ":")
	bad := awsproto.Validation("HealthCheck.Target '%s' must be PROTOCOL:PORT[/PATH], with HTTP or HTTPS and a path, or TCP or SSL without one (for example HTTP:80/health or TCP:80)", t)
	if !ok {
		return probe{}, 0, bad
	}
	portS, path, hasPath := strings.Cut(rest, "/")
	port, err := strconv.Atoi(portS)
	if err != nil || port < 1 || port > 65535 {
		return probe{}, 0, bad
	}
	switch strings.ToUpper(proto) {
	case "HTTP", "HTTPS":
		if !hasPath {
			return probe{}, 0, bad
		}
		return probe{https: strings.EqualFold(proto, "HTTPS"), path: "/" + path, port: port, matcher: "200"}, port, nil
	case "TCP", "SSL":
		if hasPath {
			return probe{}, 0, bad
		}
		return probe{tcp: true, port: port}, port, nil
	}
	return probe{}, 0, bad
}

func (c *classic) resource() string { return c.Name }

func (c *classic) probeLocked() (probe, bool) {
	pr, _, err := parseClassicTarget(c.HealthCheck.Target)
	if err != nil {
		return probe{}, false
	}
	pr.interval = time.Duration(c.HealthCheck.Interval) * time.Second
	pr.timeout = time.Duration(c.HealthCheck.Timeout) * time.Second
	pr.healthy, pr.unhealthy = c.HealthCheck.HealthyThreshold, c.HealthCheck.UnhealthyThreshold
	return pr, true
}

func (c *classic) resultLocked(m *member, r result) []func() {
	pr, _ := c.probeLocked()
	before := classicState(m).State
	switch step(m, pr, r) {
	case StateHealthy:
		m.set(StateHealthy, "", "")
	case StateUnhealthy:
		m.set(StateUnhealthy, r.reason, r.description)
	}
	if after := classicState(m).State; after != before {
		c.b.control("elasticloadbalancing", EvTarget, c.Name, m.id, "instance health changed", map[string]string{"state": after})
	}
	return nil
}

// ClassicAttributesOf returns a classic load balancer's attributes.
func (b *Balancers) ClassicAttributesOf(name string) (ClassicAttributes, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.classics[name]
	if !ok {
		return ClassicAttributes{}, classicNotFound(name)
	}
	return c.attrs, nil
}

// ModifyClassicAttributes applies set to a classic load balancer's
// attributes and returns them.
func (b *Balancers) ModifyClassicAttributes(name string, set func(*ClassicAttributes) error) (ClassicAttributes, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.classics[name]
	if !ok {
		return ClassicAttributes{}, classicNotFound(name)
	}
	next := c.attrs
	if err := set(&next); err != nil {
		return ClassicAttributes{}, err
	}
	if next.DrainingTimeout < 1 || next.DrainingTimeout > 3600 {
		return ClassicAttributes{}, awsproto.Validation("ConnectionDraining.Timeout must be between 1 and 3600 seconds, not %d", next.DrainingTimeout)
	}
	c.attrs = next
	b.control("elasticloadbalancing", EvELB, name, "", "attributes modified", map[string]string{
		"connection_draining": strconv.FormatBool(next.DrainingEnabled), "connection_draining_timeout": strconv.Itoa(next.DrainingTimeout),
	})
	return next, nil
}

// AddTags adds or replaces tags on classic load balancers.
func (b *Balancers) AddTags(names []string, tags []Tag) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range names {
		if _, ok := b.classics[n]; !ok {
			return classicNotFound(n)
		}
	}
	for _, n := range names {
		c := b.classics[n]
		for _, t := range tags {
			c.tags[t.Key] = t.Value
		}
		if len(c.tags) > 50 {
			return awsproto.Errorf("TooManyTags", "The quota for the number of tags that can be assigned to a load balancer has been reached")
		}
	}
	return nil
}

// Tags returns each named classic load balancer's tags, sorted by key.
func (b *Balancers) Tags(names []string) (map[string][]Tag, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string][]Tag{}
	for _, n := range names {
		c, ok := b.classics[n]
		if !ok {
			return nil, classicNotFound(n)
		}
		out[n] = sortedAttrs(c.tags)
	}
	return out, nil
}

// defaultSubnet is the id of a zone's default subnet: the same in every
// sandbox.
func defaultSubnet(zone string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(zone))
	return fmt.Sprintf("subnet-%017x", h.Sum64())
}

func eventEntry(resource string, m *member, state, reason string) eventlog.Event {
	attrs := map[string]string{"address": net.JoinHostPort(m.ip, strconv.Itoa(m.port))}
	if reason != "" {
		attrs["reason"] = reason
	}
	return eventlog.Event{Service: "elasticloadbalancing", Kind: EvTarget, Resource: resource, Instance: m.id, State: state, Attrs: attrs}
}
