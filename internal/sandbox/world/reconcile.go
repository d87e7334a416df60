package world

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// stamp formats a time as activity causes do ("2024-05-01T10:00:00Z").
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// counts reports whether an instance counts toward desired capacity.
func counts(in *Instance) bool {
	switch in.State {
	case StatePending, StatePendingWait, StatePendingProceed, StateInService:
		return in.Health != "Unhealthy"
	}
	return false
}

// reconcileLocked brings a group to its desired capacity: it replaces
// unhealthy instances, launches what is missing (unless launches are backed
// off) and terminates the surplus by the group's termination policy.
// cause is the first sentence of the activity's cause, if a user request
// triggered it.
func (w *World) reconcileLocked(g *Group, cause string) {
	if g.Status != "" || w.closed {
		return
	}
	now := w.clock.Now()
	for _, id := range slices.Clone(g.Instances) {
		in := w.insts[id]
		if in.State == StateInService && in.Health == "Unhealthy" {
			cause := in.unhealthyCause
			if cause == "" {
				cause = fmt.Sprintf("At %s an instance was taken out of service in response to a user health-check.", stamp(now))
			}
			w.startTerminationLocked(in, cause)
		}
	}
	var active []*Instance
	for _, id := range g.Instances {
		if in := w.insts[id]; counts(in) {
			active = append(active, in)
		}
	}
	switch n := len(active); {
	case n < g.Desired:
		if now.Before(g.backoffUntil) {
			return // a timer reconciles when the back-off ends
		}
		perZone := w.zoneCountsLocked(g)
		end := g.Desired
		if end-n > batch {
			end = n + batch
			w.reconcileRestLocked(g, cause)
		}
		for i := n; i < end; i++ {
			w.launchLocked(g, perZone, cause+joinCause(fmt.Sprintf("At %s an instance was started in response to a difference between desired and actual capacity, increasing the capacity from %d to %d.", stamp(now), i, i+1)))
		}
	case n > g.Desired:
		excess := n - g.Desired
		if excess > batch {
			excess = batch
			w.reconcileRestLocked(g, cause)
		}
		victims := w.pickVictimsLocked(g, active, excess)
		for i, in := range victims {
			w.startTerminationLocked(in, cause+joinCause(fmt.Sprintf("At %s an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from %d to %d.  At %s instance %s was selected for termination.", stamp(now), n-i, n-i-1, stamp(now), in.ID)))
		}
	}
}

// batch is how many instances one reconcile launches or starts
// terminating while holding the world's lock. A larger difference (a
// group created with 1,000, a scale-in of 500) is worked off a batch at a
// time, the lock released in between, so that other calls, the instances
// booting and the actions being completed meanwhile do not wait for all
// of it. Auto Scaling itself works a large change off in several
// activities over time; victims are chosen in the same order either way.
const batch = 100

// reconcileRestLocked queues a reconcile of g, in the background, for the
// next batch; one at a time per group.
func (w *World) reconcileRestLocked(g *Group, cause string) {
	if g.reconcileMore {
		return
	}
	g.reconcileMore = true
	w.goHost(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		g.reconcileMore = false
		if w.groups[g.Name] == g {
			w.reconcileLocked(g, cause)
		}
	})
}

func joinCause(s string) string { return "  " + s }

