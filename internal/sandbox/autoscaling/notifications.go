package autoscaling

import (
	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

func (h *Handler) putNotificationConfiguration(r request) (any, error) {
	types := r.Strings("NotificationTypes")
	if err := h.w.PutNotificationConfiguration(r.String("AutoScalingGroupName"), r.String("TopicARN"), types); err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, nil
}

type notificationConfiguration struct {
	AutoScalingGroupName string
	TopicARN             string
	NotificationType     string
}

type describeNotificationConfigurationsResult struct {
	NotificationConfigurations awsproto.Members[notificationConfiguration]
	NextToken                  string `xml:",omitempty"`
}

func (h *Handler) describeNotificationConfigurations(r request) (any, error) {
	limit, err := maxRecords(r.Params, 50, 100)
	if err != nil {
		return nil, err
	}
	all := h.w.NotificationConfigurations(r.Strings("AutoScalingGroupNames"))
	key := func(n world.GroupNotification) string { return n.Group + "\x00" + n.TopicARN + "\x00" + n.Type }
	page, next, err := paginate(all, key, true, "notification", r.String("NextToken"), limit)
	if err != nil {
		return nil, err
	}
	out := describeNotificationConfigurationsResult{NotificationConfigurations: awsproto.Members[notificationConfiguration]{}, NextToken: next}
	for _, n := range page {
		out.NotificationConfigurations = append(out.NotificationConfigurations, notificationConfiguration{n.Group, n.TopicARN, n.Type})
	}
	return out, nil
}

func (h *Handler) deleteNotificationConfiguration(r request) (any, error) {
	if err := h.w.DeleteNotificationConfiguration(r.String("AutoScalingGroupName"), r.String("TopicARN")); err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, nil
}
