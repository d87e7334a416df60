package world

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
)

// Balancers is what the world needs from the load balancers' owner. The world calls
// it with its own lock held (lock order world → balancers); the owner never calls the
// world while holding its own lock, and calls done callbacks without holding it.
type Balancers interface {
	// CheckTargetGroups returns AWS's error for the first ARN that does not exist (nil if all do).
	CheckTargetGroups(arns []string) error
	// CheckLoadBalancers likewise for classic ELB names.
	CheckLoadBalancers(names []string) error
	// Register registers the instance (private IP) with the target groups (at each group's port) and classic ELBs.
	Register(targetGroups, loadBalancers []string, instanceID, privateIP string)
	// Deregister starts deregistration/draining from all of them; done is called once
	// draining has finished everywhere (after the deregistration delay / connection draining timeout).
	Deregister(targetGroups, loadBalancers []string, instanceID string, done func())
	// Healthy reports the instance's health in all of them: known is false while any is still initial.
	Healthy(targetGroups, loadBalancers []string, instanceID string) (healthy, known bool)
}

// Traffic source types (TrafficSourceIdentifier.Type).
const (
	TrafficELB        = "elb"   // a classic load balancer, by name
	TrafficELBv2      = "elbv2" // an ELBv2 target group, by ARN
	TrafficVPCLattice = "vpc-lattice"
)

// Traffic source states, as DescribeTrafficSources and the older
// DescribeLoadBalancerTargetGroups and DescribeLoadBalancers report them.
const (
	TrafficAdding    = "Adding"
	TrafficAdded     = "Added"
	TrafficInService = "InService"
	TrafficRemoving  = "Removing"
	TrafficRemoved   = "Removed"
)

// TrafficSource is a load balancer or target group attached to a group.
type TrafficSource struct {
	Identifier string // target group ARN or classic load balancer name
	Type       string // TrafficELB | TrafficELBv2
	State      string
	// Legacy is set for sources attached through TargetGroupARNs,
	// LoadBalancerNames or Attach(LoadBalancerTargetGroups|LoadBalancers):
	// only those show in the group's TargetGroupARNs and LoadBalancerNames
	// and in DescribeLoadBalancerTargetGroups / DescribeLoadBalancers.
	Legacy bool

	draining int // instances still draining while Removing
}

// TargetGroupsNotValid is Auto Scaling's error when a target group given to
// it does not exist.
func TargetGroupsNotValid() error {
	return awsproto.Validation("Provided Target Groups may not be valid. Please ensure they exist and try again.")
}

// LoadBalancersNotValid is Auto Scaling's error when a classic load
// balancer given to it does not exist.
func LoadBalancersNotValid() error {
	return awsproto.Validation("Provided Load Balancers may not be valid. Please ensure they exist and try again.")
}

// noBalancers is the Balancers of a world wired to none: no target group or
// load balancer exists.
type noBalancers struct{}

func (noBalancers) CheckTargetGroups(arns []string) error {
	if len(arns) > 0 {
		return TargetGroupsNotValid()
	}
	return nil
}

func (noBalancers) CheckLoadBalancers(names []string) error {
	if len(names) > 0 {
		return LoadBalancersNotValid()
	}
	return nil
}

func (noBalancers) Register([]string, []string, string, string) {}

func (noBalancers) Deregister(_, _ []string, _ string, done func()) { done() }

func (noBalancers) Healthy([]string, []string, string) (bool, bool) { return true, true }

// awsError keeps an owner's Auto Scaling error (a ValidationError) as it
// is and answers anything else (ELB's own not-found codes, plain errors)
// with Auto Scaling's text: Auto Scaling never returns ELB's codes.
func awsError(err, fallback error) error {
	var ae *awsproto.Error
	if errors.As(err, &ae) && ae.Code == "ValidationError" {
		return err
	}
	return fallback
}

