package messaging_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// TestSQSStandardQueueStates walks a standard queue's messages through
// every state the queue keeps them in (delayed, visible, in flight, back
// to visible, expired, deleted) with messages sent at different times, so
// that each one's place follows its own clock and not its send order.
func TestSQSStandardQueueStates(t *testing.T) {
	f := sqsNewFixture(t, world.Config{Seed: 3})
	f.create(t, "q", map[string]string{"MessageRetentionPeriod": "100"})
	for i := range 20 {
		f.send(t, "q", messaging.SendMessageInput{Body: fmt.Sprint("old", i)})
	}
	f.clock.Advance(40 * time.Second)
	for i := range 20 {
		f.send(t, "q", messaging.SendMessageInput{Body: fmt.Sprint("new", i), DelaySeconds: sqsInt(i % 2 * 30)})
	}
	if got := f.counts(t, "q"); got != "30/0/10" {
		t.Fatalf("counts = %s, want 30 visible and 10 delayed", got)
	}

	// Receiving everything visible returns each message once, in an order
	// that is not the send order.
	var got []string
	for {
		batch := f.receive(t, "q", 10, sqsInt(50))
		if len(batch) == 0 {
			break
		}
		got = append(got, sqsBodies(batch)...)
	}
	if len(got) != 30 || len(uniq(got)) != 30 {
		t.Fatalf("received %d messages (%d distinct), want the 30 visible once each", len(got), len(uniq(got)))
	}
	if slices.IsSorted(got) || strings.HasPrefix(strings.Join(got, ","), "old0,old1,old2,old3") {
		t.Errorf("received in send order %v, want a random order", got)
	}
	if got := f.counts(t, "q"); got != "0/30/10" {
		t.Errorf("counts = %s, want 30 in flight and 10 delayed", got)
	}

	// The delays end: only the 10 delayed are visible.
	f.clock.Advance(30 * time.Second)
	late := f.receive(t, "q", 10, sqsInt(0))
	if len(late) != 10 {
		t.Fatalf("after the delay received %d, want 10", len(late))
	}
	// Visibility 0: they are visible again at once, the in-flight ones not.
	if got := f.counts(t, "q"); got != "10/30/0" {
		t.Errorf("counts = %s, want 10 visible, 30 in flight", got)
	}
	// Delete one of them; handing another one back with a longer timeout
	// needs the latest handle, so receive it again first.
	if err := f.w.DeleteMessage("q", late[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	again := f.receive(t, "q", 1, sqsInt(5))
	if err := f.w.ChangeMessageVisibility("q", again[0].ReceiptHandle, 200); err != nil {
		t.Fatal(err)
	}
	if got := f.counts(t, "q"); got != "8/31/0" {
		t.Errorf("counts = %s, want 8 visible, 31 in flight", got)
	}

	// At 100 s from the first sends, the 20 old messages expire (all in
	// flight); the new ones stay.
	f.clock.Advance(30 * time.Second) // t = 100
	if got := f.counts(t, "q"); got != "18/1/0" {
		t.Errorf("after the old messages' retention: counts = %s, want 18 visible, 1 in flight", got)
	}
	for _, m := range f.receive(t, "q", 10, nil) {
		if strings.HasPrefix(m.Body, "old") {
			t.Errorf("received expired message %s", m.Body)
		}
	}
	f.clock.Advance(40 * time.Second) // t = 140: every message is gone
	if got := f.counts(t, "q"); got != "0/0/0" {
		t.Errorf("after every retention: counts = %s", got)
	}
	if got := f.receive(t, "q", 10, nil); len(got) != 0 {
		t.Errorf("received %v from an expired queue", sqsBodies(got))
	}
}

func uniq(s []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(s)))
}
