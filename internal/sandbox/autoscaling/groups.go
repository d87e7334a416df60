package autoscaling

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// groupParams are the settings CreateAutoScalingGroup and
// UpdateAutoScalingGroup share.
type groupParams struct {
	launchConfiguration    string
	launchTemplate         *world.LaunchTemplateRef
	minSize, maxSize       *int
	desired                *int
	defaultCooldown        *int
	zones                  []string
	healthCheckType        string
	healthCheckGracePeriod *int
	terminationPolicies    []string
	newInstancesProtected  *bool
}

func parseGroupParams(r request) (groupParams, error) {
	// Settings that would change how the group behaves, and that the world
	// does not simulate, are refused rather than silently dropped.
	for _, name := range []string{"MixedInstancesPolicy", "InstanceId", "InstanceLifecyclePolicy", "MaxInstanceLifetime"} {
		if r.Sent(name) {
			return groupParams{}, notModelled(name)
		}
	}
	g := groupParams{
		launchConfiguration: r.String("LaunchConfigurationName"),
		zones:               r.Strings("AvailabilityZones"),
		healthCheckType:     r.String("HealthCheckType"),
		terminationPolicies: r.Strings("TerminationPolicies"),
	}
	if r.Sent("LaunchTemplate") {
		lt := r.Sub("LaunchTemplate")
		g.launchTemplate = &world.LaunchTemplateRef{ID: lt.String("LaunchTemplateId"), Name: lt.String("LaunchTemplateName"), Version: lt.String("Version")}
	}
	var err error
	ints := []struct {
		name string
		dst  **int
	}{
		{"MinSize", &g.minSize},
		{"MaxSize", &g.maxSize},
		{"DesiredCapacity", &g.desired},
		{"DefaultCooldown", &g.defaultCooldown},
		{"HealthCheckGracePeriod", &g.healthCheckGracePeriod},
	}
	for _, f := range ints {
		if *f.dst, err = optInt(r.Params, f.name); err != nil {
			return groupParams{}, err
		}
	}
	if g.newInstancesProtected, err = optBool(r.Params, "NewInstancesProtectedFromScaleIn"); err != nil {
		return groupParams{}, err
	}
	if err := checkCapacity("MinSize", g.minSize); err != nil {
		return groupParams{}, err
	}
	if err := checkCapacity("DesiredCapacity", g.desired); err != nil {
		return groupParams{}, err
	}
	return g, nil
}

func (h *Handler) createAutoScalingGroup(r request) (any, error) {
	g, err := parseGroupParams(r)
	if err != nil {
		return nil, err
	}
	in := world.CreateGroupInput{
		Name:                   r.String("AutoScalingGroupName"),
		LaunchConfiguration:    g.launchConfiguration,
		LaunchTemplate:         g.launchTemplate,
		MinSize:                g.minSize,
		MaxSize:                g.maxSize,
		Desired:                g.desired,
		DefaultCooldown:        g.defaultCooldown,
		AvailabilityZones:      g.zones,
		VPCZoneIdentifier:      r.String("VPCZoneIdentifier"),
		HealthCheckType:        g.healthCheckType,
		HealthCheckGracePeriod: g.healthCheckGracePeriod,
		TerminationPolicies:    g.terminationPolicies,
		NewInstancesProtected:  g.newInstancesProtected != nil && *g.newInstancesProtected,
	}
	for _, t := range r.Members("Tags") {
		tag, err := parseTag(t)
		if err != nil {
			return nil, err
		}
		in.Tags = append(in.Tags, tag.GroupTag)
	}
	if tgs := r.Strings("TargetGroupARNs"); len(tgs) > 0 {
		in.Traffic = append(in.Traffic, world.TrafficInput{TargetGroups: tgs, Legacy: true})
	}
	if lbs := r.Strings("LoadBalancerNames"); len(lbs) > 0 {
		in.Traffic = append(in.Traffic, world.TrafficInput{LoadBalancers: lbs, Legacy: true})
	}
	ts, err := trafficSources(r)
	if err != nil {
		return nil, err
	}
	if len(ts.TargetGroups)+len(ts.LoadBalancers) > 0 {
		in.Traffic = append(in.Traffic, ts)
	}
	for _, s := range r.Members("LifecycleHookSpecificationList") {
		timeout, _, err := s.Int("HeartbeatTimeout")
		if err != nil {
			return nil, err
		}
		in.Hooks = append(in.Hooks, world.Hook{
			Name:                  s.String("LifecycleHookName"),
			Transition:            s.String("LifecycleTransition"),
			HeartbeatTimeout:      timeout,
			DefaultResult:         s.String("DefaultResult"),
			NotificationMetadata:  s.String("NotificationMetadata"),
			NotificationTargetARN: s.String("NotificationTargetARN"),
			RoleARN:               s.String("RoleARN"),
		})
	}
	if err := h.w.CreateAutoScalingGroup(in); err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, nil
}