// Event kinds of load balancer attachment and registration.
const (
	EvTrafficSource          = "traffic-source"         // attached, state changed, detached (attrs: type, state)
	EvInstanceRegistered     = "instance-registered"    // with the group's load balancers, before InService
	EvInstanceDeregistering  = "instance-deregistering" // draining started
	EvInstanceDeregistered   = "instance-deregistered"  // draining finished
	trafficSourceMaxIDLength = 511
)

// TrafficInput names traffic sources to attach or detach.
type TrafficInput struct {
	TargetGroups  []string
	LoadBalancers []string
	// Legacy: attached through the target group and load balancer calls
	// rather than AttachTrafficSources.
	Legacy bool
}

func (t TrafficInput) empty() bool { return len(t.TargetGroups) == 0 && len(t.LoadBalancers) == 0 }

// checkTrafficLocked validates sources to attach: well-formed, and known to
// the load balancers' owner.
func (w *World) checkTrafficLocked(in TrafficInput) error {
	for _, id := range append(slices.Clone(in.TargetGroups), in.LoadBalancers...) {
		if id == "" || len(id) > trafficSourceMaxIDLength {
			return awsproto.Validation("1 validation error detected: Value '%s' at 'identifier' failed to satisfy constraint: Member must have length between 1 and %d", id, trafficSourceMaxIDLength)
		}
	}
	if err := w.bal.CheckTargetGroups(in.TargetGroups); err != nil {
		return awsError(err, TargetGroupsNotValid())
	}
	if err := w.bal.CheckLoadBalancers(in.LoadBalancers); err != nil {
		return awsError(err, LoadBalancersNotValid())
	}
	return nil
}

// attachLocked adds sources to a group (those already attached stay as
// they are) and registers its in-service instances with the new ones. A
// source attached when the group is created starts InService, as on AWS.
func (w *World) attachLocked(g *Group, in TrafficInput, atCreate bool) {
	var added []*TrafficSource
	add := func(id, typ string) {
		if i := slices.IndexFunc(g.Traffic, func(s *TrafficSource) bool { return s.Identifier == id && s.Type == typ }); i >= 0 {
			s := g.Traffic[i]
			if s.State == TrafficRemoving {
				// Attached again while draining: AWS keeps the attachment.
				s.State = TrafficAdded
				w.trafficEventLocked(g, s, "attached again while removing")
			}
			s.Legacy = s.Legacy || in.Legacy
			return
		}
		s := &TrafficSource{Identifier: id, Type: typ, State: TrafficAdding, Legacy: in.Legacy}
		g.Traffic = append(g.Traffic, s)
		w.trafficEventLocked(g, s, "attached")
		added = append(added, s)
	}
	for _, id := range in.TargetGroups {
		add(id, TrafficELBv2)
	}
	for _, id := range in.LoadBalancers {
		add(id, TrafficELB)
	}
	if len(added) == 0 {
		return
	}
	tgs, lbs := split(added)
	for _, id := range g.Instances {
		inst := w.insts[id]
		if inst.State != StateInService {
			continue // a launching instance registers with all of them at Pending:Proceed
		}
		w.bal.Register(tgs, lbs, inst.ID, inst.PrivateIP)
		inst.tgs = appendNew(inst.tgs, tgs...)
		inst.lbs = appendNew(inst.lbs, lbs...)
		w.emitLocked(Event{Kind: EvInstanceRegistered, Group: g.Name, Instance: inst.ID, State: inst.State, Detail: registrationDetail(tgs, lbs)})
	}
	for _, s := range added {
		s.State = TrafficAdded
		if atCreate {
			s.State = TrafficInService
		}
		w.trafficEventLocked(g, s, "instances registered")
	}
	w.armHealthChecksLocked()
}

