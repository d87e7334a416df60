package world

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
)

// maxHooksPerGroup is Auto Scaling's limit.
const maxHooksPerGroup = 50

func (w *World) seconds(n int) time.Duration { return time.Duration(n) * time.Second }

// validHookLocked checks and defaults a hook's fields.
func (w *World) validHookLocked(h *Hook) error {
	if h.Name == "" {
		return notNull("lifecycleHookName")
	}
	if len(h.Name) > 255 || !hookNamePattern.MatchString(h.Name) {
		return awsproto.Validation("1 validation error detected: Value '%s' at 'lifecycleHookName' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9\\-_\\/]+", h.Name)
	}
	switch h.Transition {
	case TransitionLaunching, TransitionTerminating:
	default:
		return awsproto.Validation("Invalid Lifecycle Transition: %s", h.Transition)
	}
	if h.HeartbeatTimeout == 0 {
		h.HeartbeatTimeout = 3600
	}
	if lo := w.minimum(30); h.HeartbeatTimeout < lo || h.HeartbeatTimeout > 7200 {
		return awsproto.Validation("1 validation error detected: Value '%d' at 'heartbeatTimeout' failed to satisfy constraint: Member must have value between %d and 7200", h.HeartbeatTimeout, lo)
	}
	switch h.DefaultResult {
	case "":
		h.DefaultResult = ResultAbandon
	case ResultContinue, ResultAbandon:
	default:
		return awsproto.Validation("1 validation error detected: Value '%s' at 'defaultResult' failed to satisfy constraint: Member must satisfy enum value set: [CONTINUE, ABANDON]", h.DefaultResult)
	}
	if len(h.NotificationMetadata) > 4000 {
		return awsproto.Validation("1 validation error detected: Value at 'notificationMetadata' failed to satisfy constraint: Member must have length less than or equal to 4000")
	}
	if h.RoleARN != "" && !roleARNPattern.MatchString(h.RoleARN) {
		return awsproto.Validation("ARN %s is not a valid IAM role ARN.", h.RoleARN)
	}
	return nil
}

// PutLifecycleHook creates or updates a hook. Updating keeps unset fields.
func (w *World) PutLifecycleHook(h Hook, set HookFields) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h.Name == "" {
		return notNull("lifecycleHookName")
	}
	if h.Group == "" {
		return notNull("autoScalingGroupName")
	}
	g, err := w.liveGroupLocked(h.Group)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(g.Hooks, func(x *Hook) bool { return x.Name == h.Name })
	if i >= 0 {
		old := *g.Hooks[i]
		if !set.Transition {
			h.Transition = old.Transition
		}
		if !set.HeartbeatTimeout {
			h.HeartbeatTimeout = old.HeartbeatTimeout
		}
		if !set.DefaultResult {
			h.DefaultResult = old.DefaultResult
		}
		if !set.NotificationMetadata {
			h.NotificationMetadata = old.NotificationMetadata
		}
		if !set.NotificationTargetARN {
			h.NotificationTargetARN = old.NotificationTargetARN
		}
		if !set.RoleARN {
			h.RoleARN = old.RoleARN
		}
	} else {
		if h.Transition == "" {
			return awsproto.Validation("LifecycleTransition must be specified when creating a new lifecycle hook.")
		}
		if len(g.Hooks) >= maxHooksPerGroup {
			return awsproto.Errorf("LimitExceeded", "Max number of lifecycle hooks for an Auto Scaling group (%d) reached.", maxHooksPerGroup)
		}
	}
	if err := w.validHookLocked(&h); err != nil {
		return err
	}
	if err := w.testNotificationLocked(g, &h); err != nil {
		return err
	}
	if i >= 0 {
		*g.Hooks[i] = h
	} else {
		g.Hooks = append(g.Hooks, &h)
	}
	w.emitLocked(Event{Kind: EvHookPut, Group: g.Name, Hook: h.Name, Detail: fmt.Sprintf("%s, heartbeat %ds, default %s", h.Transition, h.HeartbeatTimeout, h.DefaultResult)})
	return nil
}

