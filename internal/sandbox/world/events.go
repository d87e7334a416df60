package world

import (
	"context"
	"time"
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
	EvClock             = "clock-advanced"
	EvFault             = "fault"
)

// Event is one entry of the world's ordered log.
type Event struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Group    string    `json:"group,omitempty"`
	Instance string    `json:"instance,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	// State is the instance's lifecycle state after an instance-state event.
	State string `json:"state,omitempty"`
	// Hook, Token and Result describe lifecycle action events.
	Hook   string `json:"hook,omitempty"`
	Token  string `json:"token,omitempty"`
	Result string `json:"result,omitempty"`
}

// maxEvents bounds the log's memory; older events are dropped.
const maxEvents = 200_000

type eventLog struct {
	seq     int64
	list    []Event
	changed chan struct{} // closed and replaced on every append
}

// emitLocked appends an event stamped with the world's time.
func (w *World) emitLocked(e Event) {
	w.events.seq++
	e.Seq = w.events.seq
	e.Time = w.clock.Now().UTC()
	if len(w.events.list) >= maxEvents {
		w.events.list = append(w.events.list[:0], w.events.list[maxEvents/2:]...)
	}
	w.events.list = append(w.events.list, e)
	close(w.events.changed)
	w.events.changed = make(chan struct{})
	w.log.Debug("event", "kind", e.Kind, "group", e.Group, "instance", e.Instance, "detail", e.Detail, "state", e.State)
}

// Emit records an event from outside the world (the sandbox's admin API
// records clock advances and faults this way).
func (w *World) Emit(e Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.emitLocked(e)
}

// EventsAfter returns the events with Seq > after, waiting until there is
// at least one or ctx ends (then it returns what it has, possibly nothing,
// and ctx's error).
func (w *World) EventsAfter(ctx context.Context, after int64) ([]Event, error) {
	for {
		w.mu.Lock()
		list := w.events.list
		var out []Event
		if n := len(list); n > 0 && list[n-1].Seq > after {
			// Seqs are dense within the kept window: find the start.
			i := 0
			if first := list[0].Seq; after >= first {
				i = int(after - first + 1)
			}
			out = append(out, list[i:]...)
		}
		ch := w.events.changed
		w.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Events returns a copy of the whole log kept so far.
func (w *World) Events() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Event(nil), w.events.list...)
}
