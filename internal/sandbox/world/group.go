package world

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
)

var (
	subnetPattern   = lazyPattern(`^subnet-[0-9a-f]{8}([0-9a-f]{9})?$`)
	roleARNPattern  = lazyPattern(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$`)
	hookNamePattern = lazyPattern(`^[A-Za-z0-9\-_/]+$`)
)

// termination policies Auto Scaling accepts.
var terminationPolicies = []string{"Default", "OldestInstance", "NewestInstance", "OldestLaunchConfiguration", "OldestLaunchTemplate", "ClosestToNextInstanceHour", "AllocationStrategy"}

// CreateGroupInput is CreateAutoScalingGroup's input.
type CreateGroupInput struct {
	Name                   string
	LaunchConfiguration    string
	LaunchTemplate         *LaunchTemplateRef
	MinSize, MaxSize       *int
	Desired                *int
	DefaultCooldown        *int
	AvailabilityZones      []string
	VPCZoneIdentifier      string
	HealthCheckType        string
	HealthCheckGracePeriod *int
	TerminationPolicies    []string
	NewInstancesProtected  bool
	Tags                   []GroupTag
	Hooks                  []Hook
	// Traffic: TargetGroupARNs and LoadBalancerNames (Legacy), or TrafficSources.
	Traffic []TrafficInput
}

// UpdateGroupInput is UpdateAutoScalingGroup's input; nil fields are unchanged.
type UpdateGroupInput struct {
	Name                   string
	LaunchConfiguration    string
	LaunchTemplate         *LaunchTemplateRef
	MinSize, MaxSize       *int
	Desired                *int
	DefaultCooldown        *int
	AvailabilityZones      []string
	VPCZoneIdentifier      *string
	HealthCheckType        string
	HealthCheckGracePeriod *int
	TerminationPolicies    []string
	NewInstancesProtected  *bool
}

func notNull(field string) error {
	return awsproto.Validation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
}

// groupNotFound is Auto Scaling's error for a missing group.
func groupNotFound(name string) error {
	return awsproto.Validation("AutoScalingGroup name not found - AutoScalingGroup %s not found", name)
}

// CreateAutoScalingGroup creates a group and starts launching to its desired capacity.
func (w *World) CreateAutoScalingGroup(in CreateGroupInput) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case in.Name == "":
		return notNull("autoScalingGroupName")
	case in.MinSize == nil:
		return notNull("minSize")
	case in.MaxSize == nil:
		return notNull("maxSize")
	}
	if len(in.Name) > 255 {
		return awsproto.Validation("1 validation error detected: Value '%s' at 'autoScalingGroupName' failed to satisfy constraint: Member must have length less than or equal to 255", in.Name)
	}
	if _, ok := w.groups[in.Name]; ok {
		return awsproto.Errorf("AlreadyExists", "AutoScalingGroup by this name already exists - A group with the name %s already exists", in.Name)
	}
	g := &Group{
		Name:                  in.Name,
		ARN:                   "arn:aws:autoscaling:" + w.cfg.Region + ":" + w.cfg.Account + ":autoScalingGroup:" + w.uuidLocked() + ":autoScalingGroupName/" + in.Name,
		Min:                   *in.MinSize,
		Max:                   *in.MaxSize,
		DefaultCooldown:       300,
		HealthCheckType:       "EC2",
		TerminationPolicies:   []string{"Default"},
		NewInstancesProtected: in.NewInstancesProtected,
		Created:               w.clock.Now().UTC(),
	}
	if err := w.setLaunchSourceLocked(g, in.LaunchConfiguration, in.LaunchTemplate, true); err != nil {
		return err
	}
	g.Desired = g.Min
	if in.Desired != nil {
		g.Desired = *in.Desired
	}
	if err := checkBounds(g.Min, g.Max, g.Desired); err != nil {
		return err
	}
	if err := w.setZonesLocked(g, in.AvailabilityZones, &in.VPCZoneIdentifier, true); err != nil {
		return err
	}
	if err := w.setGroupOptionsLocked(g, in.DefaultCooldown, in.HealthCheckType, in.HealthCheckGracePeriod, in.TerminationPolicies); err != nil {
		return err
	}
	for _, t := range in.Tags {
		if err := validGroupTag(t); err != nil {
			return err
		}
		g.Tags = upsertTag(g.Tags, t)
	}
	if len(in.Hooks) > 0 {
		target, role := in.Hooks[0].NotificationTargetARN, in.Hooks[0].RoleARN
		for i := range in.Hooks {
			h := in.Hooks[i]
			h.Group = g.Name
			if h.NotificationTargetARN != target || h.RoleARN != role {
				return awsproto.Validation("All lifecycle hooks specified in LifecycleHookSpecificationList must have the same NotificationTargetARN and RoleARN.")
			}
			if h.Transition == "" {
				return notNull("lifecycleHookSpecificationList.member." + fmt.Sprint(i+1) + ".lifecycleTransition")
			}
			if err := w.validHookLocked(&h); err != nil {
				return err
			}
			g.Hooks = append(g.Hooks, &h)
		}
	}
	// All the hooks share one target: one test message checks it.
	if len(g.Hooks) > 0 {
		if err := w.testNotificationLocked(g, g.Hooks[0]); err != nil {
			return err
		}
	}
	for _, t := range in.Traffic {
		if err := w.checkTrafficLocked(t); err != nil {
			return err
		}
	}
	w.groups[g.Name] = g
	delete(w.deleted, g.Name)
	w.emitLocked(Event{Kind: EvGroupCreated, Group: g.Name, Detail: fmt.Sprintf("min %d, max %d, desired %d", g.Min, g.Max, g.Desired)})
	for _, h := range g.Hooks {
		w.emitLocked(Event{Kind: EvHookPut, Group: g.Name, Hook: h.Name, Detail: h.Transition})
	}
	for _, t := range in.Traffic {
		w.attachLocked(g, t, true)
	}
	w.armHealthChecksLocked()
	w.reconcileLocked(g, fmt.Sprintf("At %s a user request created an AutoScalingGroup changing the desired capacity from 0 to %d.", stamp(g.Created), g.Desired))
	return nil
}

// MaxGroupCapacity caps a group's desired capacity in the sandbox, whose
// instances are local ports and processes.
const MaxGroupCapacity = 10000

func checkBounds(minSize, maxSize, desired int) error {
	if desired > MaxGroupCapacity {
		return awsproto.Validation("Desired capacity %d is above the sandbox's limit of %d instances per group.", desired, MaxGroupCapacity)
	}
	if minSize < 0 {
		return awsproto.Validation("1 validation error detected: Value '%d' at 'minSize' failed to satisfy constraint: Member must have value greater than or equal to 0", minSize)
	}
	if maxSize < 0 {
		return awsproto.Validation("1 validation error detected: Value '%d' at 'maxSize' failed to satisfy constraint: Member must have value greater than or equal to 0", maxSize)
	}
	if minSize > maxSize {
		return awsproto.Validation("Max bound, %d, must be greater than or equal to min bound, %d", maxSize, minSize)
	}
	if desired < minSize || desired > maxSize {
		return awsproto.Validation("Desired capacity:%d must be between the specified min size:%d and max size:%d", desired, minSize, maxSize)
	}
	return nil
}

func (w *World) setLaunchSourceLocked(g *Group, lc string, lt *LaunchTemplateRef, required bool) error {
	if lc != "" && lt != nil {
		return awsproto.Validation("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.")
	}
	switch {
	case lc != "":
		if _, ok := w.lcs[lc]; !ok {
			return awsproto.Validation("Launch configuration name not found - Launch configuration %s not found", lc)
		}
		g.LaunchConfiguration, g.LaunchTemplate = lc, nil
	case lt != nil:
		t, err := w.templateLocked(lt.ID, lt.Name)
		if err != nil {
			if lt.ID != "" {
				return awsproto.Validation("You must use a valid fully-formed launch template. The specified launch template, with template ID %s, does not exist.", lt.ID)
			}
			return awsproto.Validation("You must use a valid fully-formed launch template. The specified launch template, with template name %s, does not exist.", lt.Name)
		}
		if _, err := w.resolveVersionLocked(t, lt.Version); err != nil {
			return awsproto.Validation("You must use a valid fully-formed launch template. The specified launch template version, %s, for the launch template %s does not exist.", lt.Version, t.ID)
		}
		v := lt.Version
		if v == "" {
			v = "$Default"
		}
		g.LaunchTemplate, g.LaunchConfiguration = &LaunchTemplateRef{ID: t.ID, Name: t.Name, Version: v}, ""
	case required:
		return awsproto.Validation("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.")
	}
	return nil
}

func (w *World) setZonesLocked(g *Group, zones []string, vpc *string, required bool) error {
	var subnets []string
	if vpc != nil && strings.TrimSpace(*vpc) != "" {
		for _, s := range strings.Split(*vpc, ",") {
			s = strings.TrimSpace(s)
			if !subnetPattern.MatchString(s) {
				return awsproto.Validation("The subnet ID '%s' does not exist", s)
			}
			subnets = append(subnets, s)
		}
	}
	for _, z := range zones {
		if !slices.Contains(w.zones(), z) {
			return awsproto.Validation("The availability zone %s is not legal", z)
		}
	}
	switch {
	case len(subnets) > 0:
		g.Subnets = subnets
		g.AvailabilityZones = nil
		for _, s := range subnets {
			if z := w.SubnetZone(s); !slices.Contains(g.AvailabilityZones, z) {
				g.AvailabilityZones = append(g.AvailabilityZones, z)
			}
		}
		slices.Sort(g.AvailabilityZones)
	case len(zones) > 0:
		g.AvailabilityZones = slices.Compact(slices.Sorted(slices.Values(zones)))
		if vpc != nil {
			g.Subnets = nil
		}
	case required:
		return awsproto.Validation("At least one Availability Zone or VPC Subnet is required.")
	}
	return nil
}

func (w *World) setGroupOptionsLocked(g *Group, cooldown *int, hcType string, grace *int, policies []string) error {
	if cooldown != nil {
		if *cooldown < 0 {
			return awsproto.Validation("1 validation error detected: Value '%d' at 'defaultCooldown' failed to satisfy constraint: Member must have value greater than or equal to 0", *cooldown)
		}
		g.DefaultCooldown = *cooldown
	}
	if hcType != "" {
		switch hcType {
		case "EC2", "ELB", "VPC_LATTICE", "EBS":
		default:
			return awsproto.Validation("Health check type %s is not valid. Valid values are: EC2, ELB, VPC_LATTICE, EBS.", hcType)
		}
		g.HealthCheckType = hcType
	}
	if grace != nil {
		if *grace < 0 {
			return awsproto.Validation("1 validation error detected: Value '%d' at 'healthCheckGracePeriod' failed to satisfy constraint: Member must have value greater than or equal to 0", *grace)
		}
		g.HealthCheckGracePeriod = *grace
	}
	if len(policies) > 0 {
		for _, p := range policies {
			if !slices.Contains(terminationPolicies, p) && !strings.HasPrefix(p, "arn:aws:lambda:") {
				return awsproto.Validation("Termination policy %s is not valid.", p)
			}
		}
		g.TerminationPolicies = slices.Clone(policies)
	}
	return nil
}

// UpdateAutoScalingGroup changes a group's settings and reconciles.
func (w *World) UpdateAutoScalingGroup(in UpdateGroupInput) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if in.Name == "" {
		return notNull("autoScalingGroupName")
	}
	g, err := w.liveGroupLocked(in.Name)
	if err != nil {
		return err
	}
	next := *g
	if err := w.setLaunchSourceLocked(&next, in.LaunchConfiguration, in.LaunchTemplate, false); err != nil {
		return err
	}
	if in.MinSize != nil {
		next.Min = *in.MinSize
	}
	if in.MaxSize != nil {
		next.Max = *in.MaxSize
	}
	if in.Desired != nil {
		next.Desired = *in.Desired
	} else {
		// AWS moves desired into the new bounds when only the bounds change.
		next.Desired = max(next.Min, min(next.Max, next.Desired))
	}
	if err := checkBounds(next.Min, next.Max, next.Desired); err != nil {
		return err
	}
	if err := w.setZonesLocked(&next, in.AvailabilityZones, in.VPCZoneIdentifier, false); err != nil {
		return err
	}
	if err := w.setGroupOptionsLocked(&next, in.DefaultCooldown, in.HealthCheckType, in.HealthCheckGracePeriod, in.TerminationPolicies); err != nil {
		return err
	}
	if in.NewInstancesProtected != nil {
		next.NewInstancesProtected = *in.NewInstancesProtected
	}
	from := g.Desired
	*g = next
	w.emitLocked(Event{Kind: EvGroupUpdated, Group: g.Name, Detail: fmt.Sprintf("min %d, max %d, desired %d", g.Min, g.Max, g.Desired)})
	cause := ""
	if from != g.Desired {
		cause = fmt.Sprintf("At %s a user request update of AutoScalingGroup constraints to min: %d, max: %d, desired: %d changing the desired capacity from %d to %d.", stamp(w.clock.Now()), g.Min, g.Max, g.Desired, from, g.Desired)
		w.emitLocked(Event{Kind: EvCapacity, Group: g.Name, Detail: fmt.Sprintf("desired capacity %d → %d", from, g.Desired)})
	}
	w.armHealthChecksLocked()
	w.reconcileLocked(g, cause)
	return nil
}

// SetDesiredCapacity changes a group's desired capacity.
func (w *World) SetDesiredCapacity(name string, desired int, honorCooldown bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if name == "" {
		return notNull("autoScalingGroupName")
	}
	g, err := w.liveGroupLocked(name)
	if err != nil {
		return err
	}
	if desired > g.Max {
		return awsproto.Validation("New SetDesiredCapacity value %d is above max value %d for the AutoScalingGroup.", desired, g.Max)
	}
	if desired < g.Min {
		return awsproto.Validation("New SetDesiredCapacity value %d is below min value %d for the AutoScalingGroup.", desired, g.Min)
	}
	if err := checkBounds(g.Min, g.Max, desired); err != nil {
		return err
	}
	now := w.clock.Now()
	if honorCooldown && !g.LastScaling.IsZero() && now.Before(g.LastScaling.Add(w.seconds(w.minimum(g.DefaultCooldown)))) {
		return awsproto.Errorf("ScalingActivityInProgress", "Scaling activity is in progress or the group is in cooldown; SetDesiredCapacity with HonorCooldown was not applied.")
	}
	from := g.Desired
	g.Desired = desired
	g.LastScaling = now
	w.emitLocked(Event{Kind: EvCapacity, Group: g.Name, Detail: fmt.Sprintf("desired capacity %d → %d", from, desired)})
	cause := ""
	if from != desired {
		cause = fmt.Sprintf("At %s a user request explicitly set group desired capacity changing the desired capacity from %d to %d.", stamp(now), from, desired)
	}
	w.reconcileLocked(g, cause)
	return nil
}

// DeleteAutoScalingGroup deletes a group. Without force it must have no
// instances and no activity in progress; with force its instances are
// terminated without lifecycle hooks, and the group goes once they are gone.
func (w *World) DeleteAutoScalingGroup(name string, force bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if name == "" {
		return notNull("autoScalingGroupName")
	}
	g, ok := w.groups[name]
	if !ok {
		return groupNotFound(name)
	}
	if g.Status != "" {
		return nil // already being deleted
	}
	if !force {
		for _, id := range g.Instances {
			in := w.insts[id]
			switch in.State {
			case StateTerminating, StateTerminatingWait, StateTerminatingProceed:
				return awsproto.Errorf("ScalingActivityInProgress", "You cannot delete an AutoScalingGroup while there are scaling activities in progress for that group.")
			}
		}
		if len(g.Instances) > 0 {
			return awsproto.Errorf("ResourceInUse", "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.")
		}
	}
	g.Status = "Delete in progress"
	g.Desired, g.Min = 0, 0
	if g.backoffTimer != nil {
		g.backoffTimer.Stop()
	}
	w.emitLocked(Event{Kind: EvGroupUpdated, Group: g.Name, Detail: "delete in progress"})
	for _, id := range slices.Clone(g.Instances) {
		in := w.insts[id]
		w.cancelActionsLocked(in)
		if in.State != StateTerminated {
			in.Target = StateTerminated
			w.dropRegistrationsLocked(in)
			in.draining = false
			w.setStateLocked(in, StateTerminatingProceed, "force delete")
			w.finishTerminationLocked(in, "")
		}
	}
	w.maybeRemoveGroupLocked(g)
	return nil
}

// maybeRemoveGroupLocked completes a pending delete once no instance is left.
func (w *World) maybeRemoveGroupLocked(g *Group) {
	if g.Status == "" || len(g.Instances) > 0 {
		return
	}
	delete(w.groups, g.Name)
	w.deleted[g.Name] = g
	w.emitLocked(Event{Kind: EvGroupDeleted, Group: g.Name})
}

// liveGroupLocked finds a group that is not being deleted.
func (w *World) liveGroupLocked(name string) (*Group, error) {
	g, ok := w.groups[name]
	if !ok {
		return nil, groupNotFound(name)
	}
	if g.Status != "" {
		return nil, awsproto.Errorf("ScalingActivityInProgress", "AutoScalingGroup %s is pending delete.", name)
	}
	return g, nil
}

func (w *World) sortedGroupsLocked() []*Group {
	out := make([]*Group, 0, len(w.groups))
	for _, g := range w.groups {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *Group) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// GroupView is a consistent copy of a group and its instances.
type GroupView struct {
	Group
	Members []Instance
	// TrafficSources are the attached load balancers and target groups
	// (Group.Traffic is nil in a view).
	TrafficSources []TrafficSource
}

// GroupFilter is a DescribeAutoScalingGroups filter.
type GroupFilter struct {
	Name   string
	Values []string
}

// Groups returns copies of the named groups (all when names is empty),
// sorted by name, that match every filter; unknown names are omitted.
func (w *World) Groups(names []string, filters []GroupFilter) ([]GroupView, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range filters {
		switch {
		case f.Name == "tag-key", f.Name == "tag-value", strings.HasPrefix(f.Name, "tag:"):
		default:
			return nil, awsproto.Validation("Filter type %s is not correct. Allowed Filter types are: tag-key tag-value tag:<key>", f.Name)
		}
	}
	var out []GroupView
	for _, g := range w.sortedGroupsLocked() {
		if len(names) > 0 && !slices.Contains(names, g.Name) {
			continue
		}
		if !groupMatches(g, filters) {
			continue
		}
		out = append(out, w.viewLocked(g))
	}
	return out, nil
}

func groupMatches(g *Group, filters []GroupFilter) bool {
	for _, f := range filters {
		ok := false
		for _, t := range g.Tags {
			switch {
			case f.Name == "tag-key":
				ok = ok || slices.Contains(f.Values, t.Key)
			case f.Name == "tag-value":
				ok = ok || slices.Contains(f.Values, t.Value)
			default:
				ok = ok || (t.Key == strings.TrimPrefix(f.Name, "tag:") && slices.Contains(f.Values, t.Value))
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (w *World) viewLocked(g *Group) GroupView {
	v := GroupView{Group: *g}
	v.Tags = slices.Clone(g.Tags)
	v.Hooks = nil
	v.Traffic = nil
	v.TrafficSources = copyTraffic(g.Traffic)
	v.Instances = slices.Clone(g.Instances)
	for _, id := range g.Instances {
		v.Members = append(v.Members, w.copyInstance(w.insts[id]))
	}
	return v
}