// pickVictimsLocked chooses instances to terminate on scale-in. Protected
// instances are never chosen. Pending instances go before in-service ones
// only if nothing else is left. With the Default policy: the zone with the
// most instances first, then instances launched from an older launch
// configuration or template, then (ties) a seeded random choice among them
// in instance id order. OldestInstance / NewestInstance order by launch
// time. Each victim is chosen as if the ones before it were gone; the
// candidates are sorted once and filtered per victim.
func (w *World) pickVictimsLocked(g *Group, active []*Instance, n int) []*Instance {
	type candidate struct {
		in       *Instance
		zone     int // index into perZone
		outdated bool
	}
	policy := "Default"
	if len(g.TerminationPolicies) > 0 {
		policy = g.TerminationPolicies[0]
	}
	// Zones by index, so that the per-victim passes do no map lookups.
	zoneOf := map[string]int{}
	var perZone []int
	for _, in := range active {
		z, ok := zoneOf[in.AZ]
		if !ok {
			z = len(perZone)
			zoneOf[in.AZ] = z
			perZone = append(perZone, 0)
		}
		perZone[z]++
	}
	var cand []candidate
	inService := 0
	for _, in := range active {
		if in.Protected {
			continue
		}
		cand = append(cand, candidate{in: in, zone: zoneOf[in.AZ], outdated: policy == "Default" && !w.currentSourceLocked(g, in)})
		if in.State == StateInService {
			inService++
		}
	}
	if policy != "OldestInstance" && policy != "NewestInstance" {
		slices.SortFunc(cand, func(a, b candidate) int { return strings.Compare(a.in.ID, b.in.ID) })
	}
	var (
		out  []*Instance
		pool []int // indexes into cand of the current choice
	)
	for len(out) < n && len(cand) > 0 {
		eligible := func(c candidate) bool { return inService == 0 || c.in.State == StateInService }
		pick := -1
		switch policy {
		case "OldestInstance", "NewestInstance":
			for i, c := range cand {
				if !eligible(c) {
					continue
				}
				if pick < 0 {
					pick = i
					continue
				}
				cmp := c.in.LaunchTime.Compare(cand[pick].in.LaunchTime)
				if policy == "NewestInstance" {
					cmp = -cmp
				}
				if cmp < 0 {
					pick = i
				}
			}
		default:
			// Balance zones first, then prefer an outdated launch source.
			most, outdated := -1, false
			for _, c := range cand {
				if !eligible(c) {
					continue
				}
				switch z := perZone[c.zone]; {
				case z > most:
					most, outdated = z, c.outdated
				case z == most:
					outdated = outdated || c.outdated
				}
			}
			pool = pool[:0]
			for i, c := range cand {
				if eligible(c) && perZone[c.zone] == most && (!outdated || c.outdated) {
					pool = append(pool, i)
				}
			}
			pick = pool[w.rng.IntN(len(pool))]
		}
		in := cand[pick].in
		out = append(out, in)
		perZone[cand[pick].zone]--
		cand = slices.Delete(cand, pick, pick+1)
		if in.State == StateInService {
			inService--
		}
	}
	return out
}

func (w *World) currentSourceLocked(g *Group, in *Instance) bool {
	if g.LaunchConfiguration != "" {
		return in.LaunchConfig == g.LaunchConfiguration
	}
	if g.LaunchTemplate == nil || in.LaunchTemplate == nil || in.LaunchTemplate.ID != g.LaunchTemplate.ID {
		return false
	}
	t, ok := w.lts[g.LaunchTemplate.ID]
	if !ok {
		return true
	}
	v, err := w.resolveVersionLocked(t, g.LaunchTemplate.Version)
	return err != nil || fmt.Sprint(v.Number) == in.LaunchTemplate.Version
}

// zoneCountsLocked counts a group's instances that count towards its
// capacity, by zone.
func (w *World) zoneCountsLocked(g *Group) map[string]int {
	perZone := map[string]int{}
	for _, id := range g.Instances {
		if in := w.insts[id]; counts(in) {
			perZone[in.AZ]++
		}
	}
	return perZone
}

// zoneForLaunchLocked picks the zone (and subnet) with the fewest instances.
func (w *World) zoneForLaunchLocked(g *Group, perZone map[string]int) (zone, subnet string) {
	best := ""
	for _, z := range g.AvailabilityZones {
		if best == "" || perZone[z] < perZone[best] {
			best = z
		}
	}
	for _, s := range g.Subnets {
		if w.SubnetZone(s) == best {
			return best, s
		}
	}
	return best, ""
}

