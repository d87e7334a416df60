package eventlog_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newLog(control, data int) *eventlog.Log {
	return eventlog.New(eventlog.Config{ControlLimit: control, DataLimit: data}, simclock.NewSim(), nil)
}

func TestDataTrafficNeverEvictsControlHistory(t *testing.T) {
	l := newLog(100, 100)
	l.Append(eventlog.Event{Kind: "group-created", Group: "g"})
	for range 10_000 {
		l.AppendData(eventlog.Event{Service: "sqs", Kind: "sqs-message-sent"})
	}
	l.Append(eventlog.Event{Kind: "instance-launched", Group: "g", Instance: "i-1"})
	got := l.Since(0, eventlog.Control)
	if len(got) != 2 || got[0].Kind != "group-created" || got[1].Kind != "instance-launched" || got[1].Seq != 10_002 {
		t.Fatalf("control stream %+v, want both events, seq 1 and 10002", got)
	}
	st := l.Stats()
	if st.Data.Counts["sqs-message-sent"] != 10_000 || st.Data.Held > 100 || st.Data.Dropped == 0 || st.Control.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestGapMarker(t *testing.T) {
	l := newLog(8, 8)
	for range 20 {
		l.Append(eventlog.Event{Kind: "k"})
	}
	held := l.Events(eventlog.Control)
	first := held[0].Seq
	t.Run("a reader older than the buffer gets a gap first", func(t *testing.T) {
		got := l.Since(0, eventlog.Control)
		g := got[0]
		if g.Kind != eventlog.KindGap || g.Seq != first-1 || g.Attrs["dropped"] != strconv.Itoa(20-len(held)) || g.Attrs["exact"] != "true" || g.Attrs["stream"] != "control" {
			t.Fatalf("first event %+v, want a gap of %d ending at seq %d", g, 20-len(held), first-1)
		}
		if len(got) != len(held)+1 || got[1].Seq != first {
			t.Errorf("after the gap %d events from seq %d, want %d from %d", len(got)-1, got[1].Seq, len(held), first)
		}
	})
	t.Run("a reader inside the dropped range is told at most how many", func(t *testing.T) {
		got := l.Since(3, eventlog.Control)
		if g := got[0]; g.Kind != eventlog.KindGap || g.Attrs["exact"] != "false" || !strings.Contains(g.Detail, "up to") {
			t.Fatalf("first event %+v, want an inexact gap", g)
		}
	})
	t.Run("a reader within the buffer gets no gap", func(t *testing.T) {
		got := l.Since(first, eventlog.Control)
		if len(got) != len(held)-1 || got[0].Kind == eventlog.KindGap {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("continuing after the gap's seq gets no second gap", func(t *testing.T) {
		got := l.Since(first-1, eventlog.Control)
		if len(got) != len(held) || got[0].Kind == eventlog.KindGap {
			t.Errorf("got %+v", got)
		}
	})
}

func TestStreamsMergeInSequence(t *testing.T) {
	l := newLog(100, 100)
	l.Append(eventlog.Event{Kind: "a"})
	l.AppendData(eventlog.Event{Kind: "b"})
	l.Append(eventlog.Event{Kind: "c"})
	l.AppendData(eventlog.Event{Kind: "d"})
	var kinds []string
	for _, e := range l.Since(0, eventlog.All) {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ""); got != "abcd" {
		t.Errorf("all streams %q, want abcd", got)
	}
	if got := l.Since(0, eventlog.Data); len(got) != 2 || !got[0].Data || got[0].Kind != "b" {
		t.Errorf("data stream %+v", got)
	}
}

func TestWaitWakesOnItsStreamOnly(t *testing.T) {
	l := newLog(100, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan []eventlog.Event, 1)
	go func() {
		evs, _ := l.Wait(ctx, 0, eventlog.Control)
		got <- evs
	}()
	l.AppendData(eventlog.Event{Kind: "data"})
	l.Append(eventlog.Event{Kind: "control"})
	evs := <-got
	if len(evs) != 1 || evs[0].Kind != "control" {
		t.Errorf("waiting for control got %+v", evs)
	}
	short, stop := context.WithCancel(context.Background())
	stop()
	if _, err := l.Wait(short, 2, eventlog.All); err == nil {
		t.Error("waiting on an ended context with nothing new returned no error")
	}
}

// The JSON keys of lifecycle events are those the log has always printed.
func TestJSONShape(t *testing.T) {
	l := newLog(10, 10)
	e := l.Append(eventlog.Event{Service: "autoscaling", Kind: "action-started", Group: "g", Instance: "i-1", Hook: "h", Token: "t", Result: "CONTINUE", State: "Pending:Wait", Detail: "d"})
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"seq":1`, `"time":`, `"kind":"action-started"`, `"group":"g"`, `"instance":"i-1"`, `"state":"Pending:Wait"`, `"hook":"h"`, `"token":"t"`, `"result":"CONTINUE"`, `"detail":"d"`, `"service":"autoscaling"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("%s lacks %s", b, key)
		}
	}
	if strings.Contains(string(b), `"data"`) {
		t.Errorf("%s marks a control event as data", b)
	}
}

// TestHeldWindowAcrossBlocks: whatever the limit, against block sizes or
// not, the log holds what a plain list evicting its oldest quarter at the
// limit holds, and Since starts at the first event after the one asked.
func TestHeldWindowAcrossBlocks(t *testing.T) {
	for _, limit := range []int{4, 7, 512, 600, 2051} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			l := newLog(limit, limit)
			var want []int64 // the sequence numbers a plain list holds
			for i := range 5*limit + 3 {
				if len(want) >= limit {
					want = want[limit/4:]
				}
				want = append(want, l.Append(eventlog.Event{Kind: "k"}).Seq)
				if i%97 != 0 && i != 5*limit+2 {
					continue
				}
				held := l.Events(eventlog.Control)
				if len(held) != len(want) || held[0].Seq != want[0] || held[len(held)-1].Seq != want[len(want)-1] {
					t.Fatalf("after %d appends: %d events held, seq %d..%d; want %d, %d..%d", i+1, len(held), held[0].Seq, held[len(held)-1].Seq, len(want), want[0], want[len(want)-1])
				}
				for j, e := range held {
					if e.Seq != want[j] {
						t.Fatalf("after %d appends: event %d has seq %d, want %d", i+1, j, e.Seq, want[j])
					}
				}
				if st := l.Stats().Control; st.Held != len(want) || st.FirstHeld != want[0] {
					t.Fatalf("after %d appends: stats hold %d from %d, want %d from %d", i+1, st.Held, st.FirstHeld, len(want), want[0])
				}
				mid := want[len(want)/2]
				if got := l.Since(mid, eventlog.Control); len(got) != len(want)-len(want)/2-1 || len(got) > 0 && got[0].Seq != mid+1 {
					t.Fatalf("after %d appends: Since(%d) gave %d events, want %d from %d", i+1, mid, len(got), len(want)-len(want)/2-1, mid+1)
				}
			}
		})
	}
}

// BenchmarkAppend appends to a log at its default limits, which keeps
// evicting its oldest quarter once full.
func BenchmarkAppend(b *testing.B) {
	l := eventlog.New(eventlog.Config{}, simclock.NewSim(), nil)
	e := eventlog.Event{Kind: "instance-state", Group: "g", Instance: "i-0123456789abcdef0", State: "InService"}
	b.ReportAllocs()
	for b.Loop() {
		l.Append(e)
	}
}