// HookFields says which optional PutLifecycleHook fields were sent.
type HookFields struct {
	Transition, HeartbeatTimeout, DefaultResult, NotificationMetadata, NotificationTargetARN, RoleARN bool
}

// LifecycleHooks returns a group's hooks, optionally only the named ones.
func (w *World) LifecycleHooks(group string, names []string) ([]Hook, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if group == "" {
		return nil, notNull("autoScalingGroupName")
	}
	g, ok := w.groups[group]
	if !ok {
		return nil, groupNotFound(group)
	}
	var out []Hook
	for _, h := range g.Hooks {
		if len(names) == 0 || slices.Contains(names, h.Name) {
			out = append(out, *h)
		}
	}
	return out, nil
}

// DeleteLifecycleHook removes a hook; its outstanding actions are completed
// first (ABANDON for launching instances, CONTINUE for terminating ones).
func (w *World) DeleteLifecycleHook(group, name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if name == "" {
		return notNull("lifecycleHookName")
	}
	if group == "" {
		return notNull("autoScalingGroupName")
	}
	g, ok := w.groups[group]
	if !ok {
		return groupNotFound(group)
	}
	i := slices.IndexFunc(g.Hooks, func(x *Hook) bool { return x.Name == name })
	if i < 0 {
		return awsproto.Validation("No Lifecycle Hook found for group %s with hook name %s", group, name)
	}
	g.Hooks = slices.Delete(g.Hooks, i, i+1)
	w.emitLocked(Event{Kind: EvHookDeleted, Group: group, Hook: name})
	for _, id := range slices.Clone(g.Instances) {
		in := w.insts[id]
		for _, a := range slices.Clone(in.actions) {
			if a.Hook.Name != name {
				continue
			}
			result := ResultContinue
			if a.Hook.Transition == TransitionLaunching {
				result = ResultAbandon
			}
			w.completeLocked(in, a, result, "hook deleted")
		}
	}
	return nil
}

// ActionRef identifies a lifecycle action as the API does.
type ActionRef struct {
	Group, Hook, Token, InstanceID string
}

// CompleteLifecycleAction completes an action with CONTINUE or ABANDON.
func (w *World) CompleteLifecycleAction(ref ActionRef, result string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := validRef(ref); err != nil {
		return err
	}
	switch result {
	case ResultContinue, ResultAbandon:
	case "":
		return notNull("lifecycleActionResult")
	default:
		return awsproto.Validation("1 validation error detected: Value '%s' at 'lifecycleActionResult' failed to satisfy constraint: Member must satisfy enum value set: [CONTINUE, ABANDON]", result)
	}
	in, a, err := w.findActionLocked(ref)
	if err != nil {
		return err
	}
	w.completeLocked(in, a, result, "completed")
	return nil
}

// RecordLifecycleActionHeartbeat restarts an action's heartbeat timer,
// never past its global timeout.
func (w *World) RecordLifecycleActionHeartbeat(ref ActionRef) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := validRef(ref); err != nil {
		return err
	}
	in, a, err := w.findActionLocked(ref)
	if err != nil {
		return err
	}
	now := w.clock.Now()
	a.Deadline = now.Add(w.seconds(a.Hook.HeartbeatTimeout))
	if a.Deadline.After(a.GlobalDeadline) {
		a.Deadline = a.GlobalDeadline
	}
	w.armActionLocked(in, a)
	w.emitLocked(Event{Kind: EvActionHeartbeat, Group: in.Group, Instance: in.ID, Hook: a.Hook.Name, Token: a.Token, Detail: "deadline " + a.Deadline.UTC().Format(time.RFC3339)})
	return nil
}

func validRef(ref ActionRef) error {
	switch {
	case ref.Hook == "":
		return notNull("lifecycleHookName")
	case ref.Group == "":
		return notNull("autoScalingGroupName")
	case ref.Token == "" && ref.InstanceID == "":
		return awsproto.Validation("Either instance ID or lifecycle action token must be specified.")
	case ref.Token != "" && len(ref.Token) != 36:
		return awsproto.Validation("1 validation error detected: Value '%s' at 'lifecycleActionToken' failed to satisfy constraint: Member must have length greater than or equal to 36", ref.Token)
	case len(ref.InstanceID) > 19:
		return awsproto.Validation("1 validation error detected: Value '%s' at 'instanceId' failed to satisfy constraint: Member must have length less than or equal to 19", ref.InstanceID)
	}
	return nil
}