// detachLocked deregisters the group's instances from sources and removes
// them once draining has finished. Sources not attached are ignored.
func (w *World) detachLocked(g *Group, in TrafficInput) {
	var gone []*TrafficSource
	pick := func(id, typ string) {
		i := slices.IndexFunc(g.Traffic, func(s *TrafficSource) bool { return s.Identifier == id && s.Type == typ })
		if i < 0 || g.Traffic[i].State == TrafficRemoving {
			return
		}
		s := g.Traffic[i]
		s.State = TrafficRemoving
		w.trafficEventLocked(g, s, "detaching")
		gone = append(gone, s)
	}
	for _, id := range in.TargetGroups {
		pick(id, TrafficELBv2)
	}
	for _, id := range in.LoadBalancers {
		pick(id, TrafficELB)
	}
	for _, s := range gone {
		for _, id := range g.Instances {
			inst := w.insts[id]
			var tgs, lbs []string
			if s.Type == TrafficELBv2 && slices.Contains(inst.tgs, s.Identifier) {
				tgs = []string{s.Identifier}
				inst.tgs = slices.DeleteFunc(inst.tgs, func(x string) bool { return x == s.Identifier })
			}
			if s.Type == TrafficELB && slices.Contains(inst.lbs, s.Identifier) {
				lbs = []string{s.Identifier}
				inst.lbs = slices.DeleteFunc(inst.lbs, func(x string) bool { return x == s.Identifier })
			}
			if tgs == nil && lbs == nil {
				continue
			}
			s.draining++
			w.emitLocked(Event{Kind: EvInstanceDeregistering, Group: g.Name, Instance: inst.ID, State: inst.State, Detail: registrationDetail(tgs, lbs) + " (detached)"})
			w.deregisterLocked(tgs, lbs, inst.ID, func() {
				w.emitLocked(Event{Kind: EvInstanceDeregistered, Group: g.Name, Instance: inst.ID, Detail: registrationDetail(tgs, lbs) + " (detached)"})
				s.draining--
				w.maybeRemoveSourceLocked(g, s)
			})
		}
		w.maybeRemoveSourceLocked(g, s)
	}
}

// maybeRemoveSourceLocked drops a Removing source once no instance drains
// from it.
func (w *World) maybeRemoveSourceLocked(g *Group, s *TrafficSource) {
	if s.State != TrafficRemoving || s.draining > 0 {
		return
	}
	i := slices.Index(g.Traffic, s)
	if i < 0 {
		return
	}
	g.Traffic = slices.Delete(g.Traffic, i, i+1)
	s.State = TrafficRemoved
	w.trafficEventLocked(g, s, "detached")
}

func (w *World) trafficEventLocked(g *Group, s *TrafficSource, what string) {
	w.emitLocked(Event{Kind: EvTrafficSource, Group: g.Name, Resource: s.Identifier, Detail: fmt.Sprintf("%s %s: %s", s.Type, what, s.State),
		Attrs: map[string]string{"type": s.Type, "state": s.State}})
}

// deregisterLocked asks the balancers to deregister an instance and calls
// then under the world's lock once draining has finished, unless the world
// has closed by then. A done the owner calls before Deregister returns
// (nothing to drain) runs then at once.
func (w *World) deregisterLocked(tgs, lbs []string, instanceID string, then func()) {
	var mu sync.Mutex
	returned, early := false, false
	done := func() {
		mu.Lock()
		if !returned {
			early = true
			mu.Unlock()
			return
		}
		mu.Unlock()
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.closed {
			return
		}
		then()
	}
	w.bal.Deregister(slices.Clone(tgs), slices.Clone(lbs), instanceID, done)
	mu.Lock()
	returned = true
	now := early
	mu.Unlock()
	if now {
		then()
	}
}

// registerLocked registers a launching instance with its group's sources
// (at Pending:Proceed, before InService).
func (w *World) registerLocked(g *Group, in *Instance) {
	var live []*TrafficSource
	for _, s := range g.Traffic {
		if s.State != TrafficRemoving {
			live = append(live, s)
		}
	}
	if len(live) == 0 {
		return
	}
	tgs, lbs := split(live)
	w.bal.Register(tgs, lbs, in.ID, in.PrivateIP)
	in.tgs, in.lbs = tgs, lbs
	w.emitLocked(Event{Kind: EvInstanceRegistered, Group: g.Name, Instance: in.ID, State: in.State, Detail: registrationDetail(tgs, lbs)})
}

