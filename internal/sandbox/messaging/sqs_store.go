package messaging

import (
	"container/heap"
	"time"
)

// This file keeps a queue's messages so that sending, receiving and
// deleting one message costs the same whatever the queue's depth:
//
//   - byID finds a message from its id (a receipt handle names it);
//   - ages orders every message by enqueue time, so expiry pops only the
//     messages whose retention is over;
//   - waiting holds the messages that are not visible (delayed or in
//     flight) by the instant they become visible;
//   - in a standard queue, ready holds the visible messages in no order
//     (a receive picks among them at random in O(1));
//   - a FIFO queue keeps each message group's messages in send order
//     (a linked list), counts the group's messages in flight, and keeps
//     the groups that can deliver (nothing in flight, first message
//     visible) in heads, ordered by their first message's send order, so
//     a receive starts from the group whose next message is oldest;
//   - a FIFO queue's deduplication ids expire in the order they were
//     recorded (dedupOrder), the window being the same for all.
//
// A message's state is still a function of the clock: waiting messages
// whose instant has passed become visible when the queue is next received
// from or counted (promoteLocked); the counts are then the sizes of byID
// and waiting, and how many of waiting were received (waitingRcv).

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

// sqsGroup is one message group of a FIFO queue.
type sqsGroup struct {
	id          string
	first, last *sqsMessage // its messages in send order (prev, next)
	inFlight    int         // of them, how many are waiting after a receive
	headIdx     int         // position in the queue's heads, -1 if not there
	// receiving is set while a receive takes from the group: the receive
	// puts it back in heads (or not) when it is done.
	receiving bool
}

// groupHeap orders the FIFO groups that can deliver by their first
// message's send order.
type groupHeap []*sqsGroup

func (h groupHeap) Len() int           { return len(h) }
func (h groupHeap) Less(i, j int) bool { return h[i].first.order < h[j].first.order }
func (h groupHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].headIdx, h[j].headIdx = i, j
}

func (h *groupHeap) Push(x any) {
	g := x.(*sqsGroup)
	g.headIdx = len(*h)
	*h = append(*h, g)
}

func (h *groupHeap) Pop() any {
	old := *h
	g := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	g.headIdx = -1
	return g
}

// sqsDedupExpiry is one deduplication record's key and expiry, in the
// order they were recorded.
type sqsDedupExpiry struct {
	key     string
	expires time.Time
}

// resetStoreLocked empties the queue's messages (deduplication records
// stay).
func (q *sqsQueue) resetStoreLocked() {
	q.byID = map[string]*sqsMessage{}
	q.ready = nil
	q.waiting = msgHeap{}
	q.waitingRcv = 0
	q.ages = msgHeap{age: true}
	q.groups = map[string]*sqsGroup{}
	q.heads = nil
}

// addLocked enqueues a message (its visibleAt already set, its sequence
// number too in a FIFO queue). Every message starts out waiting and
// becomes visible at the next receive, as its delay allows.
func (q *sqsQueue) addLocked(m *sqsMessage) {
	m.readyIdx, m.waitIdx, m.ageIdx = -1, -1, -1
	m.prev, m.next, m.group = nil, nil, nil
	q.added++
	m.order = q.added
	q.byID[m.id] = m
	heap.Push(&q.ages, m)
	if q.fifo {
		g := q.groups[m.groupID]
		if g == nil {
			g = &sqsGroup{id: m.groupID, headIdx: -1}
			q.groups[m.groupID] = g
		}
		m.group = g
		if g.last == nil {
			g.first = m
		} else {
			g.last.next, m.prev = m, g.last
		}
		g.last = m
	}
	q.waitLocked(m)
}

// removeLocked drops a message from its queue.
func (q *sqsQueue) removeLocked(m *sqsMessage) {
	delete(q.byID, m.id)
	if m.ageIdx >= 0 {
		heap.Remove(&q.ages, m.ageIdx)
	}
	q.unreadyLocked(m)
	q.unwaitLocked(m)
	g := m.group
	if g == nil {
		return
	}
	if m.prev != nil {
		m.prev.next = m.next
	} else {
		g.first = m.next
	}
	if m.next != nil {
		m.next.prev = m.prev
	} else {
		g.last = m.prev
	}
	m.prev, m.next, m.group = nil, nil, nil
	if g.first == nil {
		if g.headIdx >= 0 {
			heap.Remove(&q.heads, g.headIdx)
		}
		if q.groups[g.id] == g {
			delete(q.groups, g.id)
		}
		return
	}
	q.fixGroupLocked(g)
}

