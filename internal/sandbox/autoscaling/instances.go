package autoscaling

import (
	"slices"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// xmlInstanceDetails is DescribeAutoScalingInstances' AutoScalingInstanceDetails.
type xmlInstanceDetails struct {
	InstanceID              string `xml:"InstanceId"`
	InstanceType            string `xml:",omitempty"`
	AutoScalingGroupName    string
	AvailabilityZone        string
	LifecycleState          string
	HealthStatus            string
	LaunchConfigurationName string             `xml:",omitempty"`
	LaunchTemplate          *xmlLaunchTemplate `xml:",omitempty"`
	ProtectedFromScaleIn    bool
}

type instancesResult struct {
	AutoScalingInstances awsproto.Members[xmlInstanceDetails]
	NextToken            string `xml:",omitempty"`
}

func (h *Handler) describeAutoScalingInstances(r request) (any, error) {
	limit, err := maxRecords(r.Params, 50, 50)
	if err != nil {
		return nil, err
	}
	insts, err := h.w.AutoScalingInstances(r.Strings("InstanceIds"))
	if err != nil {
		return nil, err
	}
	page, next, err := paginate(insts, func(in world.Instance) string { return in.ID }, true, "instance", r.String("NextToken"), limit)
	if err != nil {
		return nil, err
	}
	out := instancesResult{AutoScalingInstances: awsproto.Members[xmlInstanceDetails]{}, NextToken: next}
	for _, in := range page {
		out.AutoScalingInstances = append(out.AutoScalingInstances, xmlInstanceDetails{
			InstanceID:           in.ID,
			InstanceType:         in.InstanceType,
			AutoScalingGroupName: in.Group,
			AvailabilityZone:     in.AZ,
			LifecycleState:       in.State,
			// This API spells health upper-case, unlike DescribeAutoScalingGroups.
			HealthStatus:            strings.ToUpper(in.Health),
			LaunchConfigurationName: in.LaunchConfig,
			LaunchTemplate:          launchTemplate(in.LaunchTemplate),
			ProtectedFromScaleIn:    in.Protected,
		})
	}
	return out, nil
}

func (h *Handler) setInstanceHealth(r request) (any, error) {
	respect, err := optBool(r.Params, "ShouldRespectGracePeriod")
	if err != nil {
		return nil, err
	}
	if err := h.w.SetInstanceHealth(r.String("InstanceId"), r.String("HealthStatus"), respect == nil || *respect); err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, nil
}

func (h *Handler) setInstanceProtection(r request) (any, error) {
	protect, err := optBool(r.Params, "ProtectedFromScaleIn")
	if err != nil {
		return nil, err
	}
	group, ids := r.String("AutoScalingGroupName"), r.Strings("InstanceIds")
	switch {
	case group == "":
		return nil, notNull("autoScalingGroupName")
	case ids == nil:
		return nil, notNull("instanceIds")
	case protect == nil:
		return nil, notNull("protectedFromScaleIn")
	}
	if err := h.w.SetInstanceProtection(group, ids, *protect); err != nil {
		return nil, err
	}
	return nil, nil
}

// xmlActivity is a scaling activity.
type xmlActivity struct {
	ActivityID           string `xml:"ActivityId"`
	AutoScalingGroupName string
	Description          string `xml:",omitempty"`
	Cause                string
	StartTime            awsproto.Time
	EndTime              *awsproto.Time `xml:",omitempty"`
	StatusCode           string
	StatusMessage        string `xml:",omitempty"`
	Progress             int
	Details              string `xml:",omitempty"`
	AutoScalingGroupARN  string `xml:",omitempty"`
}

func activity(a world.Activity) xmlActivity {
	return xmlActivity{
		ActivityID:           a.ID,
		AutoScalingGroupName: a.Group,
		Description:          a.Description,
		Cause:                a.Cause,
		StartTime:            awsproto.Time(a.Start),
		EndTime:              awsproto.TimePtr(a.End),
		StatusCode:           a.StatusCode,
		StatusMessage:        a.StatusMessage,
		Progress:             a.Progress,
		Details:              a.Details,
		AutoScalingGroupARN:  a.GroupARN,
	}
}

func activities(as []world.Activity) awsproto.Members[xmlActivity] {
	out := make(awsproto.Members[xmlActivity], 0, len(as))
	for _, a := range as {
		out = append(out, activity(a))
	}
	return out
}

// activitiesResult is EnterStandby's, ExitStandby's and
// DescribeScalingActivities' result.
type activitiesResult struct {
	Activities awsproto.Members[xmlActivity]
	NextToken  string `xml:",omitempty"`
}

func (h *Handler) enterStandby(r request) (any, error) {
	decrement, err := optBool(r.Params, "ShouldDecrementDesiredCapacity")
	if err != nil {
		return nil, err
	}
	as, err := h.w.EnterStandby(r.String("AutoScalingGroupName"), r.Strings("InstanceIds"), decrement)
	if err != nil {
		return nil, err
	}
	return activitiesResult{Activities: activities(as)}, nil
}

func (h *Handler) exitStandby(r request) (any, error) {
	as, err := h.w.ExitStandby(r.String("AutoScalingGroupName"), r.Strings("InstanceIds"))
	if err != nil {
		return nil, err
	}
	return activitiesResult{Activities: activities(as)}, nil
}

type terminateResult struct {
	Activity   *xmlActivity                  `xml:",omitempty"`
	Activities awsproto.Members[xmlActivity] `xml:",omitempty"`
}

// maxTerminateIDs is how many InstanceIds one TerminateInstanceInAutoScalingGroup takes.
const maxTerminateIDs = 100

// terminateInstanceInAutoScalingGroup takes either InstanceId (the classic
// form, answered with Activity) or AutoScalingGroupName plus InstanceIds
// (the current model's form, answered with Activities).
func (h *Handler) terminateInstanceInAutoScalingGroup(r request) (any, error) {
	decrement, err := optBool(r.Params, "ShouldDecrementDesiredCapacity")
	if err != nil {
		return nil, err
	}
	ids := r.Strings("InstanceIds")
	if len(ids) == 0 {
		a, err := h.w.TerminateInGroup(r.String("InstanceId"), decrement)
		if err != nil {
			return nil, err
		}
		x := activity(a)
		return terminateResult{Activity: &x}, nil
	}
	group := r.String("AutoScalingGroupName")
	switch {
	case decrement == nil:
		return nil, notNull("shouldDecrementDesiredCapacity")
	case r.String("InstanceId") != "":
		return nil, awsproto.Validation("Specify either InstanceId or InstanceIds, not both.")
	case group == "":
		return nil, awsproto.Validation("AutoScalingGroupName is required when InstanceIds is specified.")
	case len(ids) > maxTerminateIDs:
		return nil, awsproto.Validation("1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to %d", maxTerminateIDs)
	}
	// The world terminates one instance at a time; check every id belongs
	// to the named group first so that a bad id fails the call before any
	// instance is touched.
	views, err := h.w.Groups([]string{group}, nil)
	if err != nil {
		return nil, err
	}
	if len(views) == 0 {
		return nil, awsproto.Validation("AutoScalingGroup name not found - AutoScalingGroup %s not found", group)
	}
	for _, id := range ids {
		if !slices.Contains(views[0].Instances, id) {
			return nil, awsproto.Validation("The instance %s is not part of Auto Scaling group %s.", id, group)
		}
	}
	var as []world.Activity
	for _, id := range ids {
		a, err := h.w.TerminateInGroup(id, decrement)
		if err != nil {
			return nil, err
		}
		as = append(as, a)
	}
	return terminateResult{Activities: activities(as)}, nil
}

func (h *Handler) describeScalingActivities(r request) (any, error) {
	if len(r.Members("Filters")) > 0 {
		return nil, notModelled("Filters on DescribeScalingActivities")
	}
	limit, err := maxRecords(r.Params, 100, 100)
	if err != nil {
		return nil, err
	}
	includeDeleted, err := optBool(r.Params, "IncludeDeletedGroups")
	if err != nil {
		return nil, err
	}
	as, err := h.w.Activities(r.String("AutoScalingGroupName"), r.Strings("ActivityIds"), includeDeleted != nil && *includeDeleted)
	if err != nil {
		return nil, err
	}
	page, next, err := paginate(as, func(a world.Activity) string { return a.ID }, false, "activity", r.String("NextToken"), limit)
	if err != nil {
		return nil, err
	}
	return activitiesResult{Activities: activities(page), NextToken: next}, nil
}
