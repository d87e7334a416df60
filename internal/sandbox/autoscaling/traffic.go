package autoscaling

import (
	"fmt"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// Load balancers and traffic sources: the world registers a group's
// instances with them (after Pending:Proceed) and deregisters and drains
// them (before Terminating:Wait).

// trafficSources reads TrafficSources.member.N (Identifier, Type) as the
// target groups and classic load balancers they name.
func trafficSources(r request) (world.TrafficInput, error) {
	var in world.TrafficInput
	for i, m := range r.Members("TrafficSources") {
		id, typ := m.String("Identifier"), m.String("Type")
		if id == "" {
			return in, notNull(fmt.Sprintf("trafficSources.member.%d.identifier", i+1))
		}
		if typ == "" {
			switch {
			case strings.HasPrefix(id, "arn:") && strings.Contains(id, ":elasticloadbalancing:"):
				typ = world.TrafficELBv2
			case strings.HasPrefix(id, "arn:") && strings.Contains(id, ":vpc-lattice:"):
				typ = world.TrafficVPCLattice
			default:
				return in, awsproto.Validation("Traffic source %s needs a Type: elb for a Classic Load Balancer's name, elbv2 for a target group's ARN.", id)
			}
		}
		switch typ {
		case world.TrafficELBv2:
			in.TargetGroups = append(in.TargetGroups, id)
		case world.TrafficELB:
			in.LoadBalancers = append(in.LoadBalancers, id)
		case world.TrafficVPCLattice:
			return in, notModelled("VPC Lattice traffic sources")
		default:
			return in, awsproto.Validation("Traffic source type %s is not valid. Valid values are: elb, elbv2, vpc-lattice.", typ)
		}
	}
	return in, nil
}

// groupName reads the required AutoScalingGroupName.
func groupName(r request) (string, error) {
	name := r.String("AutoScalingGroupName")
	if name == "" {
		return "", notNull("autoScalingGroupName")
	}
	return name, nil
}

// attachOrDetach serves the six Attach*/Detach* calls: read the sources
// from param (required), then attach or detach them.
func (h *Handler) attachOrDetach(r request, param string, attach bool) (any, error) {
	name, err := groupName(r)
	if err != nil {
		return nil, err
	}
	if !r.Sent(param) {
		return nil, notNull(strings.ToLower(param[:1]) + param[1:])
	}
	var in world.TrafficInput
	switch param {
	case "TrafficSources":
		if in, err = trafficSources(r); err != nil {
			return nil, err
		}
	case "TargetGroupARNs":
		in = world.TrafficInput{TargetGroups: r.Strings(param), Legacy: true}
	default:
		in = world.TrafficInput{LoadBalancers: r.Strings(param), Legacy: true}
	}
	if attach {
		err = h.w.AttachTraffic(name, in)
	} else {
		err = h.w.DetachTraffic(name, in)
	}
	if err != nil {
		return nil, err
	}
	return nil, nil
}

func (h *Handler) attachLoadBalancerTargetGroups(r request) (any, error) {
	return h.attachOrDetach(r, "TargetGroupARNs", true)
}

func (h *Handler) detachLoadBalancerTargetGroups(r request) (any, error) {
	return h.attachOrDetach(r, "TargetGroupARNs", false)
}

func (h *Handler) attachLoadBalancers(r request) (any, error) {
	return h.attachOrDetach(r, "LoadBalancerNames", true)
}

func (h *Handler) detachLoadBalancers(r request) (any, error) {
	return h.attachOrDetach(r, "LoadBalancerNames", false)
}

func (h *Handler) attachTrafficSources(r request) (any, error) {
	return h.attachOrDetach(r, "TrafficSources", true)
}

func (h *Handler) detachTrafficSources(r request) (any, error) {
	return h.attachOrDetach(r, "TrafficSources", false)
}

// Describe -------------------------------------------------------------------

type xmlTargetGroupState struct {
	LoadBalancerTargetGroupARN string
	State                      string
}

type targetGroupsResult struct {
	LoadBalancerTargetGroups awsproto.Members[xmlTargetGroupState]
	NextToken                string `xml:",omitempty"`
}

type xmlLoadBalancerState struct {
	LoadBalancerName string
	State            string
}

type loadBalancersResult struct {
	LoadBalancers awsproto.Members[xmlLoadBalancerState]
	NextToken     string `xml:",omitempty"`
}

type xmlTrafficSourceState struct {
	TrafficSource string // deprecated twin of Identifier, still sent
	State         string
	Identifier    string
	Type          string
}

type trafficSourcesResult struct {
	TrafficSources awsproto.Members[xmlTrafficSourceState]
	NextToken      string `xml:",omitempty"`
}

// sources lists a group's sources of one type, the legacy ones only when
// legacy is set, one page at a time.
func (h *Handler) sources(r request, kind string, legacy bool, typ string, def, limit int) ([]world.TrafficSource, string, error) {
	name, err := groupName(r)
	if err != nil {
		return nil, "", err
	}
	n, err := maxRecords(r.Params, def, limit)
	if err != nil {
		return nil, "", err
	}
	all, err := h.w.Traffic(name)
	if err != nil {
		return nil, "", err
	}
	var srcs []world.TrafficSource
	for _, s := range all {
		if (typ == "" || s.Type == typ) && (!legacy || s.Legacy) {
			srcs = append(srcs, s)
		}
	}
	key := func(s world.TrafficSource) string { return s.Type + " " + s.Identifier }
	return paginate(srcs, key, false, kind, r.String("NextToken"), n)
}

func (h *Handler) describeLoadBalancerTargetGroups(r request) (any, error) {
	page, next, err := h.sources(r, "tg", true, world.TrafficELBv2, 100, 100)
	if err != nil {
		return nil, err
	}
	out := targetGroupsResult{LoadBalancerTargetGroups: awsproto.Members[xmlTargetGroupState]{}, NextToken: next}
	for _, s := range page {
		out.LoadBalancerTargetGroups = append(out.LoadBalancerTargetGroups, xmlTargetGroupState{s.Identifier, s.State})
	}
	return out, nil
}

func (h *Handler) describeLoadBalancers(r request) (any, error) {
	page, next, err := h.sources(r, "elb", true, world.TrafficELB, 100, 100)
	if err != nil {
		return nil, err
	}
	out := loadBalancersResult{LoadBalancers: awsproto.Members[xmlLoadBalancerState]{}, NextToken: next}
	for _, s := range page {
		out.LoadBalancers = append(out.LoadBalancers, xmlLoadBalancerState{s.Identifier, s.State})
	}
	return out, nil
}

func (h *Handler) describeTrafficSources(r request) (any, error) {
	typ := r.String("TrafficSourceType")
	switch typ {
	case "", world.TrafficELB, world.TrafficELBv2, world.TrafficVPCLattice:
	default:
		return nil, awsproto.Validation("Traffic source type %s is not valid. Valid values are: elb, elbv2, vpc-lattice.", typ)
	}
	page, next, err := h.sources(r, "ts", false, typ, 50, 50)
	if err != nil {
		return nil, err
	}
	out := trafficSourcesResult{TrafficSources: awsproto.Members[xmlTrafficSourceState]{}, NextToken: next}
	for _, s := range page {
		out.TrafficSources = append(out.TrafficSources, xmlTrafficSourceState{TrafficSource: s.Identifier, State: s.State, Identifier: s.Identifier, Type: s.Type})
	}
	return out, nil
}

// xmlTrafficSource is a TrafficSourceIdentifier in a group.
type xmlTrafficSource struct {
	Identifier string
	Type       string
}
