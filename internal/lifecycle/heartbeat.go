package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

const (
	// heartbeatCallTimeout bounds one heartbeat call (further bounded by the
	// heartbeat interval).
	heartbeatCallTimeout = 30 * time.Second
	// heartbeatMinRetry and heartbeatMaxRetry bound the wait before
	// retrying a failed heartbeat, which is a quarter of the interval
	// otherwise (and never later than the next regular heartbeat).
	heartbeatMinRetry = time.Second
	heartbeatMaxRetry = time.Minute
)

// heartbeatRetry returns the wait before retrying a failed heartbeat when
// heartbeats are interval apart: interval/4, at least heartbeatMinRetry and
// at most heartbeatMaxRetry, and never longer than interval.
func heartbeatRetry(interval time.Duration) time.Duration {
	return min(max(interval/4, heartbeatMinRetry), heartbeatMaxRetry, interval)
}

// heartbeater keeps one action alive: the one heartbeat loop of the
// package, used for every plan (the launch's readiness checks and the
// terminate plan's steps alike).
type heartbeater struct {
	c   Completer
	log *slog.Logger
	a   Action
	// interval is HeartbeatInterval(a.Hook, the plan's interval).
	interval time.Duration
	// sent is called after each heartbeat call with its error; may be nil.
	sent func(Action, error)
	// ok is called after each heartbeat Auto Scaling accepted; may be nil.
	ok func()
	// configured is the plan's heartbeat interval (0: from the hook), and
	// hook, when not nil, returns the hook's latest definition: the
	// schedule and the deadline follow it from the next heartbeat on.
	configured time.Duration
	hook       func(Key) (Hook, bool, <-chan struct{})
	changed    <-chan struct{} // from the last call of hook; nil: never ready
}

// refresh takes in the hook's latest definition, if it changed.
func (h *heartbeater) refresh() {
	if h.hook == nil {
		return
	}
	hk, ok, changed := h.hook(h.a.Key())
	h.changed = changed
	if !ok || hk == h.a.Hook || hk.HeartbeatTimeout <= 0 {
		return
	}
	h.log.Info("lifecycle hook definition updated", "heartbeat_timeout", hk.HeartbeatTimeout)
	h.a.Hook = hk
	h.interval = HeartbeatInterval(hk, h.configured)
}

// run waits for confirmed, then heartbeats the action: at once (a
// restarted agent does not know when its predecessor last did), then every
// interval, retrying a failed call after heartbeatRetry(interval) (never
// later than the next regular heartbeat), and never at or after
// Deadline(a), the global timeout counted from when the action was first
// seen. Each call is bounded by min(interval, heartbeatCallTimeout). run
// returns when ctx ends or the deadline comes (nil), or with an error
// wrapping ErrNoActiveAction when Auto Scaling no longer has the action.
func (h heartbeater) run(ctx context.Context, confirmed <-chan struct{}) error {
	select {
	case <-confirmed:
	case <-ctx.Done():
		return nil
	}
	h.refresh()
	deadline := Deadline(h.a)
	callBound := min(h.interval, heartbeatCallTimeout)
	retryIn := heartbeatRetry(h.interval)
	timer := time.NewTimer(0)
	defer timer.Stop()
	due := time.Now() // the next regular heartbeat; the first is at once
	for {
		if old := h.interval; h.hook != nil {
			h.refresh()
			deadline, callBound, retryIn = Deadline(h.a), min(h.interval, heartbeatCallTimeout), heartbeatRetry(h.interval)
			if sooner := time.Now().Add(h.interval); h.interval < old && sooner.Before(due) {
				due = sooner
			}
		}
		now := time.Now()
		if !now.Before(deadline) {
			h.log.Warn("heartbeats stopped at global timeout", keyDeadline, deadline)
			return nil
		}
		if !due.After(now) {
			cctx, cancel := context.WithTimeout(ctx, callBound)
			err := h.c.Heartbeat(cctx, h.a)
			cancel()
			if h.sent != nil {
				h.sent(h.a, err)
			}
			now = time.Now()
			for !due.After(now) {
				due = due.Add(h.interval)
			}
			switch {
			case err == nil:
				h.log.Info("heartbeat sent", keyDeadline, deadline)
				if h.ok != nil {
					h.ok()
				}
			case errors.Is(err, ErrNoActiveAction):
				return fmt.Errorf("heartbeat lifecycle action %v: %w", h.a.Key(), err)
			case ctx.Err() != nil:
				return nil
			default:
				retry := now.Add(retryIn)
				h.log.Warn("heartbeat failed", keyErr, err, keyRetryIn, min(retryIn, due.Sub(now)))
				if retry.Before(due) {
					due = retry
				}
			}
		}
		wake := due
		if deadline.Before(wake) {
			wake = deadline
		}
		timer.Reset(wake.Sub(now))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-h.changed:
			timer.Stop() // the schedule is made again
		}
	}
}
