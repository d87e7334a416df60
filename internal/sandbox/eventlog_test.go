package sandbox_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// getLines reads an admin endpoint's JSON lines as events.
func getLines(t *testing.T, url string) []eventlog.Event {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	var out []eventlog.Event
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e eventlog.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMessageTrafficNeverEvictsLifecycleHistory is the regression test for
// SQS traffic flooding the event log: after 100,000 messages sent,
// received and deleted, the log still holds every group and lifecycle
// event, the default stream carries no message traffic, the traffic is
// counted per kind, and a reader asking for data older than the data
// stream holds is told so by a gap marker.
func TestMessageTrafficNeverEvictsLifecycleHistory(t *testing.T) {
	const messages = 100_000
	srv, endpoint := start(t, sandbox.Config{RelaxLimits: true})
	w, q := srv.World(), srv.Messaging().Queues()
	ctx := t.Context()

	// Lifecycle history: a group of two whose launch hook notifies a queue.
	if err := q.CreateQueue(messaging.CreateQueueInput{Name: "lifecycle"}); err != nil {
		t.Fatal(err)
	}
	if err := q.CreateQueue(messaging.CreateQueueInput{Name: "traffic"}); err != nil {
		t.Fatal(err)
	}
	if err := w.CreateLaunchConfiguration(world.LaunchConfiguration{Name: "lc", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro"}); err != nil {
		t.Fatal(err)
	}
	zero, two := 0, 2
	if err := w.CreateAutoScalingGroup(world.CreateGroupInput{
		Name: "g", LaunchConfiguration: "lc", MinSize: &zero, MaxSize: &two, Desired: &two, AvailabilityZones: []string{"us-east-1a"},
		Hooks: []world.Hook{{Name: "ready", Transition: world.TransitionLaunching, HeartbeatTimeout: 300, DefaultResult: world.ResultAbandon,
			NotificationTargetARN: "arn:aws:sqs:us-east-1:123456789012:lifecycle", RoleARN: "arn:aws:iam::123456789012:role/r"}},
	}); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var seq int64
	for inService := 0; inService < 2; {
		evs, err := w.EventsAfter(wait, seq)
		if err != nil {
			t.Fatalf("waiting for the group to be in service: %v", err)
		}
		for _, e := range evs {
			seq = e.Seq
			switch {
			case e.Kind == world.EvActionStarted:
				if err := w.CompleteLifecycleAction(world.ActionRef{Group: "g", Hook: e.Hook, Token: e.Token}, world.ResultContinue); err != nil {
					t.Fatal(err)
				}
			case e.Kind == world.EvInstanceState && e.State == world.StateInService:
				inService++
			}
		}
	}
	history := srv.Events().Events(eventlog.Control)

	// Traffic: 100,000 messages sent, received and deleted.
	ten := 10
	for i := 0; i < messages; i += 10 {
		batch := make([]messaging.SendMessageBatchEntry, 10)
		for j := range batch {
			batch[j] = messaging.SendMessageBatchEntry{ID: strconv.Itoa(j), SendMessageInput: messaging.SendMessageInput{Body: fmt.Sprint(i + j)}}
		}
		if _, err := q.SendMessageBatch("traffic", batch); err != nil {
			t.Fatal(err)
		}
		got, err := q.ReceiveMessage(ctx, "traffic", messaging.ReceiveMessageInput{MaxNumberOfMessages: &ten, WaitTimeSeconds: &zero})
		if err != nil {
			t.Fatal(err)
		}
		del := make([]messaging.ReceiptEntry, len(got))
		for j, m := range got {
			del[j] = messaging.ReceiptEntry{ID: strconv.Itoa(j), ReceiptHandle: m.ReceiptHandle}
		}
		if len(del) > 0 {
			if _, err := q.DeleteMessageBatch("traffic", del); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("every group and lifecycle event is still there", func(t *testing.T) {
		got := getLines(t, endpoint+"/_sandbox/events")
		bySeq := map[int64]eventlog.Event{}
		for _, e := range got {
			bySeq[e.Seq] = e
			if e.Data || e.Kind == messaging.EvMessageSent || e.Kind == messaging.EvMessageDeleted {
				t.Fatalf("the default stream carries traffic: %+v", e)
			}
		}
		kinds := map[string]int{}
		for _, h := range history {
			e, ok := bySeq[h.Seq]
			if !ok || e.Kind != h.Kind || e.Instance != h.Instance {
				t.Fatalf("event %d (%s %s) is gone from the log after %d messages", h.Seq, h.Kind, h.Instance, messages)
			}
			kinds[h.Kind]++
		}
		for _, k := range []string{world.EvGroupCreated, world.EvInstanceLaunched, world.EvActionStarted, world.EvActionCompleted, world.EvNotification} {
			if kinds[k] == 0 {
				t.Errorf("history has no %s event: %v", k, kinds)
			}
		}
	})
	t.Run("traffic is counted per kind", func(t *testing.T) {
		resp, err := http.Get(endpoint + "/_sandbox/events/stats")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st eventlog.Stats
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		sent, deleted := st.Data.Counts[messaging.EvMessageSent], st.Data.Counts[messaging.EvMessageDeleted]
		if sent < messages || deleted != messages || st.Data.Dropped == 0 || st.Control.Dropped != 0 {
			t.Errorf("stats %+v: want %d sent (and the lifecycle notifications), %d deleted, data dropped, no control dropped", st, messages, messages)
		}
	})
	t.Run("asking for data older than the stream holds yields a gap marker", func(t *testing.T) {
		got := getLines(t, endpoint+"/_sandbox/events?after=0&data=1")
		var gaps []eventlog.Event
		seqs := map[int64]bool{}
		for i, e := range got {
			if i > 0 && e.Seq <= got[i-1].Seq {
				t.Fatalf("line %d has seq %d after %d: not in sequence order", i, e.Seq, got[i-1].Seq)
			}
			seqs[e.Seq] = true
			if e.Kind == eventlog.KindGap {
				gaps = append(gaps, e)
			}
		}
		if len(gaps) != 1 || gaps[0].Attrs["stream"] != "data" || gaps[0].Attrs["dropped"] == "" || gaps[0].Attrs["dropped"] == "0" {
			t.Fatalf("gap markers %+v, want one for the data stream saying how many were dropped", gaps)
		}
		for _, h := range history {
			if !seqs[h.Seq] {
				t.Errorf("with data=1 the lifecycle event %d (%s) is missing", h.Seq, h.Kind)
			}
		}
	})
}
