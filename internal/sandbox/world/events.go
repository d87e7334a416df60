package world

import (
	"context"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
)

// Event kinds.
const (
	EvGroupCreated      = "group-created"
	EvGroupUpdated      = "group-updated"
	EvGroupDeleted      = "group-deleted"
	EvCapacity          = "desired-capacity"
	EvInstanceLaunched  = "instance-launched"
	EvInstanceState     = "instance-state"
	EvInstanceHealth    = "instance-health"
	EvInstanceProtect   = "instance-protection"
	EvInstanceBootError = "instance-boot-failed"
	EvHookPut           = "hook-put"
	EvHookDeleted       = "hook-deleted"
	EvActionStarted     = "action-started"
	EvActionHeartbeat   = "action-heartbeat"
	EvActionCompleted   = "action-completed"
	EvActionTimedOut    = "action-timed-out"
	EvSpotNotice        = "spot-interruption"
	EvTags              = "tags"
	EvActivity          = "activity"
	EvLaunchBackoff     = "launch-backoff"
	EvNotification      = "notification"
)

// Event is one entry of the sandbox's shared log.
type Event = eventlog.Event

// emitLocked appends an Auto Scaling event to the log's control stream.
func (w *World) emitLocked(e Event) {
	if e.Service == "" {
		e.Service = "autoscaling"
		if e.Kind == EvSpotNotice || e.Kind == EvTags && e.Group == "" {
			e.Service = "ec2"
		}
	}
	w.events.Append(e)
}

// EventsAfter returns the control-stream events with Seq > after (a gap
// marker first when the log no longer holds them all), waiting until there
// is at least one or ctx ends (then it returns nothing and ctx's error).
func (w *World) EventsAfter(ctx context.Context, after int64) ([]Event, error) {
	return w.events.Wait(ctx, after, eventlog.Control)
}

// Events returns a copy of the control-stream events the log holds.
func (w *World) Events() []Event { return w.events.Events(eventlog.Control) }