// startDeregistrationLocked deregisters an instance from every source it
// is registered with; then runs under the lock once draining is over, or
// at once when it is registered nowhere. It reports whether it waits.
func (w *World) startDeregistrationLocked(in *Instance, then func()) bool {
	if len(in.tgs) == 0 && len(in.lbs) == 0 {
		return false
	}
	tgs, lbs := in.tgs, in.lbs
	in.tgs, in.lbs = nil, nil
	in.draining = true
	w.emitLocked(Event{Kind: EvInstanceDeregistering, Group: in.Group, Instance: in.ID, State: in.State, Detail: registrationDetail(tgs, lbs)})
	w.deregisterLocked(tgs, lbs, in.ID, func() {
		in.draining = false
		w.emitLocked(Event{Kind: EvInstanceDeregistered, Group: in.Group, Instance: in.ID, State: in.State, Detail: registrationDetail(tgs, lbs)})
		then()
	})
	return true
}

// dropRegistrationsLocked deregisters an instance that leaves without
// waiting for draining (a forced delete, a reclaimed spot instance).
func (w *World) dropRegistrationsLocked(in *Instance) {
	if len(in.tgs) == 0 && len(in.lbs) == 0 {
		return
	}
	tgs, lbs := in.tgs, in.lbs
	in.tgs, in.lbs = nil, nil
	w.emitLocked(Event{Kind: EvInstanceDeregistering, Group: in.Group, Instance: in.ID, State: in.State, Detail: registrationDetail(tgs, lbs) + " (not waiting for draining)"})
	w.deregisterLocked(tgs, lbs, in.ID, func() {})
}

func registrationDetail(tgs, lbs []string) string {
	var parts []string
	if len(tgs) > 0 {
		parts = append(parts, "target groups "+strings.Join(tgs, ", "))
	}
	if len(lbs) > 0 {
		parts = append(parts, "load balancers "+strings.Join(lbs, ", "))
	}
	return strings.Join(parts, "; ")
}

func split(srcs []*TrafficSource) (tgs, lbs []string) {
	for _, s := range srcs {
		if s.Type == TrafficELBv2 {
			tgs = append(tgs, s.Identifier)
		} else {
			lbs = append(lbs, s.Identifier)
		}
	}
	return tgs, lbs
}

func appendNew(list []string, ids ...string) []string {
	for _, id := range ids {
		if !slices.Contains(list, id) {
			list = append(list, id)
		}
	}
	return list
}

// ELB health checks ----------------------------------------------------------

// elbHealthInterval is how often the world asks the balancers about the
// instances of groups with ELB health checks (1 s with relaxed limits).
func (w *World) elbHealthInterval() int { return w.minimum(10) }

// armHealthChecksLocked starts the ELB health check timer while any group
// uses ELB health checks and has a source attached.
func (w *World) armHealthChecksLocked() {
	if w.healthTimer != nil || w.closed {
		return
	}
	need := false
	for _, g := range w.groups {
		need = need || g.HealthCheckType == "ELB" && len(g.Traffic) > 0
	}
	if !need {
		return
	}
	w.healthTimer = w.after(w.seconds(w.elbHealthInterval()), func() {
		w.healthTimer = nil
		w.elbHealthChecksLocked()
		w.armHealthChecksLocked()
	})
}

