package messaging

import (
	"container/heap"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
)

// This file receives messages: long polling, visibility, dead-letter
// moves and the attributes a receive shows (sqs_messages.go sends and
// deletes them).

// ReceiveMessage receives up to MaxNumberOfMessages messages, making them
// invisible for the visibility timeout. With a wait (WaitTimeSeconds, or
// the queue's ReceiveMessageWaitTimeSeconds) it long-polls: it returns as
// soon as a message can be received, or empty-handed when the wait (real
// time) is over or ctx ends. It never holds the broker's lock while
// waiting. A message received more often than its queue's redrive policy
// allows moves to the dead-letter queue instead of being returned.
func (qs *Queues) ReceiveMessage(ctx context.Context, queue string, in ReceiveMessageInput) ([]ReceivedMessage, error) {
	max := 1
	if n := in.MaxNumberOfMessages; n != nil {
		if *n < 1 || *n > sqsMaxBatchEntries {
			return nil, sqsInvalidValue("MaxNumberOfMessages", *n, "Must be between 1 and 10, if provided.")
		}
		max = *n
	}
	if v := in.VisibilityTimeout; v != nil && (*v < 0 || *v > sqsMaxVisibility) {
		return nil, sqsInvalidValue("VisibilityTimeout", *v, "Must be >= 0 and <= 43200, if provided.")
	}
	if v := in.WaitTimeSeconds; v != nil && (*v < 0 || *v > sqsMaxWait) {
		return nil, sqsInvalidValue("WaitTimeSeconds", *v, "Must be >= 0 and <= 20, if provided.")
	}
	if in.AttemptID != "" && !sqsValidFifoID(in.AttemptID) {
		return nil, sqsInvalidValue("ReceiveRequestAttemptId", in.AttemptID, "ReceiveRequestAttemptId can only include alphanumeric and punctuation characters. 1 to 128 in length.")
	}
	var deadline time.Time
	for first := true; ; first = false {
		qs.mu.Lock()
		q, err := qs.sqsQueueLocked(queue)
		if err != nil {
			qs.mu.Unlock()
			return nil, err
		}
		if first {
			wait := q.seconds(sqsAttrWait)
			if in.WaitTimeSeconds != nil {
				wait = time.Duration(*in.WaitTimeSeconds) * time.Second
			}
			deadline = time.Now().Add(wait)
		}
		now := qs.clock.Now()
		out, next := qs.sqsReceiveLocked(q, now, max, in)
		changed := q.changed
		remaining := time.Until(deadline)
		if first && len(out) == 0 && remaining > 0 {
			// Logged so that the timeline (and tests) can see a receiver
			// parked on the queue.
			qs.dataLocked(eventlog.Event{Service: "sqs", Kind: EvLongPoll, Resource: qs.sqsARN(queue), Detail: "long poll waiting " + queue})
		}
		qs.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		if remaining <= 0 || !qs.sqsWait(ctx, changed, remaining, next.Sub(now), !next.IsZero()) {
			return nil, nil
		}
	}
}

// sqsWait blocks until the queue changes, the next message becomes
// visible on the broker's clock (when hasNext), the wait is over, or ctx
// ends. It reports false when ctx ended.
func (qs *Queues) sqsWait(ctx context.Context, changed <-chan struct{}, remaining, untilNext time.Duration, hasNext bool) bool {
	wait := time.NewTimer(remaining)
	defer wait.Stop()
	var due chan struct{} // nil, and never ready, without an upcoming instant
	if hasNext {
		due = make(chan struct{})
		// On the sandbox's clock, so that advancing a simulated clock wakes
		// the receiver as the passing of real time does.
		t := qs.clock.AfterFunc(untilNext, func() { close(due) })
		defer t.Stop()
	}
	select {
	case <-changed:
	case <-due:
	case <-wait.C:
	case <-ctx.Done():
		return false
	}
	return true
}

// sqsReceiveLocked takes up to max receivable messages. With none, it
// returns the earliest instant a message becomes visible (zero if none
// will without a change to the queue).
func (qs *Queues) sqsReceiveLocked(q *sqsQueue, now time.Time, max int, in ReceiveMessageInput) ([]ReceivedMessage, time.Time) {
	qs.sqsExpireLocked(q, now)
	visibility := q.seconds(sqsAttrVisibility)
	if in.VisibilityTimeout != nil {
		visibility = time.Duration(*in.VisibilityTimeout) * time.Second
	}
	if !q.fifo {
		return qs.sqsReceiveStandardLocked(q, now, max, visibility, in)
	}
	if in.AttemptID == "" {
		out, _ := qs.sqsReceiveFifoLocked(q, now, max, visibility, in)
		return out, q.nextVisibleLocked()
	}
	if out, ok := q.retryAttemptLocked(now, visibility, in); ok {
		return out, q.nextVisibleLocked()
	}
	out, taken := qs.sqsReceiveFifoLocked(q, now, max, visibility, in)
	if len(taken) > 0 {
		q.recordAttemptLocked(in.AttemptID, taken, now)
	}
	return out, q.nextVisibleLocked()
}

