package world

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
)

var instanceIDPattern = lazyPattern(`^i-[0-9a-f]{8}([0-9a-f]{9})?$`)

// terminatedVisibility is how long EC2 keeps listing a terminated instance.
const terminatedVisibility = time.Hour

func (w *World) copyInstance(in *Instance) Instance {
	c := *in
	c.Tags = maps.Clone(in.Tags)
	c.actions = nil
	c.activity = nil
	if in.LaunchTemplate != nil {
		lt := *in.LaunchTemplate
		c.LaunchTemplate = &lt
	}
	if in.Spot != nil {
		s := *in.Spot
		c.Spot = &s
	}
	return c
}

func instanceNotFound(id string) error {
	return awsproto.Validation("Instance Id not found - No managed instance found for instance ID: %s", id)
}

// groupInstanceLocked finds an instance that belongs to a group.
func (w *World) groupInstanceLocked(id string) (*Instance, *Group, error) {
	in, ok := w.insts[id]
	if !ok || in.Group == "" || in.State == StateTerminated {
		return nil, nil, instanceNotFound(id)
	}
	g, ok := w.groups[in.Group]
	if !ok {
		return nil, nil, instanceNotFound(id)
	}
	return in, g, nil
}

// AutoScalingInstances returns the group members among ids (all members of
// all groups when ids is empty), sorted by id; unknown ids are omitted.
func (w *World) AutoScalingInstances(ids []string) ([]Instance, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(ids) > 50 {
		return nil, awsproto.Validation("The number of instance ids that may be passed in is limited to 50")
	}
	var out []Instance
	for _, g := range w.sortedGroupsLocked() {
		for _, id := range g.Instances {
			if len(ids) == 0 || slices.Contains(ids, id) {
				out = append(out, w.copyInstance(w.insts[id]))
			}
		}
	}
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// SetInstanceHealth marks a group member healthy or unhealthy; an unhealthy
// instance is replaced. Within the health check grace period the call is
// ignored when respectGrace is set.
func (w *World) SetInstanceHealth(id, status string, respectGrace bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if id == "" {
		return notNull("instanceId")
	}
	switch status {
	case "Healthy", "Unhealthy":
	case "":
		return notNull("healthStatus")
	default:
		return awsproto.Validation("Valid values for HealthStatus are Healthy and Unhealthy.")
	}
	in, g, err := w.groupInstanceLocked(id)
	if err != nil {
		return err
	}
	if respectGrace && status == "Unhealthy" && !in.inServiceAt.IsZero() &&
		w.clock.Now().Before(in.inServiceAt.Add(w.seconds(g.HealthCheckGracePeriod))) {
		return nil
	}
	if in.Health == status {
		return nil
	}
	in.Health = status
	w.emitLocked(Event{Kind: EvInstanceHealth, Group: g.Name, Instance: id, Detail: status})
	w.reconcileLocked(g, "")
	return nil
}

// SetInstanceProtection sets scale-in protection on group members.
func (w *World) SetInstanceProtection(group string, ids []string, protect bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if group == "" {
		return notNull("autoScalingGroupName")
	}
	if ids == nil {
		return notNull("instanceIds")
	}
	if len(ids) > 50 {
		return awsproto.Validation("The number of instance ids that may be passed in is limited to 50")
	}
	g, err := w.liveGroupLocked(group)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !slices.Contains(g.Instances, id) {
			return awsproto.Validation("The instance %s is not part of Auto Scaling group %s.", id, group)
		}
	}
	for _, id := range ids {
		in := w.insts[id]
		in.Protected = protect
		w.emitLocked(Event{Kind: EvInstanceProtect, Group: group, Instance: id, Detail: fmt.Sprintf("protected from scale-in: %t", protect)})
	}
	return nil
}