func (h *Handler) updateAutoScalingGroup(r request) (any, error) {
	// UpdateAutoScalingGroup has no load balancer members: they are
	// attached and detached by calls of their own.
	for _, p := range [][2]string{{"TargetGroupARNs", "AttachLoadBalancerTargetGroups"}, {"LoadBalancerNames", "AttachLoadBalancers"}, {"TrafficSources", "AttachTrafficSources"}} {
		if name, call := p[0], p[1]; r.Sent(name) {
			return nil, awsproto.Validation("UpdateAutoScalingGroup has no %s parameter: use %s and its Detach counterpart.", name, call)
		}
	}
	g, err := parseGroupParams(r)
	if err != nil {
		return nil, err
	}
	in := world.UpdateGroupInput{
		Name:                   r.String("AutoScalingGroupName"),
		LaunchConfiguration:    g.launchConfiguration,
		LaunchTemplate:         g.launchTemplate,
		MinSize:                g.minSize,
		MaxSize:                g.maxSize,
		Desired:                g.desired,
		DefaultCooldown:        g.defaultCooldown,
		AvailabilityZones:      g.zones,
		HealthCheckType:        g.healthCheckType,
		HealthCheckGracePeriod: g.healthCheckGracePeriod,
		TerminationPolicies:    g.terminationPolicies,
		NewInstancesProtected:  g.newInstancesProtected,
	}
	if vpc, ok := r.Optional("VPCZoneIdentifier"); ok {
		in.VPCZoneIdentifier = &vpc
	}
	if err := h.w.UpdateAutoScalingGroup(in); err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, nil
}

func (h *Handler) deleteAutoScalingGroup(r request) (any, error) {
	force, err := optBool(r.Params, "ForceDelete")
	if err != nil {
		return nil, err
	}
	if err := h.w.DeleteAutoScalingGroup(r.String("AutoScalingGroupName"), force != nil && *force); err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, nil
}

func (h *Handler) setDesiredCapacity(r request) (any, error) {
	name := r.String("AutoScalingGroupName")
	desired, err := optInt(r.Params, "DesiredCapacity")
	if err != nil {
		return nil, err
	}
	honor, err := optBool(r.Params, "HonorCooldown")
	if err != nil {
		return nil, err
	}
	switch {
	case name == "":
		return nil, notNull("autoScalingGroupName")
	case desired == nil:
		return nil, notNull("desiredCapacity")
	}
	if err := checkCapacity("DesiredCapacity", desired); err != nil {
		return nil, err
	}
	if err := h.w.SetDesiredCapacity(name, *desired, honor != nil && *honor); err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, nil
}

// DescribeAutoScalingGroups --------------------------------------------------

type xmlLaunchTemplate struct {
	LaunchTemplateID   string `xml:"LaunchTemplateId,omitempty"`
	LaunchTemplateName string `xml:",omitempty"`
	Version            string `xml:",omitempty"`
}

func launchTemplate(ref *world.LaunchTemplateRef) *xmlLaunchTemplate {
	if ref == nil {
		return nil
	}
	return &xmlLaunchTemplate{LaunchTemplateID: ref.ID, LaunchTemplateName: ref.Name, Version: ref.Version}
}

// xmlGroupInstance is an Instance inside an AutoScalingGroup.
type xmlGroupInstance struct {
	InstanceID              string `xml:"InstanceId"`
	InstanceType            string `xml:",omitempty"`
	AvailabilityZone        string
	LifecycleState          string
	HealthStatus            string
	LaunchConfigurationName string             `xml:",omitempty"`
	LaunchTemplate          *xmlLaunchTemplate `xml:",omitempty"`
	ProtectedFromScaleIn    bool
}

type xmlTag struct {
	ResourceID        string `xml:"ResourceId"`
	ResourceType      string
	Key               string
	Value             string
	PropagateAtLaunch bool
}