// findActionLocked finds the active action an API call names, or AWS's
// "No active Lifecycle Action found" error.
func (w *World) findActionLocked(ref ActionRef) (*Instance, *Action, error) {
	notFound := func() error {
		if ref.Token != "" {
			return awsproto.Validation("No active Lifecycle Action found with token %s", ref.Token)
		}
		return awsproto.Validation("No active Lifecycle Action found with instance ID %s", ref.InstanceID)
	}
	g, ok := w.groups[ref.Group]
	if !ok {
		return nil, nil, groupNotFound(ref.Group)
	}
	for _, id := range g.Instances {
		in := w.insts[id]
		if ref.InstanceID != "" && in.ID != ref.InstanceID {
			continue
		}
		for _, a := range in.actions {
			if a.Hook.Name != ref.Hook {
				continue
			}
			if ref.Token != "" && a.Token != ref.Token {
				continue
			}
			return in, a, nil
		}
	}
	return nil, nil, notFound()
}

// startActionsLocked creates one action per hook of the transition, arms
// their timers and publishes their notifications. It reports whether any
// hook applies.
func (w *World) startActionsLocked(g *Group, in *Instance, transition string) bool {
	now := w.clock.Now()
	for _, h := range g.Hooks {
		if h.Transition != transition {
			continue
		}
		a := &Action{
			Token:          w.uuidLocked(),
			Instance:       in.ID,
			Hook:           *h,
			Started:        now,
			GlobalDeadline: now.Add(w.seconds(h.GlobalTimeout())),
		}
		a.Deadline = now.Add(w.seconds(h.HeartbeatTimeout))
		in.actions = append(in.actions, a)
		w.armActionLocked(in, a)
		w.emitLocked(Event{Kind: EvActionStarted, Group: g.Name, Instance: in.ID, Hook: h.Name, Token: a.Token, Detail: fmt.Sprintf("%s, heartbeat timeout %ds, global timeout %ds", transition, h.HeartbeatTimeout, h.GlobalTimeout())})
		w.actionNotificationLocked(g, in, a)
	}
	return len(in.actions) > 0
}

// armActionLocked (re)starts an action's timeout timer.
func (w *World) armActionLocked(in *Instance, a *Action) {
	if a.timer != nil {
		a.timer.Stop()
	}
	d := a.Deadline.Sub(w.clock.Now())
	a.timer = w.after(d, func() {
		if !slices.Contains(in.actions, a) {
			return
		}
		if w.clock.Now().Before(a.Deadline) {
			w.armActionLocked(in, a) // a heartbeat moved it
			return
		}
		why := "heartbeat timeout"
		if !a.Deadline.Before(a.GlobalDeadline) {
			why = "global timeout"
		}
		w.emitLocked(Event{Kind: EvActionTimedOut, Group: in.Group, Instance: in.ID, Hook: a.Hook.Name, Token: a.Token, Result: a.Hook.DefaultResult, Detail: why})
		w.completeLocked(in, a, a.Hook.DefaultResult, why)
	})
}

func (w *World) cancelActionsLocked(in *Instance) {
	for _, a := range in.actions {
		if a.timer != nil {
			a.timer.Stop()
		}
	}
	in.actions = nil
}

