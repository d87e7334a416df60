package messaging_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// fifoModel is a FIFO queue as a plain list in send order, received from
// by walking the whole list: the definition the queue's indexed store must
// agree with, operation by operation.
type fifoModel struct {
	msgs      []*fifoModelMsg
	dedup     map[string]fifoModelDedup
	retention time.Duration
	maxRecv   int // redrive policy's maxReceiveCount
	moved     int // messages moved to the dead-letter queue
}

type fifoModelMsg struct {
	id, body, group string
	enqueued        time.Time
	visibleAt       time.Time
	received        int
	handle          string
}

type fifoModelDedup struct {
	id      string
	expires time.Time
}

func (m *fifoModel) expire(now time.Time) {
	m.msgs = slices.DeleteFunc(m.msgs, func(x *fifoModelMsg) bool { return now.Sub(x.enqueued) >= m.retention })
	for k, d := range m.dedup {
		if !now.Before(d.expires) {
			delete(m.dedup, k)
		}
	}
}

// receive returns the messages a receive takes, in order: walking the
// queue, a group with a message in flight gives nothing, and a message
// not visible holds back the rest of its group. It also returns the
// messages moved to the dead-letter queue instead.
func (m *fifoModel) receive(now time.Time, max int) (take, moved []*fifoModelMsg) {
	blocked := map[string]bool{}
	for _, x := range m.msgs {
		if x.received > 0 && x.visibleAt.After(now) {
			blocked[x.group] = true
		}
	}
	for _, x := range m.msgs {
		if x.visibleAt.After(now) {
			blocked[x.group] = true
			continue
		}
		if len(take) == max {
			break
		}
		if blocked[x.group] {
			continue
		}
		if x.received >= m.maxRecv {
			moved = append(moved, x)
			continue
		}
		take = append(take, x)
	}
	return take, moved
}

func (m *fifoModel) remove(x *fifoModelMsg) {
	m.msgs = slices.DeleteFunc(m.msgs, func(y *fifoModelMsg) bool { return y == x })
}

func (m *fifoModel) counts(now time.Time) string {
	var visible, inFlight, delayed int
	for _, x := range m.msgs {
		switch {
		case !x.visibleAt.After(now):
			visible++
		case x.received > 0:
			inFlight++
		default:
			delayed++
		}
	}
	return fmt.Sprintf("%d/%d/%d", visible, inFlight, delayed)
}