// EnterStandby moves InService instances to Standby (no lifecycle hooks).
func (w *World) EnterStandby(group string, ids []string, decrement *bool) ([]Activity, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if group == "" {
		return nil, notNull("autoScalingGroupName")
	}
	if decrement == nil {
		return nil, notNull("shouldDecrementDesiredCapacity")
	}
	g, err := w.liveGroupLocked(group)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if !slices.Contains(g.Instances, id) {
			return nil, awsproto.Validation("The instance %s is not part of Auto Scaling group %s.", id, group)
		}
		if st := w.insts[id].State; st != StateInService {
			return nil, awsproto.Validation("The instance %s is not in InService.", id)
		}
	}
	if *decrement && g.Desired-len(ids) < g.Min {
		return nil, awsproto.Validation("AutoScalingGroup %s has min-size=%d, max-size=%d, and desired-size=%d. To place into standby %d instances, please update the AutoScalingGroup sizes appropriately.", g.Name, g.Min, g.Max, g.Desired, len(ids))
	}
	now := w.clock.Now()
	var out []Activity
	for _, id := range ids {
		in := w.insts[id]
		cause := fmt.Sprintf("At %s instance %s was moved to standby in response to a user request.", stamp(now), id)
		if *decrement {
			cause = fmt.Sprintf("At %s instance %s was moved to standby in response to a user request, shrinking the capacity from %d to %d.", stamp(now), id, g.Desired, g.Desired-1)
			g.Desired--
		}
		a := w.newActivityLocked(g, id, "Moving EC2 instance to Standby: "+id, cause, "InProgress")
		in.Target = StateStandby
		w.setStateLocked(in, StateEnteringStandby, "")
		standby := func() {
			if in.State != StateEnteringStandby {
				return
			}
			w.setStateLocked(in, StateStandby, "")
			w.endActivityLocked(a, "Successful", "")
		}
		// Deregistered from the group's load balancers; Standby once drained.
		if !w.startDeregistrationLocked(in, standby) {
			standby()
		}
		out = append(out, *a)
	}
	w.reconcileLocked(g, "")
	return out, nil
}

// ExitStandby returns Standby instances to service, raising desired capacity.
func (w *World) ExitStandby(group string, ids []string) ([]Activity, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if group == "" {
		return nil, notNull("autoScalingGroupName")
	}
	g, err := w.liveGroupLocked(group)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if !slices.Contains(g.Instances, id) {
			return nil, awsproto.Validation("The instance %s is not part of Auto Scaling group %s.", id, group)
		}
		if w.insts[id].State != StateStandby {
			return nil, awsproto.Validation("The instance %s is not in Standby.", id)
		}
	}
	if g.Desired+len(ids) > g.Max {
		return nil, awsproto.Validation("AutoScalingGroup %s has min-size=%d, max-size=%d, and desired-size=%d. To exit standby %d instances, please update the AutoScalingGroup sizes appropriately.", g.Name, g.Min, g.Max, g.Desired, len(ids))
	}
	now := w.clock.Now()
	var out []Activity
	for _, id := range ids {
		in := w.insts[id]
		cause := fmt.Sprintf("At %s instance %s was moved out of standby in response to a user request, increasing the capacity from %d to %d.", stamp(now), id, g.Desired, g.Desired+1)
		g.Desired++
		a := w.newActivityLocked(g, id, "Moving EC2 instance out of Standby: "+id, cause, "InProgress")
		in.Target = StateInService
		w.setStateLocked(in, StatePending, "exit standby")
		w.registerLocked(g, in)
		w.setStateLocked(in, StateInService, "")
		in.inServiceAt = now
		w.endActivityLocked(a, "Successful", "")
		out = append(out, *a)
	}
	return out, nil
}