// elbHealthChecksLocked marks unhealthy every in-service instance past its
// grace period that its load balancers report unhealthy, and lets its group
// replace it; it also moves Added sources with a healthy instance to
// InService.
func (w *World) elbHealthChecksLocked() {
	now := w.clock.Now()
	for _, g := range w.sortedGroupsLocked() {
		if g.HealthCheckType != "ELB" || g.Status != "" {
			continue
		}
		w.refreshTrafficStatesLocked(g)
		replace := false
		for _, id := range g.Instances {
			in := w.insts[id]
			if in.State != StateInService || in.Health != "Healthy" || len(in.tgs)+len(in.lbs) == 0 {
				continue
			}
			if now.Before(in.inServiceAt.Add(w.seconds(g.HealthCheckGracePeriod))) {
				continue
			}
			healthy, known := w.bal.Healthy(slices.Clone(in.tgs), slices.Clone(in.lbs), in.ID)
			if !known || healthy {
				continue
			}
			in.Health = "Unhealthy"
			in.unhealthyCause = fmt.Sprintf("At %s an instance was taken out of service in response to an ELB system health check failure.", stamp(now))
			w.emitLocked(Event{Kind: EvInstanceHealth, Group: g.Name, Instance: in.ID, Detail: "Unhealthy (ELB health check)"})
			replace = true
		}
		if replace {
			w.reconcileLocked(g, "")
		}
	}
}

// refreshTrafficStatesLocked moves Added sources to InService once one of
// the group's instances passes their health checks (with ELB health checks
// on, as AWS does).
func (w *World) refreshTrafficStatesLocked(g *Group) {
	if g.HealthCheckType != "ELB" {
		return
	}
	for _, s := range g.Traffic {
		if s.State != TrafficAdded {
			continue
		}
		var tgs, lbs []string
		if s.Type == TrafficELBv2 {
			tgs = []string{s.Identifier}
		} else {
			lbs = []string{s.Identifier}
		}
		for _, id := range g.Instances {
			in := w.insts[id]
			if in.State != StateInService || !slices.Contains(append(slices.Clone(in.tgs), in.lbs...), s.Identifier) {
				continue
			}
			if healthy, known := w.bal.Healthy(tgs, lbs, in.ID); known && healthy {
				s.State = TrafficInService
				w.trafficEventLocked(g, s, "an instance passed its health checks")
				break
			}
		}
	}
}

// API ------------------------------------------------------------------------

// AttachTraffic attaches target groups and classic load balancers to a
// group (AttachLoadBalancerTargetGroups, AttachLoadBalancers,
// AttachTrafficSources): its in-service instances are registered at once.
func (w *World) AttachTraffic(group string, in TrafficInput) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if group == "" {
		return notNull("autoScalingGroupName")
	}
	g, err := w.liveGroupLocked(group)
	if err != nil {
		return err
	}
	if err := w.checkTrafficLocked(in); err != nil {
		return err
	}
	w.attachLocked(g, in, false)
	return nil
}

// DetachTraffic detaches target groups and classic load balancers from a
// group: its instances are deregistered, and each source is listed as
// Removing until they have drained.
func (w *World) DetachTraffic(group string, in TrafficInput) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if group == "" {
		return notNull("autoScalingGroupName")
	}
	g, err := w.liveGroupLocked(group)
	if err != nil {
		return err
	}
	w.detachLocked(g, in)
	return nil
}

// Traffic returns a group's attached sources in attachment order.
func (w *World) Traffic(group string) ([]TrafficSource, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if group == "" {
		return nil, notNull("autoScalingGroupName")
	}
	g, ok := w.groups[group]
	if !ok {
		return nil, groupNotFound(group)
	}
	w.refreshTrafficStatesLocked(g)
	return copyTraffic(g.Traffic), nil
}

func copyTraffic(srcs []*TrafficSource) []TrafficSource {
	out := make([]TrafficSource, 0, len(srcs))
	for _, s := range srcs {
		c := *s
		c.draining = 0
		out = append(out, c)
	}
	return out
}

// TargetGroupARNs returns the target groups attached the older way, as
// the group's TargetGroupARNs lists them.
func (v GroupView) TargetGroupARNs() []string { return v.legacy(TrafficELBv2) }

// LoadBalancerNames returns the classic load balancers attached the older
// way, as the group's LoadBalancerNames lists them.
func (v GroupView) LoadBalancerNames() []string { return v.legacy(TrafficELB) }

func (v GroupView) legacy(typ string) []string {
	out := []string{}
	for _, s := range v.TrafficSources {
		if s.Legacy && s.Type == typ {
			out = append(out, s.Identifier)
		}
	}
	return out
}