// launchLocked creates an instance in Pending and boots it in the
// background. perZone (zoneCountsLocked) counts the new instance, so that
// a series of launches spreads over the zones without recounting.
func (w *World) launchLocked(g *Group, perZone map[string]int, cause string) {
	now := w.clock.Now()
	zone, subnet := w.zoneForLaunchLocked(g, perZone)
	perZone[zone]++
	in := &Instance{
		ID:            w.hexIDLocked("i-0", 16),
		Group:         g.Name,
		AZ:            zone,
		Subnet:        subnet,
		PrivateIP:     w.ips.take(),
		LaunchTime:    now.UTC(),
		ReservationID: w.hexIDLocked("r-0", 16),
		State:         StatePending,
		Health:        "Healthy",
		Protected:     g.NewInstancesProtected,
		EC2State:      EC2Pending,
		Tags:          map[string]string{"aws:autoscaling:groupName": g.Name},
		ImageID:       "ami-0abcdef1234567890",
		InstanceType:  "t3.micro",
		RoleName:      "",
	}
	w.applyLaunchSourceLocked(g, in)
	for _, t := range g.Tags {
		if t.PropagateAtLaunch {
			in.Tags[t.Key] = t.Value
		}
	}
	w.insts[in.ID] = in
	w.listInstanceLocked(in)
	g.Instances = append(g.Instances, in.ID)
	in.activity = w.newActivityLocked(g, in.ID, "Launching a new EC2 instance: "+in.ID, strings.TrimSpace(cause), "PreInService")
	w.emitLocked(Event{Kind: EvInstanceLaunched, Group: g.Name, Instance: in.ID, State: in.State, Detail: fmt.Sprintf("%s %s", in.AZ, in.PrivateIP)})
	boot := Boot{InstanceID: in.ID, Group: g.Name, PrivateIP: in.PrivateIP, UserData: in.UserData}
	w.bootLater(func() {
		w.mu.Lock()
		closed := w.closed
		w.mu.Unlock()
		if closed {
			return // Close stops what booted; this one never will
		}
		err := w.host.Boot(boot)
		w.mu.Lock()
		defer w.mu.Unlock()
		w.bootedLocked(in, err)
	})
}

func (w *World) applyLaunchSourceLocked(g *Group, in *Instance) {
	if lc, ok := w.lcs[g.LaunchConfiguration]; ok && g.LaunchConfiguration != "" {
		in.LaunchConfig = lc.Name
		in.ImageID, in.InstanceType, in.KeyName = lc.ImageID, lc.InstanceType, lc.KeyName
		in.UserData = decodeUserData(lc.UserData)
		in.Metadata = lc.Metadata
		in.RoleName = roleName(lc.IamInstanceProfile)
		return
	}
	if g.LaunchTemplate == nil {
		return
	}
	t, ok := w.lts[g.LaunchTemplate.ID]
	if !ok {
		return
	}
	v, err := w.resolveVersionLocked(t, g.LaunchTemplate.Version)
	if err != nil {
		return
	}
	in.LaunchTemplate = &LaunchTemplateRef{ID: t.ID, Name: t.Name, Version: fmt.Sprint(v.Number)}
	if v.ImageID != "" {
		in.ImageID = v.ImageID
	}
	if v.InstanceType != "" {
		in.InstanceType = v.InstanceType
	}
	in.KeyName = v.KeyName
	in.UserData = decodeUserData(v.UserData)
	in.Metadata = v.Metadata
	in.RoleName = roleName(v.IamInstanceProfile)
	for _, ts := range v.TagSpecs {
		if ts.ResourceType == "instance" {
			for _, kv := range ts.Tags {
				in.Tags[kv.Key] = kv.Value
			}
		}
	}
}

// roleName derives the IMDS role name from an instance profile ARN or name.
func roleName(profile string) string {
	if i := strings.LastIndexByte(profile, '/'); i >= 0 {
		return profile[i+1:]
	}
	return profile
}

// bootedLocked moves a booted instance into its launch transition.
func (w *World) bootedLocked(in *Instance, err error) {
	if in.State != StatePending || in.stopping {
		return
	}
	g := w.groups[in.Group]
	if err != nil {
		w.emitLocked(Event{Kind: EvInstanceBootError, Group: in.Group, Instance: in.ID, Detail: err.Error()})
		w.endActivityLocked(in.activity, "Failed", "Instance failed to start: "+err.Error())
		w.setStateLocked(in, StateTerminatingProceed, "boot failed")
		w.finishTerminationLocked(in, "boot failed")
		if g != nil {
			w.noteLaunchFailureLocked(g)
		}
		return
	}
	in.EC2State = EC2Running
	w.emitLocked(Event{Kind: EvInstanceState, Group: in.Group, Instance: in.ID, State: in.State, Detail: "ec2 running"})
	if g == nil {
		return
	}
	in.Target = StateInService
	if w.startActionsLocked(g, in, TransitionLaunching) {
		w.setActivityStatusLocked(in.activity, "MidLifecycleAction")
		w.setStateLocked(in, StatePendingWait, "")
		return
	}
	w.proceedLaunchLocked(g, in)
}