// waitLocked puts a message that is not in waiting there.
func (q *sqsQueue) waitLocked(m *sqsMessage) {
	heap.Push(&q.waiting, m)
	if m.received > 0 {
		q.waitingRcv++
	}
	if g := m.group; g != nil {
		if m.received > 0 {
			g.inFlight++
		}
		q.fixGroupLocked(g)
	}
}

// unwaitLocked takes a message out of waiting (if it is there).
func (q *sqsQueue) unwaitLocked(m *sqsMessage) {
	if m.waitIdx < 0 {
		return
	}
	heap.Remove(&q.waiting, m.waitIdx)
	q.waitedLocked(m)
}

// waitedLocked accounts for a message that has left waiting.
func (q *sqsQueue) waitedLocked(m *sqsMessage) {
	if m.received > 0 {
		q.waitingRcv--
	}
	g := m.group
	if g == nil {
		return
	}
	if m.received > 0 {
		g.inFlight--
	}
	q.fixGroupLocked(g)
}

// fixGroupLocked puts a FIFO group in heads, or takes it out, as it can
// deliver or not, and re-orders it there when its first message changed.
func (q *sqsQueue) fixGroupLocked(g *sqsGroup) {
	if g.receiving {
		return
	}
	can := g.inFlight == 0 && g.first != nil && g.first.waitIdx < 0
	switch {
	case can && g.headIdx < 0:
		heap.Push(&q.heads, g)
	case can:
		heap.Fix(&q.heads, g.headIdx)
	case g.headIdx >= 0:
		heap.Remove(&q.heads, g.headIdx)
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
	if m.waitIdx >= 0 {
		heap.Fix(&q.waiting, m.waitIdx)
		return
	}
	q.unreadyLocked(m)
	q.waitLocked(m)
}

// promoteLocked makes the waiting messages visible at now visible: in
// ready for a standard queue, and in a FIFO queue by releasing their
// group.
func (q *sqsQueue) promoteLocked(now time.Time) {
	for len(q.waiting.ms) > 0 && !q.waiting.ms[0].visibleAt.After(now) {
		m := heap.Pop(&q.waiting).(*sqsMessage)
		q.waitedLocked(m)
		if q.fifo {
			continue
		}
		m.readyIdx = len(q.ready)
		q.ready = append(q.ready, m)
	}
}

// nextVisibleLocked returns the earliest instant a waiting message
// becomes visible (zero if none waits).
func (q *sqsQueue) nextVisibleLocked() time.Time {
	if len(q.waiting.ms) == 0 {
		return time.Time{}
	}
	return q.waiting.ms[0].visibleAt
}

// expireLocked drops the messages whose retention period is over and the
// FIFO deduplication records whose window is.
func (q *sqsQueue) expireLocked(now time.Time) {
	retention := q.seconds(sqsAttrRetention)
	for len(q.ages.ms) > 0 && now.Sub(q.ages.ms[0].enqueued) >= retention {
		q.removeLocked(q.ages.ms[0])
	}
	for len(q.dedupOrder) > 0 && !now.Before(q.dedupOrder[0].expires) {
		key := q.dedupOrder[0].key
		q.dedupOrder[0] = sqsDedupExpiry{}
		q.dedupOrder = q.dedupOrder[1:]
		// A record sent again since has a later expiry and stays.
		if d, ok := q.dedup[key]; ok && !now.Before(d.expires) {
			delete(q.dedup, key)
		}
	}
	for len(q.attemptOrder) > 0 && !now.Before(q.attemptOrder[0].expires) {
		// An attempt id recorded again since expires later.
		if a, ok := q.attempts[q.attemptOrder[0].key]; ok && !now.Before(a.expires) {
			delete(q.attempts, q.attemptOrder[0].key)
		}
		q.attemptOrder[0] = sqsDedupExpiry{}
		q.attemptOrder = q.attemptOrder[1:]
	}
}

// recordDedupLocked remembers a FIFO message for its deduplication window.
func (q *sqsQueue) recordDedupLocked(key string, d sqsDedup) {
	q.dedup[key] = d
	q.dedupOrder = append(q.dedupOrder, sqsDedupExpiry{key: key, expires: d.expires})
}