// TerminateInGroup terminates a group member through its terminate hooks,
// optionally lowering desired capacity (else the group replaces it).
func (w *World) TerminateInGroup(id string, decrement *bool) (Activity, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if id == "" {
		return Activity{}, notNull("instanceId")
	}
	if decrement == nil {
		return Activity{}, notNull("shouldDecrementDesiredCapacity")
	}
	in, g, err := w.groupInstanceLocked(id)
	if err != nil {
		return Activity{}, err
	}
	switch in.State {
	case StateTerminating, StateTerminatingWait, StateTerminatingProceed:
		if in.activity != nil {
			return *in.activity, nil
		}
	}
	now := w.clock.Now()
	cause := fmt.Sprintf("At %s instance %s was taken out of service in response to a user request.", stamp(now), id)
	if *decrement {
		if g.Desired-1 < g.Min {
			return Activity{}, awsproto.Validation("Currently, desiredSize equals minSize (%d). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.", g.Min)
		}
		cause = fmt.Sprintf("At %s instance %s was taken out of service in response to a user request, shrinking the capacity from %d to %d.", stamp(now), id, g.Desired, g.Desired-1)
		g.Desired--
		w.emitLocked(Event{Kind: EvCapacity, Group: g.Name, Detail: fmt.Sprintf("desired capacity %d → %d", g.Desired+1, g.Desired)})
	}
	w.startTerminationLocked(in, cause)
	a := Activity{}
	if in.activity != nil {
		a = *in.activity
	} else if n := len(w.acts.list); n > 0 {
		a = *w.acts.list[n-1]
	}
	w.reconcileLocked(g, "")
	return a, nil
}

// InjectSpotInterruption posts a spot interruption notice for an instance:
// IMDS shows it at once, a group member's termination starts, and at the
// notice time EC2 reclaims the instance whatever its hooks.
func (w *World) InjectSpotInterruption(id string, notice time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	in, ok := w.insts[id]
	if !ok || in.EC2State == EC2Terminated {
		return fmt.Errorf("instance %s: not running", id)
	}
	at := w.clock.Now().Add(notice).UTC().Truncate(time.Second)
	in.Spot = &SpotNotice{Action: "terminate", Time: at}
	w.emitLocked(Event{Kind: EvSpotNotice, Group: in.Group, Instance: id, Detail: "terminate at " + at.Format(time.RFC3339)})
	if in.Group != "" {
		w.startTerminationLocked(in, fmt.Sprintf("At %s an instance was taken out of service in response to an EC2 instance interruption notice.", stamp(w.clock.Now())))
	}
	w.after(notice, func() {
		if in.EC2State == EC2Terminated {
			return
		}
		w.cancelActionsLocked(in)
		if in.Group != "" && in.State != StateTerminated {
			w.setStateLocked(in, StateTerminatingProceed, "spot interruption")
		}
		w.finishTerminationLocked(in, "spot interruption")
	})
	return nil
}

// InstanceFilter is an EC2 DescribeInstances filter.
type InstanceFilter struct {
	Name   string
	Values []string
}

// Instances returns instances by id (all when ids is empty) matching
// every filter, sorted by launch time. Unknown or malformed ids fail as on EC2.
func (e *EC2) Instances(ids []string, filters []InstanceFilter) ([]Instance, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.checkInstanceIDsLocked(ids); err != nil {
		return nil, err
	}
	w.forgetHistoryLocked()
	var out []Instance
	for _, in := range w.order {
		if w.insts[in.ID] != in || !w.visibleLocked(in.ID) {
			continue
		}
		if len(ids) > 0 && !slices.Contains(ids, in.ID) {
			continue
		}
		ok := true
		for _, f := range filters {
			if !instanceMatches(in, f) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, w.copyInstance(in))
		}
	}
	return out, nil
}

// InstanceCursor is a place in EC2's listing order (launch time, then
// id): a page starts after it. The zero cursor is before the first
// instance.
type InstanceCursor struct {
	LaunchTime time.Time
	ID         string
}