// sqsAttempt is what one FIFO receive with a ReceiveRequestAttemptId
// took: its messages, with the handle and visibility-change count each
// had after it.
type sqsAttempt struct {
	msgs    []*sqsMessage
	handles []string
	changes []int
	expires time.Time
}

// recordAttemptLocked remembers a receive for retries with its attempt id
// during the deduplication window.
func (q *sqsQueue) recordAttemptLocked(id string, taken []*sqsMessage, now time.Time) {
	a := &sqsAttempt{msgs: taken, expires: now.Add(sqsDedupWindow)}
	for _, m := range taken {
		a.handles = append(a.handles, m.handle)
		a.changes = append(a.changes, m.changes)
	}
	q.attempts[id] = a
	q.attemptOrder = append(q.attemptOrder, sqsDedupExpiry{key: id, expires: a.expires})
}

// retryAttemptLocked answers a receive retried with an attempt id: the
// same messages and handles, their visibility timeout restarted, when
// none of them changed since.
func (q *sqsQueue) retryAttemptLocked(now time.Time, visibility time.Duration, in ReceiveMessageInput) ([]ReceivedMessage, bool) {
	a, ok := q.attempts[in.AttemptID]
	if !ok {
		return nil, false
	}
	for i, m := range a.msgs {
		if q.byID[m.id] != m || m.handle != a.handles[i] || m.changes != a.changes[i] {
			return nil, false
		}
	}
	out := make([]ReceivedMessage, 0, len(a.msgs))
	for _, m := range a.msgs {
		q.setVisibleAtLocked(m, now.Add(visibility))
		out = append(out, q.view(m, in))
	}
	return out, true
}

// sqsReceiveFifoLocked receives from a FIFO queue: the oldest messages
// (in send order) of the groups with nothing in flight, each group's
// only up to its first message that is not visible. A receive may take
// several messages of one group, in order. The groups come from the
// queue's heads, oldest next message first, so the cost is that of the
// messages taken, not of the queue's depth.
func (qs *Queues) sqsReceiveFifoLocked(q *sqsQueue, now time.Time, max int, visibility time.Duration, in ReceiveMessageInput) ([]ReceivedMessage, []*sqsMessage) {
	q.promoteLocked(now)
	var (
		out   []ReceivedMessage
		taken []*sqsMessage
		moved []*sqsMessage
		// The groups taken from heads, and in each the next message this
		// receive may take (nil once the group has no more to give).
		groups []*sqsGroup
		next   []*sqsMessage
	)
	for len(out) < max {
		best := -1
		for i, m := range next {
			if m != nil && (best < 0 || m.order < next[best].order) {
				best = i
			}
		}
		if len(q.heads) > 0 && (best < 0 || q.heads[0].first.order < next[best].order) {
			g := heap.Pop(&q.heads).(*sqsGroup)
			g.receiving = true
			groups, next = append(groups, g), append(next, g.first)
			continue
		}
		if best < 0 {
			break
		}
		m := next[best]
		next[best] = nil
		if n := m.next; n != nil && n.waitIdx < 0 {
			next[best] = n
		}
		if qs.sqsDeadLetterDueLocked(q, m) {
			moved = append(moved, m)
			continue
		}
		out, taken = append(out, qs.sqsTakeLocked(q, m, now, visibility, in)), append(taken, m)
	}
	qs.sqsMoveAllLocked(q, moved, now)
	for _, g := range groups {
		g.receiving = false
		q.fixGroupLocked(g)
	}
	return out, taken
}

// sqsReceiveStandardLocked receives from a standard queue. A standard
// queue gives best-effort order only: receives pick among the visible
// messages in a seeded random order, so no message is always behind the
// same others (consumers that hand messages back would otherwise starve
// the later ones).
func (qs *Queues) sqsReceiveStandardLocked(q *sqsQueue, now time.Time, max int, visibility time.Duration, in ReceiveMessageInput) ([]ReceivedMessage, time.Time) {
	q.promoteLocked(now)
	var (
		out   []ReceivedMessage
		moved []*sqsMessage
	)
	for len(out) < max && len(q.ready) > 0 {
		m := q.ready[qs.rng.IntN(len(q.ready))]
		if qs.sqsDeadLetterDueLocked(q, m) {
			q.unreadyLocked(m)
			moved = append(moved, m)
			continue
		}
		out = append(out, qs.sqsTakeLocked(q, m, now, visibility, in))
	}
	qs.sqsMoveAllLocked(q, moved, now)
	return out, q.nextVisibleLocked()
}

