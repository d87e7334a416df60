package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultQueuePrefix is the agents' default sqs.queue_prefix: an agent
// reading its notifications from SQS keeps a queue named this prefix and
// its instance id, subscribed to the notification topic.
const DefaultQueuePrefix = "lifeguard-"

// InstanceQueue is an agent's per-instance queue.
type InstanceQueue struct {
	URL, ARN string
	// Instance is the instance id its name ends with.
	Instance string
}

// Queues lists and deletes the agents' per-instance queues and reads the
// EC2 state of their instances (SQS ListQueues, GetQueueAttributes,
// DeleteQueue; SNS ListSubscriptions, Unsubscribe; EC2 DescribeInstances).
type Queues interface {
	// InstanceQueues returns the queues named prefix followed by an
	// instance id, with their ARN.
	InstanceQueues(ctx context.Context, prefix string) ([]InstanceQueue, error)
	// InstanceStates returns the EC2 state name (pending, running, ...,
	// terminated) of each of ids EC2 knows; ids it does not know are left
	// out.
	InstanceStates(ctx context.Context, ids []string) (map[string]string, error)
	// DeleteInstanceQueue deletes every SNS subscription whose endpoint is
	// q.ARN, then the queue, and returns how many subscriptions it deleted.
	// A queue or subscription already gone is not an error.
	DeleteInstanceQueue(ctx context.Context, q InstanceQueue) (subscriptions int, err error)
}

// QueueInstance returns the instance id a per-instance queue's name ends
// with: name is prefix and an instance id (i- and 8 or 17 lowercase hex
// digits); ok is false for any other name, such as the controller's own
// queue.
func QueueInstance(prefix, name string) (id string, ok bool) {
	id, ok = strings.CutPrefix(name, prefix)
	if !ok {
		return "", false
	}
	hex, ok := strings.CutPrefix(id, "i-")
	if !ok || (len(hex) != 8 && len(hex) != 17) {
		return "", false
	}
	for _, r := range hex {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return "", false
		}
	}
	return id, true
}

// Gone returns the queues whose instance has been gone for at least grace
// at now: EC2 shows it terminated, or does not know it at all. goneSince
// holds when each instance was first seen gone; Gone records newly gone
// instances in it and forgets instances that are back or whose queue is
// no longer listed. A queue whose instance EC2 shows in any other state
// (pending, running, stopping, stopped, shutting-down) is never returned.
func Gone(grace time.Duration, now time.Time, qs []InstanceQueue, states map[string]string, goneSince map[string]time.Time) []InstanceQueue {
	listed := map[string]bool{}
	var out []InstanceQueue
	for _, q := range qs {
		st, known := states[q.Instance]
		if known && st != "terminated" {
			continue
		}
		listed[q.Instance] = true
		since, ok := goneSince[q.Instance]
		if !ok {
			goneSince[q.Instance] = now
			continue
		}
		if now.Sub(since) >= grace {
			out = append(out, q)
		}
	}
	for id := range goneSince {
		if !listed[id] {
			delete(goneSince, id)
		}
	}
	slices.SortFunc(out, func(a, b InstanceQueue) int { return strings.Compare(a.URL, b.URL) })
	return out
}

// SweepQueues deletes the per-instance queues (and their subscriptions) of
// instances gone for longer than the reaper's grace (see Gone). It does
// nothing without deps.Queues. The daemon runs it with every periodic
// reconcile; a Lambda function with every scheduled event.
func (c *Controller) SweepQueues(ctx context.Context) error {
	if c.deps.Queues == nil {
		return nil
	}
	select {
	case c.sweeping <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sweeping }()
	qs, err := c.deps.Queues.InstanceQueues(ctx, c.cfg.QueuePrefix)
	if err != nil {
		return fmt.Errorf("list per-instance queues: %w", err)
	}
	states := map[string]string{}
	if len(qs) > 0 {
		ids := make([]string, 0, len(qs))
		for _, q := range qs {
			ids = append(ids, q.Instance)
		}
		slices.Sort(ids)
		if states, err = c.deps.Queues.InstanceStates(ctx, slices.Compact(ids)); err != nil {
			return fmt.Errorf("describe the instances of per-instance queues: %w", err)
		}
	}
	c.mu.Lock()
	gone := Gone(c.cfg.Reap.Grace, time.Now(), qs, states, c.goneQueues)
	c.mu.Unlock()
	var errs []error
	for _, q := range gone {
		n, err := c.deps.Queues.DeleteInstanceQueue(ctx, q)
		c.mu.Lock()
		c.stats.SubscriptionsDeleted += n
		if err == nil {
			c.stats.QueuesDeleted++
			delete(c.goneQueues, q.Instance)
		}
		c.mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("delete the queue of gone instance %s: %w", q.Instance, err))
			continue
		}
		c.log.Info("queue of a gone instance deleted", "instance", q.Instance, "queue", q.URL, "subscriptions", n)
	}
	return errors.Join(errs...)
}