// proceedLaunchLocked moves an instance through Pending:Proceed to
// InService, registering it with the group's load balancers and target
// groups in between, as Auto Scaling does.
func (w *World) proceedLaunchLocked(g *Group, in *Instance) {
	w.setStateLocked(in, StatePendingProceed, "")
	w.registerLocked(g, in)
	in.inServiceAt = w.clock.Now()
	w.setStateLocked(in, StateInService, "")
	g.failures = 0
	w.endActivityLocked(in.activity, "Successful", "")
	in.activity = nil
}

// abandonLaunchLocked terminates an instance whose launch action was
// abandoned and lets the group replace it, backing off repeated failures.
func (w *World) abandonLaunchLocked(g *Group, in *Instance, token string) {
	msg := fmt.Sprintf("Instance failed to complete user's Lifecycle Action: Lifecycle Action with token %s was abandoned: Lifecycle Action Completed with ABANDON Result", token)
	w.endActivityLocked(in.activity, "Cancelled", msg)
	in.activity = nil
	w.setStateLocked(in, StateTerminating, "launch abandoned")
	in.Target = StateTerminated
	w.setStateLocked(in, StateTerminatingProceed, "")
	w.finishTerminationLocked(in, "")
	w.noteLaunchFailureLocked(g)
}

// noteLaunchFailureLocked backs off launches after consecutive failures, as
// Auto Scaling limits launches when lifecycle hooks keep failing: the n-th
// consecutive failure delays the next launch by 10 s × 2^(n-2) (none after
// the first), at most 5 minutes; with relaxed limits the base is 1 s.
func (w *World) noteLaunchFailureLocked(g *Group) {
	g.failures++
	if g.failures < 2 {
		w.reconcileLocked(g, "")
		return
	}
	base := w.seconds(w.minimum(10))
	d := base << min(g.failures-2, 10)
	if d > 5*time.Minute {
		d = 5 * time.Minute
	}
	g.backoffUntil = w.clock.Now().Add(d)
	w.emitLocked(Event{Kind: EvLaunchBackoff, Group: g.Name, Detail: fmt.Sprintf("%d consecutive launch failures; next launch in %s", g.failures, d)})
	if g.backoffTimer != nil {
		g.backoffTimer.Stop()
	}
	g.backoffTimer = w.after(d, func() { w.reconcileLocked(g, "") })
}

// startTerminationLocked takes an instance out of service: Terminating
// (deregistered from its load balancers and target groups, waiting for
// draining), then Terminating:Wait while terminate hooks run, or straight on.
func (w *World) startTerminationLocked(in *Instance, cause string) {
	g := w.groups[in.Group]
	switch in.State {
	case StateTerminating, StateTerminatingWait, StateTerminatingProceed, StateTerminated:
		return
	}
	w.cancelActionsLocked(in)
	in.draining = false
	if in.activity != nil {
		w.endActivityLocked(in.activity, "Cancelled", "Instance was terminated before it entered service.")
	}
	in.activity = w.newActivityLocked(g, in.ID, "Terminating EC2 instance: "+in.ID, strings.TrimSpace(cause), "InProgress")
	in.Target = StateTerminated
	w.setStateLocked(in, StateTerminating, "")
	if w.startDeregistrationLocked(in, func() { w.terminateHooksLocked(in) }) {
		w.setActivityStatusLocked(in.activity, "WaitingForELBConnectionDraining")
		return
	}
	w.terminateHooksLocked(in)
}

// terminateHooksLocked moves a Terminating instance on once it has
// drained: to Terminating:Wait while its terminate hooks run, or straight on.
func (w *World) terminateHooksLocked(in *Instance) {
	g := w.groups[in.Group]
	if in.State != StateTerminating || g == nil {
		return
	}
	if w.startActionsLocked(g, in, TransitionTerminating) {
		w.setActivityStatusLocked(in.activity, "MidLifecycleAction")
		w.setStateLocked(in, StateTerminatingWait, "")
		return
	}
	w.setStateLocked(in, StateTerminatingProceed, "")
	w.finishTerminationLocked(in, "")
}

// finishTerminationLocked stops an instance's processes and removes it
// from its group once they are gone.
func (w *World) finishTerminationLocked(in *Instance, why string) {
	w.cancelActionsLocked(in)
	w.dropRegistrationsLocked(in)
	if in.Group != "" && in.State != StateTerminated {
		if in.State != StateTerminatingProceed {
			in.Target = StateTerminated
		}
	}
	if !in.stopping && in.EC2State != EC2Terminated {
		in.stopping = true
		in.EC2State = EC2ShuttingDown
		id := in.ID
		w.goHost(func() {
			_ = w.host.Stop(id, w.cfg.StopGrace)
			w.mu.Lock()
			defer w.mu.Unlock()
			w.stoppedLocked(in)
		})
		return
	}
	if in.EC2State == EC2Terminated {
		w.stoppedLocked(in)
	}
}