// sqsDeadLetterDueLocked reports whether a message has been received as
// often as its queue's redrive policy allows and has a dead-letter queue
// to move to.
func (qs *Queues) sqsDeadLetterDueLocked(q *sqsQueue, m *sqsMessage) bool {
	if q.redrive == nil || m.received < q.redrive.maxReceiveCount {
		return false
	}
	_, ok := qs.sqsQueueByARNLocked(q.redrive.targetARN)
	return ok
}

// sqsTakeLocked receives one visible message: it is in flight for the
// visibility timeout under a new receipt handle.
func (qs *Queues) sqsTakeLocked(q *sqsQueue, m *sqsMessage, now time.Time, visibility time.Duration, in ReceiveMessageInput) ReceivedMessage {
	m.received++
	if m.received == 1 {
		m.firstReceive = now
	}
	m.receivedAt = now
	q.setVisibleAtLocked(m, now.Add(visibility))
	m.handle = qs.sqsReceiptHandleLocked(q, m)
	return q.view(m, in)
}

// sqsMoveAllLocked moves messages to the queue's dead-letter queue.
func (qs *Queues) sqsMoveAllLocked(q *sqsQueue, moved []*sqsMessage, now time.Time) {
	for _, m := range moved {
		dlq, _ := qs.sqsQueueByARNLocked(q.redrive.targetARN)
		qs.sqsMoveToDeadLetterLocked(q, dlq, m, now)
	}
}

// sqsMoveToDeadLetterLocked moves a message to a dead-letter queue as a fresh
// message with the same id, body and attributes. A standard queue keeps
// its enqueue time (retention counts from the original send); a FIFO queue
// restarts it, as SQS does.
func (qs *Queues) sqsMoveToDeadLetterLocked(src, dlq *sqsQueue, m *sqsMessage, now time.Time) {
	src.removeLocked(m)
	moved := *m
	moved.received, moved.firstReceive, moved.receivedAt, moved.handle = 0, time.Time{}, time.Time{}, ""
	moved.visibleAt = now
	moved.dlqSource = src.arn
	if dlq.fifo {
		moved.enqueued = now
		moved.seq = dlq.nextSeqLocked()
	}
	dlq.addLocked(&moved)
	dlq.notifyLocked()
	qs.dataLocked(eventlog.Event{Service: "sqs", Kind: EvDeadLettered, Resource: src.arn, Detail: "message moved to dead-letter queue " + src.name + " -> " + dlq.name + " " + m.id})
}

// view renders a message as received, with the requested attributes.
func (q *sqsQueue) view(m *sqsMessage, in ReceiveMessageInput) ReceivedMessage {
	all := slices.Contains(in.AttributeNames, sqsAttrAll)
	sys := map[string]string{}
	add := func(name, v string) {
		if v != "" && (all || slices.Contains(in.AttributeNames, name)) {
			sys[name] = v
		}
	}
	millis := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	add(sqsSysSenderID, m.senderID)
	add(sqsSysSent, millis(m.sent))
	add(sqsSysReceiveCount, strconv.Itoa(m.received))
	add(sqsSysFirstReceive, millis(m.firstReceive))
	add(sqsSysGroupID, m.groupID)
	if q.fifo {
		add(sqsSysDedupID, m.dedupID)
		add(sqsSysSequence, m.seq)
	}
	add(sqsSysTraceHeader, m.system[sqsSysTraceHeader].StringValue)
	add(sqsSysDLQSource, m.dlqSource)

	var attrs map[string]MessageAttribute
	for name, a := range m.attrs {
		if sqsWantAttribute(in.MessageAttributeNames, name) {
			if attrs == nil {
				attrs = map[string]MessageAttribute{}
			}
			attrs[name] = a
		}
	}
	return ReceivedMessage{
		MessageID: m.id, ReceiptHandle: m.handle, Body: m.body, MD5OfBody: m.md5Body,
		Attributes: sys, MessageAttributes: attrs, MD5OfMessageAttributes: sqsAttributesMD5(attrs),
	}
}

// sqsWantAttribute reports whether a message attribute was asked for: by
// name, by All or .*, or by a "prefix.*" pattern.
func sqsWantAttribute(patterns []string, name string) bool {
	for _, p := range patterns {
		switch {
		case p == sqsAttrAll || p == ".*" || p == name:
			return true
		case strings.HasSuffix(p, ".*") && strings.HasPrefix(name, strings.TrimSuffix(p, "*")):
			return true
		}
	}
	return false
}