// completeLocked applies one action's result and moves the instance on
// when its transition has no action left.
func (w *World) completeLocked(in *Instance, a *Action, result, how string) {
	if a.timer != nil {
		a.timer.Stop()
	}
	in.actions = slices.DeleteFunc(in.actions, func(x *Action) bool { return x == a })
	w.emitLocked(Event{Kind: EvActionCompleted, Group: in.Group, Instance: in.ID, Hook: a.Hook.Name, Token: a.Token, Result: result, Detail: how})
	g := w.groups[in.Group]
	switch a.Hook.Transition {
	case TransitionLaunching:
		if result == ResultAbandon {
			w.cancelActionsLocked(in)
			w.abandonLaunchLocked(g, in, a.Token)
			return
		}
		if len(in.actions) == 0 && in.State == StatePendingWait {
			w.proceedLaunchLocked(g, in)
		}
	case TransitionTerminating:
		if result == ResultAbandon {
			// ABANDON stops any remaining actions, such as other hooks.
			w.cancelActionsLocked(in)
		}
		if len(in.actions) == 0 && in.State == StateTerminatingWait {
			w.setStateLocked(in, StateTerminatingProceed, "")
			w.finishTerminationLocked(in, "")
		}
	}
}

// Notification bodies ------------------------------------------------------

// testNotificationLocked publishes the TEST_NOTIFICATION a hook with a
// target gets when it is put; a target that cannot take it fails the call
// as on AWS.
func (w *World) testNotificationLocked(g *Group, h *Hook) error {
	if h.NotificationTargetARN == "" {
		return nil
	}
	body := map[string]any{
		"AccountId":            w.cfg.Account,
		"RequestId":            w.uuidLocked(),
		"AutoScalingGroupARN":  g.ARN,
		"AutoScalingGroupName": g.Name,
		"Service":              "AWS Auto Scaling",
		"Event":                "autoscaling:TEST_NOTIFICATION",
		"Time":                 w.clock.Now().UTC().Format(awsproto.TimeFormat),
	}
	if err := w.notifyLocked(h.NotificationTargetARN, fmt.Sprintf("Auto Scaling: test notification for group \"%s\"", g.Name), body); err != nil {
		return awsproto.Validation("Unable to publish test message to notification target %s using IAM role %s Please check your target and role configuration and try to put lifecycle hook again.", h.NotificationTargetARN, h.RoleARN)
	}
	return nil
}

func (w *World) actionNotificationLocked(g *Group, in *Instance, a *Action) {
	detail := map[string]any{
		"Origin":               "EC2",
		"Destination":          "AutoScalingGroup",
		"LifecycleHookName":    a.Hook.Name,
		"LifecycleTransition":  a.Hook.Transition,
		"AutoScalingGroupName": g.Name,
		"EC2InstanceId":        in.ID,
		"LifecycleActionToken": a.Token,
	}
	verb, detailType := "LAUNCHING", "EC2 Instance-launch Lifecycle Action"
	if a.Hook.Transition == TransitionTerminating {
		detail["Origin"], detail["Destination"] = "AutoScalingGroup", "EC2"
		verb, detailType = "TERMINATING", "EC2 Instance-terminate Lifecycle Action"
	}
	if a.Hook.NotificationMetadata != "" {
		detail["NotificationMetadata"] = a.Hook.NotificationMetadata
	}
	w.msg.PutAutoScalingEvent(detailType, []string{g.ARN}, detail)
	if a.Hook.NotificationTargetARN == "" {
		return
	}
	body := map[string]any{
		"AccountId": w.cfg.Account,
		"RequestId": w.uuidLocked(),
		"Service":   "AWS Auto Scaling",
		"Time":      a.Started.UTC().Format(awsproto.TimeFormat),
	}
	for k, v := range detail {
		body[k] = v
	}
	// A target deleted since the hook was put loses the message, as on AWS.
	_ = w.notifyLocked(a.Hook.NotificationTargetARN, fmt.Sprintf("Auto Scaling: Lifecycle action '%s' for instance %s in progress.", verb, in.ID), body)
}

// notifyLocked publishes a JSON body to an SQS queue or SNS topic ARN
// through the messaging owner (lock order: world, then messaging) and
// records the notification.
func (w *World) notifyLocked(target, subject string, body map[string]any) error {
	b, _ := json.Marshal(body)
	err := w.msg.Notify(target, subject, string(b))
	detail := target + " " + subject
	if err != nil {
		detail += " (not delivered: " + err.Error() + ")"
	}
	w.emitLocked(Event{Kind: EvNotification, Detail: detail})
	return err
}