// stoppedLocked records that an instance's processes are gone.
func (w *World) stoppedLocked(in *Instance) {
	in.EC2State = EC2Terminated
	in.terminatedAt = w.clock.Now()
	w.gone.list = append(w.gone.list, in)
	w.ips.release(in.PrivateIP)
	if in.Group == "" {
		w.emitLocked(Event{Kind: EvInstanceState, Instance: in.ID, Detail: "ec2 terminated"})
		return
	}
	if in.State != StateTerminatingProceed && (in.State != StateTerminating || in.draining) {
		// Terminated under its group's feet (TerminateInstances, a spot
		// reclaim): the group's terminate hooks still run afterwards.
		w.emitLocked(Event{Kind: EvInstanceState, Group: in.Group, Instance: in.ID, State: in.State, Detail: "ec2 terminated"})
		return
	}
	g, ok := w.groups[in.Group]
	w.setStateLocked(in, StateTerminated, "ec2 terminated")
	if in.activity != nil {
		w.endActivityLocked(in.activity, "Successful", "")
		in.activity = nil
	}
	if !ok {
		return
	}
	g.Instances = slices.DeleteFunc(g.Instances, func(id string) bool { return id == in.ID })
	w.maybeRemoveGroupLocked(g)
	w.reconcileLocked(g, "")
}

func (w *World) setStateLocked(in *Instance, state, detail string) {
	if in.State == state {
		return
	}
	in.State = state
	w.emitLocked(Event{Kind: EvInstanceState, Group: in.Group, Instance: in.ID, State: state, Detail: detail})
}

// Activities -----------------------------------------------------------------

func (w *World) newActivityLocked(g *Group, instanceID, desc, cause, status string) *Activity {
	a := &Activity{
		ID:          w.uuidLocked(),
		Group:       g.Name,
		GroupARN:    g.ARN,
		Description: desc,
		Cause:       cause,
		Start:       w.clock.Now().UTC(),
		StatusCode:  status,
		Progress:    0,
		InstanceID:  instanceID,
	}
	if in, ok := w.insts[instanceID]; ok {
		subnet := in.Subnet
		details := map[string]string{"Availability Zone": in.AZ}
		if subnet != "" {
			details["Subnet ID"] = subnet
		}
		a.Details = jsonObject(details)
	}
	w.addActivityLocked(a)
	w.emitLocked(Event{Kind: EvActivity, Group: g.Name, Instance: instanceID, Detail: desc + ": " + status})
	return a
}

func (w *World) setActivityStatusLocked(a *Activity, status string) {
	if a != nil {
		a.StatusCode = status
		a.Progress = 50
	}
}

func (w *World) endActivityLocked(a *Activity, status, msg string) {
	if a == nil || !a.End.IsZero() {
		return
	}
	a.StatusCode, a.StatusMessage, a.Progress = status, msg, 100
	a.End = w.clock.Now().UTC()
	w.emitLocked(Event{Kind: EvActivity, Group: a.Group, Instance: a.InstanceID, Detail: a.Description + ": " + status})
	w.activityEndedLocked(a)
}

// Activities returns a group's activities (all groups' when group is
// empty), newest first, optionally only the given ids.
func (w *World) Activities(group string, ids []string, includeDeleted bool) ([]Activity, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if group != "" {
		if _, ok := w.groups[group]; !ok {
			if _, del := w.deleted[group]; !del || !includeDeleted {
				return nil, nil
			}
		}
	}
	w.forgetHistoryLocked()
	acts := w.acts.list
	if group != "" {
		if ga := w.groupActs[group]; ga != nil {
			acts = ga.list
		} else {
			acts = nil
		}
	}
	var out []Activity
	for i := len(acts) - 1; i >= 0; i-- {
		a := acts[i]
		if len(ids) > 0 && !slices.Contains(ids, a.ID) {
			continue
		}
		if _, live := w.groups[a.Group]; !live && !includeDeleted {
			continue
		}
		out = append(out, *a)
	}
	return out, nil
}

// jsonObject renders a flat string map with sorted keys, as AWS's Details.
func jsonObject(m map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%q", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}