type xmlGroup struct {
	AutoScalingGroupName             string
	AutoScalingGroupARN              string
	LaunchConfigurationName          string             `xml:",omitempty"`
	LaunchTemplate                   *xmlLaunchTemplate `xml:",omitempty"`
	MinSize                          int
	MaxSize                          int
	DesiredCapacity                  int
	DefaultCooldown                  int
	AvailabilityZones                awsproto.Members[string]
	LoadBalancerNames                awsproto.Members[string]
	TargetGroupARNs                  awsproto.Members[string]
	HealthCheckType                  string
	HealthCheckGracePeriod           int
	Instances                        awsproto.Members[xmlGroupInstance]
	CreatedTime                      awsproto.Time
	SuspendedProcesses               awsproto.Members[string]
	VPCZoneIdentifier                string `xml:",omitempty"`
	EnabledMetrics                   awsproto.Members[string]
	Status                           string `xml:",omitempty"`
	Tags                             awsproto.Members[xmlTag]
	TerminationPolicies              awsproto.Members[string]
	NewInstancesProtectedFromScaleIn bool
	ServiceLinkedRoleARN             string
	CapacityRebalance                bool
	TrafficSources                   awsproto.Members[xmlTrafficSource]
}

type groupsResult struct {
	AutoScalingGroups awsproto.Members[xmlGroup]
	NextToken         string `xml:",omitempty"`
}

func (h *Handler) describeAutoScalingGroups(r request) (any, error) {
	limit, err := maxRecords(r.Params, 50, 100)
	if err != nil {
		return nil, err
	}
	include, err := optBool(r.Params, "IncludeInstances")
	if err != nil {
		return nil, err
	}
	var filters []world.GroupFilter
	for _, f := range r.Members("Filters") {
		filters = append(filters, world.GroupFilter{Name: f.String("Name"), Values: f.Strings("Values")})
	}
	views, err := h.w.Groups(r.Strings("AutoScalingGroupNames"), filters)
	if err != nil {
		return nil, err
	}
	page, next, err := paginate(views, func(v world.GroupView) string { return v.Name }, true, "asg", r.String("NextToken"), limit)
	if err != nil {
		return nil, err
	}
	out := groupsResult{AutoScalingGroups: awsproto.Members[xmlGroup]{}, NextToken: next}
	for _, v := range page {
		out.AutoScalingGroups = append(out.AutoScalingGroups, h.group(v, include == nil || *include))
	}
	return out, nil
}

func (h *Handler) group(v world.GroupView, withInstances bool) xmlGroup {
	x := xmlGroup{
		AutoScalingGroupName:             v.Name,
		AutoScalingGroupARN:              v.ARN,
		LaunchConfigurationName:          v.LaunchConfiguration,
		LaunchTemplate:                   launchTemplate(v.LaunchTemplate),
		MinSize:                          v.Min,
		MaxSize:                          v.Max,
		DesiredCapacity:                  v.Desired,
		DefaultCooldown:                  v.DefaultCooldown,
		AvailabilityZones:                v.AvailabilityZones,
		LoadBalancerNames:                v.LoadBalancerNames(),
		TargetGroupARNs:                  v.TargetGroupARNs(),
		TrafficSources:                   awsproto.Members[xmlTrafficSource]{},
		HealthCheckType:                  v.HealthCheckType,
		HealthCheckGracePeriod:           v.HealthCheckGracePeriod,
		Instances:                        awsproto.Members[xmlGroupInstance]{},
		CreatedTime:                      awsproto.Time(v.Created),
		VPCZoneIdentifier:                strings.Join(v.Subnets, ","),
		Status:                           v.Status,
		Tags:                             awsproto.Members[xmlTag]{},
		TerminationPolicies:              v.TerminationPolicies,
		NewInstancesProtectedFromScaleIn: v.NewInstancesProtected,
		ServiceLinkedRoleARN:             fmt.Sprintf("arn:aws:iam::%s:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling", h.w.Account()),
	}
	if withInstances {
		// In id order, as AWS lists them; sorting indices, not the
		// instances, which are large to move.
		order := make([]int, len(v.Members))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return strings.Compare(v.Members[a].ID, v.Members[b].ID) })
		x.Instances = make(awsproto.Members[xmlGroupInstance], 0, len(order))
		for _, i := range order {
			in := &v.Members[i]
			x.Instances = append(x.Instances, xmlGroupInstance{
				InstanceID:              in.ID,
				InstanceType:            in.InstanceType,
				AvailabilityZone:        in.AZ,
				LifecycleState:          in.State,
				HealthStatus:            in.Health,
				LaunchConfigurationName: in.LaunchConfig,
				LaunchTemplate:          launchTemplate(in.LaunchTemplate),
				ProtectedFromScaleIn:    in.Protected,
			})
		}
	}
	for _, s := range v.TrafficSources {
		x.TrafficSources = append(x.TrafficSources, xmlTrafficSource{Identifier: s.Identifier, Type: s.Type})
	}
	for _, t := range v.Tags {
		x.Tags = append(x.Tags, xmlTag{ResourceID: v.Name, ResourceType: "auto-scaling-group", Key: t.Key, Value: t.Value, PropagateAtLaunch: t.PropagateAtLaunch})
	}
	return x
}
