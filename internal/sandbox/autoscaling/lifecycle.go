package autoscaling

import (
	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

func (h *Handler) putLifecycleHook(r request) (any, error) {
	timeout, err := optInt(r.Params, "HeartbeatTimeout")
	if err != nil {
		return nil, err
	}
	hook := world.Hook{
		Name:                  r.String("LifecycleHookName"),
		Group:                 r.String("AutoScalingGroupName"),
		Transition:            r.String("LifecycleTransition"),
		DefaultResult:         r.String("DefaultResult"),
		NotificationMetadata:  r.String("NotificationMetadata"),
		NotificationTargetARN: r.String("NotificationTargetARN"),
		RoleARN:               r.String("RoleARN"),
	}
	if timeout != nil {
		hook.HeartbeatTimeout = *timeout
	}
	set := world.HookFields{
		Transition:            r.Has("LifecycleTransition"),
		HeartbeatTimeout:      timeout != nil,
		DefaultResult:         r.Has("DefaultResult"),
		NotificationMetadata:  r.Has("NotificationMetadata"),
		NotificationTargetARN: r.Has("NotificationTargetARN"),
		RoleARN:               r.Has("RoleARN"),
	}
	if err := h.w.PutLifecycleHook(hook, set); err != nil {
		return nil, err
	}
	return nil, nil
}

type xmlHook struct {
	LifecycleHookName     string
	AutoScalingGroupName  string
	LifecycleTransition   string
	NotificationTargetARN string `xml:",omitempty"`
	RoleARN               string `xml:",omitempty"`
	NotificationMetadata  string `xml:",omitempty"`
	HeartbeatTimeout      int
	GlobalTimeout         int
	DefaultResult         string
}

type hooksResult struct {
	LifecycleHooks awsproto.Members[xmlHook]
}

func (h *Handler) describeLifecycleHooks(r request) (any, error) {
	hooks, err := h.w.LifecycleHooks(r.String("AutoScalingGroupName"), r.Strings("LifecycleHookNames"))
	if err != nil {
		return nil, err
	}
	out := hooksResult{LifecycleHooks: awsproto.Members[xmlHook]{}}
	for _, k := range hooks {
		out.LifecycleHooks = append(out.LifecycleHooks, xmlHook{
			LifecycleHookName:     k.Name,
			AutoScalingGroupName:  k.Group,
			LifecycleTransition:   k.Transition,
			NotificationTargetARN: k.NotificationTargetARN,
			RoleARN:               k.RoleARN,
			NotificationMetadata:  k.NotificationMetadata,
			HeartbeatTimeout:      k.HeartbeatTimeout,
			GlobalTimeout:         k.GlobalTimeout(),
			DefaultResult:         k.DefaultResult,
		})
	}
	return out, nil
}

func (h *Handler) deleteLifecycleHook(r request) (any, error) {
	if err := h.w.DeleteLifecycleHook(r.String("AutoScalingGroupName"), r.String("LifecycleHookName")); err != nil {
		return nil, err
	}
	return nil, nil
}

func actionRef(r request) world.ActionRef {
	return world.ActionRef{
		Group:      r.String("AutoScalingGroupName"),
		Hook:       r.String("LifecycleHookName"),
		Token:      r.String("LifecycleActionToken"),
		InstanceID: r.String("InstanceId"),
	}
}

func (h *Handler) completeLifecycleAction(r request) (any, error) {
	if err := h.w.CompleteLifecycleAction(actionRef(r), r.String("LifecycleActionResult")); err != nil {
		return nil, err
	}
	return nil, nil
}

func (h *Handler) recordLifecycleActionHeartbeat(r request) (any, error) {
	if err := h.w.RecordLifecycleActionHeartbeat(actionRef(r)); err != nil {
		return nil, err
	}
	return nil, nil
}