// InstancesPage returns the instances after the cursor, in EC2's listing
// order, matching every filter: at most limit of them (all when limit is
// 0), and whether more follow. Its cost follows the page, not the number
// of instances EC2 shows: it starts at the cursor and stops at the first
// match past the page.
func (e *EC2) InstancesPage(filters []InstanceFilter, after InstanceCursor, limit int) ([]Instance, bool, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.forgetHistoryLocked()
	start := 0
	if after != (InstanceCursor{}) {
		start, _ = slices.BinarySearchFunc(w.order, after, func(in *Instance, c InstanceCursor) int {
			if x := in.LaunchTime.Compare(c.LaunchTime); x != 0 {
				return x
			}
			if in.ID <= c.ID {
				return -1
			}
			return 1
		})
	}
	now := w.clock.Now()
	var out []Instance
	for _, in := range w.order[start:] {
		// Not visibleLocked, which may forget an instance and so rewrite
		// w.order under this loop; forgetHistoryLocked has just forgotten
		// what is due.
		if w.insts[in.ID] != in || (in.EC2State == EC2Terminated && !w.inGroupLocked(in) && now.Sub(in.terminatedAt) > terminatedVisibility) {
			continue
		}
		ok := true
		for _, f := range filters {
			if !instanceMatches(in, f) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if limit > 0 && len(out) == limit {
			return out, true, nil
		}
		out = append(out, w.copyInstance(in))
	}
	return out, false, nil
}

// visibleLocked reports whether EC2 still lists an instance; instances
// terminated longer than terminatedVisibility ago are forgotten here.
func (w *World) visibleLocked(id string) bool {
	in, ok := w.insts[id]
	if !ok {
		return false
	}
	if in.EC2State == EC2Terminated && !w.inGroupLocked(in) {
		if w.clock.Now().Sub(in.terminatedAt) > terminatedVisibility {
			w.forgetInstanceLocked(in)
			return false
		}
	}
	return true
}

func (w *World) inGroupLocked(in *Instance) bool {
	g, ok := w.groups[in.Group]
	return ok && slices.Contains(g.Instances, in.ID)
}

func (w *World) checkInstanceIDsLocked(ids []string) error {
	var missing []string
	for _, id := range ids {
		if !instanceIDPattern.MatchString(id) {
			return awsproto.Errorf("InvalidInstanceID.Malformed", "Invalid id: \"%s\"", id)
		}
		if !w.visibleLocked(id) {
			missing = append(missing, id)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return awsproto.Errorf("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", missing[0])
	}
	return awsproto.Errorf("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
}

func instanceMatches(in *Instance, f InstanceFilter) bool {
	var vals []string
	switch {
	case f.Name == "instance-id":
		vals = []string{in.ID}
	case f.Name == "instance-state-name":
		vals = []string{in.EC2State}
	case f.Name == "instance-state-code":
		vals = []string{fmt.Sprint(EC2StateCode(in.EC2State))}
	case f.Name == "availability-zone":
		vals = []string{in.AZ}
	case f.Name == "private-ip-address":
		vals = []string{in.PrivateIP}
	case f.Name == "image-id":
		vals = []string{in.ImageID}
	case f.Name == "instance-type":
		vals = []string{in.InstanceType}
	case f.Name == "subnet-id":
		vals = []string{in.Subnet}
	case f.Name == "reservation-id":
		vals = []string{in.ReservationID}
	case f.Name == "tag-key":
		vals = slices.Collect(maps.Keys(in.Tags))
	case f.Name == "tag-value":
		vals = slices.Collect(maps.Values(in.Tags))
	case strings.HasPrefix(f.Name, "tag:"):
		v, ok := in.Tags[strings.TrimPrefix(f.Name, "tag:")]
		if !ok {
			return false
		}
		vals = []string{v}
	default:
		return false
	}
	for _, v := range vals {
		for _, want := range f.Values {
			if wildcard(want, v) {
				return true
			}
		}
	}
	return false
}

// wildcard matches EC2 filter values: * any run, ? one character.
func wildcard(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	var re strings.Builder
	re.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	ok, _ := regexp.MatchString(re.String(), s)
	return ok
}

// ValidInstanceFilter reports whether DescribeInstances knows a filter name.
func ValidInstanceFilter(name string) bool {
	switch name {
	case "instance-id", "instance-state-name", "instance-state-code", "availability-zone", "private-ip-address",
		"image-id", "instance-type", "subnet-id", "reservation-id", "tag-key", "tag-value":
		return true
	}
	return strings.HasPrefix(name, "tag:")
}

// TerminateInstances terminates instances as EC2 does: at once, without
// lifecycle hooks holding them. A group member is then found unhealthy by
// the group, which runs its terminate hooks afterwards and replaces it.
func (e *EC2) TerminateInstances(ids []string) ([]InstanceStateChange, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(ids) == 0 {
		return nil, awsproto.Errorf("MissingParameter", "The request must contain the parameter InstanceId")
	}
	if err := w.checkInstanceIDsLocked(ids); err != nil {
		return nil, err
	}
	var out []InstanceStateChange
	now := w.clock.Now()
	for _, id := range ids {
		in := w.insts[id]
		ch := InstanceStateChange{ID: id, Previous: in.EC2State}
		if in.EC2State != EC2Terminated && !in.stopping {
			in.stopping = true
			in.EC2State = EC2ShuttingDown
			w.emitLocked(Event{Kind: EvInstanceState, Group: in.Group, Instance: id, Detail: "ec2 shutting-down (TerminateInstances)"})
			w.goHost(func() {
				_ = w.host.Stop(id, w.cfg.StopGrace)
				w.mu.Lock()
				defer w.mu.Unlock()
				w.stoppedLocked(in)
			})
			if g, ok := w.groups[in.Group]; ok && in.Group != "" {
				in.Health = "Unhealthy"
				w.emitLocked(Event{Kind: EvInstanceHealth, Group: g.Name, Instance: id, Detail: "Unhealthy (EC2 health check)"})
				w.startTerminationLocked(in, fmt.Sprintf("At %s an instance was taken out of service in response to an EC2 health check indicating it has been terminated or stopped.", stamp(now)))
				w.reconcileLocked(g, "")
			}
		}
		ch.Current = in.EC2State
		out = append(out, ch)
	}
	return out, nil
}

// InstanceStateChange is one TerminateInstances result.
type InstanceStateChange struct {
	ID, Previous, Current string
}

// ConsoleOutput returns an instance's console output and the time it was read.
func (e *EC2) ConsoleOutput(id string) ([]byte, time.Time, error) {
	w := e.w
	w.mu.Lock()
	if err := w.checkInstanceIDsLocked([]string{id}); err != nil {
		w.mu.Unlock()
		return nil, time.Time{}, err
	}
	now := w.clock.Now()
	w.mu.Unlock()
	return w.host.Console(id), now, nil
}

// Metadata is what an instance's IMDS serves.
type Metadata struct {
	InstanceID, AZ, Region, Account, PrivateIP, ImageID, InstanceType string
	ReservationID, RoleName                                           string
	UserData                                                          []byte
	Target                                                            string
	TagsEnabled                                                       bool
	Tags                                                              map[string]string
	Spot                                                              *SpotNotice
	LaunchTime                                                        time.Time
	Options                                                           MetadataOptions
}

// InstanceMetadata returns an instance's metadata, false when unknown.
func (w *World) InstanceMetadata(id string) (Metadata, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	in, ok := w.insts[id]
	if !ok {
		return Metadata{}, false
	}
	m := Metadata{
		InstanceID: in.ID, AZ: in.AZ, Region: w.cfg.Region, Account: w.cfg.Account, PrivateIP: in.PrivateIP,
		ImageID: in.ImageID, InstanceType: in.InstanceType, ReservationID: in.ReservationID, RoleName: in.RoleName,
		UserData: in.UserData, Target: in.Target, LaunchTime: in.LaunchTime, Options: in.Metadata,
		TagsEnabled: in.Metadata.InstanceMetadataTags == "enabled",
	}
	if m.TagsEnabled {
		m.Tags = maps.Clone(in.Tags)
	}
	if in.Spot != nil {
		s := *in.Spot
		m.Spot = &s
	}
	return m, true
}

// EC2 tags -----------------------------------------------------------------

// EC2Tag is a tag on an EC2 resource.
type EC2Tag struct {
	ResourceID, ResourceType, Key, Value string
}

func (w *World) ec2TagsLocked(id string) (map[string]string, string, error) {
	switch {
	case strings.HasPrefix(id, "i-"):
		if err := w.checkInstanceIDsLocked([]string{id}); err != nil {
			return nil, "", err
		}
		return w.insts[id].Tags, "instance", nil
	case strings.HasPrefix(id, "lt-"):
		t, ok := w.lts[id]
		if !ok {
			return nil, "", awsproto.Errorf("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", id)
		}
		if t.Tags == nil {
			t.Tags = map[string]string{}
		}
		return t.Tags, "launch-template", nil
	}
	return nil, "", awsproto.Errorf("InvalidID", "The ID '%s' is not valid", id)
}

// CreateTags sets tags on instances and launch templates (all or none).
func (e *EC2) CreateTags(ids []string, tags []KV) error {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(ids) == 0 {
		return awsproto.Errorf("MissingParameter", "The request must contain the parameter resourceIdSet")
	}
	if len(tags) == 0 {
		return awsproto.Errorf("MissingParameter", "The request must contain the parameter tagSet")
	}
	for _, t := range tags {
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return awsproto.Errorf("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
		}
		if t.Key == "" || len(t.Key) > 128 || len(t.Value) > 256 {
			return awsproto.Errorf("InvalidParameterValue", "Tag key must be 1 to 128 characters and value at most 256 characters")
		}
	}
	maps_ := make([]map[string]string, 0, len(ids))
	for _, id := range ids {
		m, _, err := w.ec2TagsLocked(id)
		if err != nil {
			return err
		}
		maps_ = append(maps_, m)
	}
	for i, m := range maps_ {
		for _, t := range tags {
			m[t.Key] = t.Value
		}
		w.emitLocked(Event{Kind: EvTags, Instance: ids[i], Detail: fmt.Sprintf("set %d tag(s)", len(tags))})
	}
	return nil
}

// DeleteTags removes tags; a nil Value deletes whatever the value, a
// given value (even empty) only when it matches.
func (e *EC2) DeleteTags(ids []string, keys []string, values []*string) error {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(values) != len(keys) {
		return awsproto.Errorf("InvalidParameterValue", "DeleteTags needs one value (or nil) per key: got %d keys and %d values", len(keys), len(values))
	}
	if len(ids) == 0 {
		return awsproto.Errorf("MissingParameter", "The request must contain the parameter resourceIdSet")
	}
	for _, k := range keys {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return awsproto.Errorf("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
		}
	}
	var ms []map[string]string
	for _, id := range ids {
		m, _, err := w.ec2TagsLocked(id)
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}
	for i, m := range ms {
		if len(keys) == 0 {
			for k := range m {
				if !strings.HasPrefix(k, "aws:") {
					delete(m, k)
				}
			}
		}
		for j, k := range keys {
			if v, ok := m[k]; ok && (values[j] == nil || *values[j] == v) {
				delete(m, k)
			}
		}
		w.emitLocked(Event{Kind: EvTags, Instance: ids[i], Detail: "deleted tags"})
	}
	return nil
}

// Tags lists tags on instances and launch templates matching filters
// (resource-id, resource-type, key, value, tag:<key>), sorted by resource
// then key.
func (e *EC2) Tags(filters []InstanceFilter) ([]EC2Tag, error) {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range filters {
		switch f.Name {
		case "resource-id", "resource-type", "key", "value":
		default:
			if !strings.HasPrefix(f.Name, "tag:") {
				return nil, awsproto.Errorf("InvalidParameterValue", "The filter '%s' is invalid", f.Name)
			}
		}
	}
	var all []EC2Tag
	for _, in := range w.insts {
		if !w.visibleLocked(in.ID) {
			continue
		}
		for k, v := range in.Tags {
			all = append(all, EC2Tag{in.ID, "instance", k, v})
		}
	}
	for _, t := range w.lts {
		for k, v := range t.Tags {
			all = append(all, EC2Tag{t.ID, "launch-template", k, v})
		}
	}
	var out []EC2Tag
	for _, t := range all {
		ok := true
		for _, f := range filters {
			var v string
			switch f.Name {
			case "resource-id":
				v = t.ResourceID
			case "resource-type":
				v = t.ResourceType
			case "key":
				v = t.Key
			case "value":
				v = t.Value
			default:
				if t.Key != strings.TrimPrefix(f.Name, "tag:") {
					ok = false
					continue
				}
				v = t.Value
			}
			if !slices.ContainsFunc(f.Values, func(p string) bool { return wildcard(p, v) }) {
				ok = false
			}
		}
		if ok {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b EC2Tag) int {
		if c := strings.Compare(a.ResourceID, b.ResourceID); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out, nil
}
