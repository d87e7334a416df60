package world

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
)

// Group notification types.
const (
	NotifyLaunch         = "autoscaling:EC2_INSTANCE_LAUNCH"
	NotifyLaunchError    = "autoscaling:EC2_INSTANCE_LAUNCH_ERROR"
	NotifyTerminate      = "autoscaling:EC2_INSTANCE_TERMINATE"
	NotifyTerminateError = "autoscaling:EC2_INSTANCE_TERMINATE_ERROR"
	NotifyTest           = "autoscaling:TEST_NOTIFICATION"
)

// NotificationTypes are the types PutNotificationConfiguration accepts.
var NotificationTypes = []string{NotifyLaunch, NotifyLaunchError, NotifyTerminate, NotifyTerminateError, NotifyTest}

// GroupNotification is a notification configuration with its group.
type GroupNotification struct {
	Group, TopicARN, Type string
}

// PutNotificationConfiguration sets the types a group publishes to a
// topic (replacing that topic's previous types) and sends the topic a
// test notification, as AWS does.
func (w *World) PutNotificationConfiguration(group, topic string, types []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case group == "":
		return notNull("autoScalingGroupName")
	case topic == "":
		return notNull("topicARN")
	case types == nil:
		return notNull("notificationTypes")
	}
	g, err := w.liveGroupLocked(group)
	if err != nil {
		return err
	}
	for _, t := range types {
		if !slices.Contains(NotificationTypes, t) {
			return awsproto.Validation("Notification type %s is not valid. Valid types are: %s", t, strings.Join(NotificationTypes, ", "))
		}
	}
	body := map[string]any{
		"AccountId":            w.cfg.Account,
		"RequestId":            w.uuidLocked(),
		"AutoScalingGroupARN":  g.ARN,
		"AutoScalingGroupName": g.Name,
		"Service":              "AWS Auto Scaling",
		"Event":                NotifyTest,
		"Time":                 w.clock.Now().UTC().Format(awsproto.TimeFormat),
	}
	if err := w.notifyLocked(topic, fmt.Sprintf("Auto Scaling: test notification for group \"%s\"", g.Name), body); err != nil {
		return awsproto.Validation("Failed to publish test notification to %s: %v", topic, err)
	}
	g.NotificationConfigs = slices.DeleteFunc(g.NotificationConfigs, func(c NotificationConfig) bool { return c.TopicARN == topic })
	for _, t := range types {
		g.NotificationConfigs = append(g.NotificationConfigs, NotificationConfig{TopicARN: topic, Type: t})
	}
	return nil
}

// NotificationConfigurations lists the configurations of the named groups
// (all when names is empty), by group, topic and type.
func (w *World) NotificationConfigurations(names []string) []GroupNotification {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []GroupNotification
	for _, g := range w.sortedGroupsLocked() {
		if len(names) > 0 && !slices.Contains(names, g.Name) {
			continue
		}
		for _, c := range g.NotificationConfigs {
			out = append(out, GroupNotification{Group: g.Name, TopicARN: c.TopicARN, Type: c.Type})
		}
	}
	slices.SortStableFunc(out, func(a, b GroupNotification) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		if c := strings.Compare(a.TopicARN, b.TopicARN); c != 0 {
			return c
		}
		return strings.Compare(a.Type, b.Type)
	})
	return out
}

// DeleteNotificationConfiguration removes a group's configuration for a topic.
func (w *World) DeleteNotificationConfiguration(group, topic string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case group == "":
		return notNull("autoScalingGroupName")
	case topic == "":
		return notNull("topicARN")
	}
	g, ok := w.groups[group]
	if !ok {
		return groupNotFound(group)
	}
	n := len(g.NotificationConfigs)
	g.NotificationConfigs = slices.DeleteFunc(g.NotificationConfigs, func(c NotificationConfig) bool { return c.TopicARN == topic })
	if len(g.NotificationConfigs) == n {
		return awsproto.Validation("No notification configuration found for group %s and topic %s", group, topic)
	}
	return nil
}

// activityEndedLocked publishes what AWS publishes when a launch or
// terminate activity ends: the group's SNS notifications and the
// EventBridge "EC2 Instance … Successful/Unsuccessful" events.
func (w *World) activityEndedLocked(a *Activity) {
	var kind, notif, notifErr, subject, detailOK, detailBad string
	switch {
	case strings.HasPrefix(a.Description, "Launching a new EC2 instance"):
		kind, notif, notifErr = "launch", NotifyLaunch, NotifyLaunchError
		detailOK, detailBad = "EC2 Instance Launch Successful", "EC2 Instance Launch Unsuccessful"
	case strings.HasPrefix(a.Description, "Terminating EC2 instance"):
		kind, notif, notifErr = "termination", NotifyTerminate, NotifyTerminateError
		detailOK, detailBad = "EC2 Instance Terminate Successful", "EC2 Instance Terminate Unsuccessful"
	default:
		return
	}
	typ, detailType := notif, detailOK
	subject = fmt.Sprintf("Auto Scaling: %s for group \"%s\"", kind, a.Group)
	if a.StatusCode != "Successful" {
		typ, detailType = notifErr, detailBad
		subject = fmt.Sprintf("Auto Scaling: failed %s for group \"%s\"", kind, a.Group)
	}
	details := map[string]string{}
	if in, ok := w.insts[a.InstanceID]; ok {
		details["Availability Zone"] = in.AZ
		if in.Subnet != "" {
			details["Subnet ID"] = in.Subnet
		}
	}
	detail := map[string]any{
		"StatusCode":           a.StatusCode,
		"AutoScalingGroupName": a.Group,
		"ActivityId":           a.ID,
		"Details":              details,
		"RequestId":            a.ID,
		"StatusMessage":        a.StatusMessage,
		"EndTime":              a.End.UTC().Format(awsproto.TimeFormat),
		"EC2InstanceId":        a.InstanceID,
		"StartTime":            a.Start.UTC().Format(awsproto.TimeFormat),
		"Cause":                a.Cause,
		"Description":          a.Description,
	}
	w.msg.PutAutoScalingEvent(detailType, []string{a.GroupARN, "arn:aws:ec2:" + w.cfg.Region + ":" + w.cfg.Account + ":instance/" + a.InstanceID}, detail)
	g, ok := w.groups[a.Group]
	if !ok {
		return
	}
	for _, c := range g.NotificationConfigs {
		if c.Type != typ {
			continue
		}
		body := map[string]any{
			"Progress":            a.Progress,
			"AccountId":           w.cfg.Account,
			"AutoScalingGroupARN": a.GroupARN,
			"Service":             "AWS Auto Scaling",
			"Time":                w.clock.Now().UTC().Format(awsproto.TimeFormat),
			"Event":               typ,
		}
		for k, v := range detail {
			body[k] = v
		}
		_ = w.notifyLocked(c.TopicARN, subject, body)
	}
}
