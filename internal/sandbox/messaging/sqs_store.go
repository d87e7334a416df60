package messaging

import (
	"container/heap"
	"slices"
	"time"
)

// This file keeps a queue's messages so that sending, receiving and
// deleting one message costs the same whatever the queue's depth:
//
//   - byID finds a message from its id (a receipt handle names it);
//   - ages orders every message by enqueue time, so expiry pops only the
//     messages whose retention is over;
//   - in a standard queue, ready holds the visible messages in no order
//     (a receive picks among them at random in O(1)) and waiting the
//     others (delayed or in flight) by the instant they become visible;
//   - a FIFO queue keeps msgs in send order instead, as its receives
//     must.
//
// A message's state is still a function of the clock: waiting messages
// whose instant has passed move to ready when the queue is next received
// from (promoteLocked), and counts are computed from visibleAt.

// msgHeap is a min-heap of messages by enqueue time (age) or by visibleAt,
// each message recording its position for removal and re-ordering.
type msgHeap struct {
	ms  []*sqsMessage
	age bool // by enqueued, else by visibleAt
}

func (h *msgHeap) idx(m *sqsMessage) *int {
	if h.age {
		return &m.ageIdx
	}
	return &m.waitIdx
}

func (h *msgHeap) Len() int { return len(h.ms) }

func (h *msgHeap) Less(i, j int) bool {
	if h.age {
		return h.ms[i].enqueued.Before(h.ms[j].enqueued)
	}
	return h.ms[i].visibleAt.Before(h.ms[j].visibleAt)
}

func (h *msgHeap) Swap(i, j int) {
	h.ms[i], h.ms[j] = h.ms[j], h.ms[i]
	*h.idx(h.ms[i]), *h.idx(h.ms[j]) = i, j
}

func (h *msgHeap) Push(x any) {
	m := x.(*sqsMessage)
	*h.idx(m) = len(h.ms)
	h.ms = append(h.ms, m)
}

func (h *msgHeap) Pop() any {
	m := h.ms[len(h.ms)-1]
	h.ms[len(h.ms)-1] = nil
	h.ms = h.ms[:len(h.ms)-1]
	*h.idx(m) = -1
	return m
}

// resetStoreLocked empties the queue's messages.
func (q *sqsQueue) resetStoreLocked() {
	q.byID = map[string]*sqsMessage{}
	q.msgs = nil
	q.ready = nil
	q.waiting = msgHeap{}
	q.ages = msgHeap{age: true}
}

// addLocked enqueues a message (its visibleAt already set).
func (q *sqsQueue) addLocked(m *sqsMessage) {
	m.readyIdx, m.waitIdx, m.ageIdx = -1, -1, -1
	q.byID[m.id] = m
	heap.Push(&q.ages, m)
	if q.fifo {
		q.msgs = append(q.msgs, m)
		return
	}
	heap.Push(&q.waiting, m)
}

// removeLocked drops a message from its queue.
func (q *sqsQueue) removeLocked(m *sqsMessage) {
	delete(q.byID, m.id)
	if m.ageIdx >= 0 {
		heap.Remove(&q.ages, m.ageIdx)
	}
	if q.fifo {
		if i := slices.Index(q.msgs, m); i >= 0 {
			q.msgs = slices.Delete(q.msgs, i, i+1)
		}
		return
	}
	q.unreadyLocked(m)
	if m.waitIdx >= 0 {
		heap.Remove(&q.waiting, m.waitIdx)
	}
}

// unreadyLocked takes a message out of ready (if it is there).
func (q *sqsQueue) unreadyLocked(m *sqsMessage) {
	i := m.readyIdx
	if i < 0 {
		return
	}
	last := len(q.ready) - 1
	q.ready[i] = q.ready[last]
	q.ready[i].readyIdx = i
	q.ready[last] = nil
	q.ready = q.ready[:last]
	m.readyIdx = -1
}

// setVisibleAtLocked changes when a message is next visible.
func (q *sqsQueue) setVisibleAtLocked(m *sqsMessage, at time.Time) {
	m.visibleAt = at
	if q.fifo {
		return
	}
	if m.waitIdx >= 0 {
		heap.Fix(&q.waiting, m.waitIdx)
		return
	}
	q.unreadyLocked(m)
	heap.Push(&q.waiting, m)
}

// promoteLocked moves the waiting messages visible at now to ready.
func (q *sqsQueue) promoteLocked(now time.Time) {
	for len(q.waiting.ms) > 0 && !q.waiting.ms[0].visibleAt.After(now) {
		m := heap.Pop(&q.waiting).(*sqsMessage)
		m.readyIdx = len(q.ready)
		q.ready = append(q.ready, m)
	}
}

// nextVisibleLocked returns the earliest instant a waiting message of a
// standard queue becomes visible (zero if none waits).
func (q *sqsQueue) nextVisibleLocked() time.Time {
	if len(q.waiting.ms) == 0 {
		return time.Time{}
	}
	return q.waiting.ms[0].visibleAt
}

// expireLocked drops the messages whose retention period is over.
func (q *sqsQueue) expireLocked(now time.Time) {
	retention := q.seconds(sqsAttrRetention)
	for len(q.ages.ms) > 0 && now.Sub(q.ages.ms[0].enqueued) >= retention {
		q.removeLocked(q.ages.ms[0])
	}
}