// TestSQSFifoAgreesWithItsDefinition drives a FIFO queue (and the model
// above) through thousands of random sends (duplicates included),
// receives (some with visibility 0), deletes (some with stale handles),
// visibility changes, delay changes, retention expiry and dead-letter
// moves, comparing every result: messages received and their order, ids
// of duplicates, errors and counts.
func TestSQSFifoAgreesWithItsDefinition(t *testing.T) {
	for _, scope := range []string{"queue", "messageGroup"} {
		t.Run(scope, func(t *testing.T) {
			f := sqsNewFixture(t, world.Config{Seed: 7})
			f.create(t, "dlq.fifo", map[string]string{"FifoQueue": "true"})
			f.create(t, "q.fifo", map[string]string{
				"FifoQueue": "true", "DeduplicationScope": scope, "MessageRetentionPeriod": "600",
				"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq.fifo","maxReceiveCount":3}`,
			})
			model := &fifoModel{dedup: map[string]fifoModelDedup{}, retention: 600 * time.Second, maxRecv: 3}
			byID := map[string]*fifoModelMsg{}
			var handles []string // every handle ever issued, stale ones too
			rng := rand.New(rand.NewPCG(1, uint64(len(scope))))
			groups := []string{"a", "b", "c", "d", "e"}
			for step := range 4000 {
				now := f.clock.Now()
				switch op := rng.IntN(100); {
				case op < 40: // send
					g := groups[rng.IntN(len(groups))]
					dedup := fmt.Sprint("d", rng.IntN(400))
					body := fmt.Sprint("m", step)
					sent := f.send(t, "q.fifo", messaging.SendMessageInput{Body: body, GroupID: g, DedupID: dedup})
					model.expire(now)
					key := dedup
					if scope == "messageGroup" {
						key = g + "/" + dedup
					}
					if d, ok := model.dedup[key]; ok {
						if sent.MessageID != d.id {
							t.Fatalf("step %d: duplicate %s got id %s, want %s", step, key, sent.MessageID, d.id)
						}
						continue
					}
					x := &fifoModelMsg{id: sent.MessageID, body: body, group: g, enqueued: now, visibleAt: now.Add(f.delay(t))}
					model.msgs = append(model.msgs, x)
					model.dedup[key] = fifoModelDedup{id: sent.MessageID, expires: now.Add(5 * time.Minute)}
					byID[x.id] = x
				case op < 70: // receive
					max, vis := 1+rng.IntN(10), rng.IntN(3)*30
					got := f.receive(t, "q.fifo", max, sqsInt(vis))
					model.expire(now)
					take, moved := model.receive(now, max)
					var want []string
					for _, x := range take {
						want = append(want, x.body)
					}
					if g, w := strings.Join(sqsBodies(got), ","), strings.Join(want, ","); g != w {
						t.Fatalf("step %d: received [%s], want [%s]", step, g, w)
					}
					for _, x := range moved {
						model.remove(x)
						model.moved++
					}
					for _, r := range got {
						x := byID[r.MessageID]
						x.received++
						x.visibleAt = now.Add(time.Duration(vis) * time.Second)
						x.handle = r.ReceiptHandle
						handles = append(handles, r.ReceiptHandle)
					}
				case op < 85 && len(handles) > 0: // delete
					h := handles[rng.IntN(len(handles))]
					if err := f.w.DeleteMessage("q.fifo", h); err != nil {
						t.Fatalf("step %d: delete: %v", step, err)
					}
					for _, x := range model.msgs {
						if x.handle == h {
							model.remove(x)
							break
						}
					}
				case op < 92 && len(handles) > 0: // change visibility
					h := handles[rng.IntN(len(handles))]
					vis := rng.IntN(2) * 40
					err := f.w.ChangeMessageVisibility("q.fifo", h, vis)
					model.expire(now)
					want := "AWS.SimpleQueueService.MessageNotInflight"
					for _, x := range model.msgs {
						if x.handle == h && x.received > 0 && x.visibleAt.After(now) {
							want = ""
							x.visibleAt = now.Add(time.Duration(vis) * time.Second)
						}
					}
					if got := sqsCode(err); got != want {
						t.Fatalf("step %d: change visibility: %q, want %q", step, got, want)
					}
				case op < 94: // a new queue delay: held-back messages may precede visible ones
					delay := fmt.Sprint(rng.IntN(2) * 20)
					if err := f.w.SetQueueAttributes("q.fifo", map[string]string{"DelaySeconds": delay}); err != nil {
						t.Fatal(err)
					}
				default:
					f.clock.Advance(time.Duration(rng.IntN(30)) * time.Second)
				}
				if step%50 == 0 {
					now := f.clock.Now()
					got := f.counts(t, "q.fifo")
					model.expire(now)
					if want := model.counts(now); got != want {
						t.Fatalf("step %d: counts %s, want %s", step, got, want)
					}
				}
			}
			if model.moved == 0 || len(handles) < 500 {
				t.Errorf("the walk moved %d messages to the dead-letter queue and received %d: too few to mean much", model.moved, len(handles))
			}
			a, err := f.w.GetQueueAttributes("dlq.fifo", []string{"ApproximateNumberOfMessages"})
			if err != nil || a["ApproximateNumberOfMessages"] != fmt.Sprint(model.moved) {
				t.Errorf("dead-letter queue holds %v (%v), want %d", a, err, model.moved)
			}
		})
	}
}

// delay returns the FIFO queue's current DelaySeconds.
func (f *sqsFixture) delay(t *testing.T) time.Duration {
	t.Helper()
	a, err := f.w.GetQueueAttributes("q.fifo", []string{"DelaySeconds"})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(a["DelaySeconds"], &n)
	return time.Duration(n) * time.Second
}

// TestSQSFifoReceiveRequestAttemptId retries FIFO receives with their
// ReceiveRequestAttemptId: the same messages and handles come back, with
// their visibility timeout restarted, until one of them is changed or
// five minutes have passed; then the id starts a new receive.
func TestSQSFifoReceiveRequestAttemptId(t *testing.T) {
	f := sqsNewFixture(t, world.Config{})
	f.create(t, "q.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true", "VisibilityTimeout": "30"})
	for _, b := range []string{"a1", "a2", "b1"} {
		f.send(t, "q.fifo", messaging.SendMessageInput{Body: b, GroupID: b[:1]})
	}
	receive := func(attempt string) []messaging.ReceivedMessage {
		t.Helper()
		msgs, err := f.w.ReceiveMessage(t.Context(), "q.fifo", messaging.ReceiveMessageInput{
			MaxNumberOfMessages: sqsInt(10), WaitTimeSeconds: sqsInt(0), AttributeNames: []string{"All"}, AttemptID: attempt,
		})
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	handles := func(ms []messaging.ReceivedMessage) string {
		var hs []string
		for _, m := range ms {
			hs = append(hs, m.Body+"="+m.ReceiptHandle+"#"+m.Attributes["ApproximateReceiveCount"])
		}
		return strings.Join(hs, ",")
	}

	first := receive("x")
	if strings.Join(sqsBodies(first), ",") != "a1,a2,b1" {
		t.Fatalf("first receive %v", sqsBodies(first))
	}
	if got := receive("other"); len(got) != 0 {
		t.Fatalf("another attempt id received %v while every group is in flight", sqsBodies(got))
	}
	f.clock.Advance(20 * time.Second)
	if got := receive("x"); handles(got) != handles(first) {
		t.Fatalf("retry got %s, want the same messages and handles %s", handles(got), handles(first))
	}
	// The retry at 20 s restarted the 30 s timeout: still in flight at 40 s.
	f.clock.Advance(20 * time.Second)
	if got := f.counts(t, "q.fifo"); got != "0/3/0" {
		t.Fatalf("counts at 40 s = %s, want the 3 in flight", got)
	}

	// Changing one message's visibility ends the retries: the id now
	// receives anew (nothing: a and b are in flight).
	if err := f.w.ChangeMessageVisibility("q.fifo", first[2].ReceiptHandle, 100); err != nil {
		t.Fatal(err)
	}
	if got := receive("x"); len(got) != 0 {
		t.Fatalf("retry after a visibility change got %s, want a new, empty receive", handles(got))
	}
	if err := f.w.DeleteMessage("q.fifo", first[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}

	// Five minutes after a receive its id is forgotten.
	f.clock.Advance(30 * time.Second) // a2 visible again, b1 still in flight
	y := receive("y")
	if strings.Join(sqsBodies(y), ",") != "a2" || y[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("receive y got %s", handles(y))
	}
	f.clock.Advance(4*time.Minute + 59*time.Second)
	if got := receive("y"); handles(got) != handles(y) {
		t.Fatalf("retry at 4:59 got %s, want %s", handles(got), handles(y))
	}
	f.clock.Advance(2 * time.Second)
	// A new receive: a2 is in flight (the retry at 4:59 restarted its
	// timeout), b1 visible again since its 100 s ran out.
	if got := receive("y"); strings.Join(sqsBodies(got), ",") != "b1" || got[0].ReceiptHandle == first[2].ReceiptHandle {
		t.Fatalf("retry at 5:01 got %s, want b1 received anew", handles(got))
	}

	_, err := f.w.ReceiveMessage(t.Context(), "q.fifo", messaging.ReceiveMessageInput{AttemptID: "no spaces"})
	if got := sqsCode(err); got != "InvalidParameterValue" {
		t.Errorf("attempt id with a space: %q", got)
	}
}
