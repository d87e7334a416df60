package messaging_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// BenchmarkSQSDepth measures SendMessage, ReceiveMessage and DeleteMessage
// on a standard queue holding 1,000 and 100,000 messages. Each iteration
// sends one message, receives one, deletes it and reads the queue's
// counts (GetQueueAttributes), so the depth stays put; the p99 of each operation is reported (ns). The cost of one message
// should not depend on how many others wait with it, so the p99s of the
// two depths should be within 2× of each other.
//
//	go test -run='^$' -bench=SQSDepth -benchtime=20000x ./internal/sandbox/messaging/
func BenchmarkSQSDepth(b *testing.B) {
	for _, depth := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			broker := messaging.New(messaging.Config{Seed: 1}, simclock.NewSim(), nil, nil)
			defer broker.Close()
			qs := broker.Queues()
			if err := qs.CreateQueue(messaging.CreateQueueInput{Name: "q"}); err != nil {
				b.Fatal(err)
			}
			fill := time.Now()
			for i := range depth {
				if _, err := qs.SendMessage("q", messaging.SendMessageInput{Body: fmt.Sprint("m", i)}); err != nil {
					b.Fatal(err)
				}
			}
			b.Logf("filled %d in %v", depth, time.Since(fill))
			var send, recv, del, attrs []time.Duration
			in := messaging.ReceiveMessageInput{VisibilityTimeout: new(60)}
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				if _, err := qs.SendMessage("q", messaging.SendMessageInput{Body: fmt.Sprint("n", i)}); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				got, err := qs.ReceiveMessage(context.Background(), "q", in)
				if err != nil || len(got) != 1 {
					b.Fatalf("receive: %v, %d messages", err, len(got))
				}
				t2 := time.Now()
				if err := qs.DeleteMessage("q", got[0].ReceiptHandle); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				if _, err := qs.GetQueueAttributes("q", []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}); err != nil {
					b.Fatal(err)
				}
				t4 := time.Now()
				send, recv, del = append(send, t1.Sub(t0)), append(recv, t2.Sub(t1)), append(del, t3.Sub(t2))
				attrs = append(attrs, t4.Sub(t3))
			}
			b.StopTimer()
			b.ReportMetric(p99(send), "send-p99-ns")
			b.ReportMetric(p99(recv), "receive-p99-ns")
			b.ReportMetric(p99(del), "delete-p99-ns")
			b.ReportMetric(p99(attrs), "attributes-p99-ns")
		})
	}
}

// BenchmarkSQSFifoDepth is BenchmarkSQSDepth for a FIFO queue: the
// messages are spread over 100 message groups, each sent with its own
// deduplication id (so the deduplication window holds every one of them),
// and each iteration sends one message, receives one (the oldest of the
// groups with nothing in flight) and deletes it. The p99s at 1,000 and
// 100,000 messages should be within 2× of each other.
//
//	go test -run='^$' -bench=SQSFifoDepth -benchtime=20000x ./internal/sandbox/messaging/
func BenchmarkSQSFifoDepth(b *testing.B) {
	const groups = 100
	for _, depth := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			broker := messaging.New(messaging.Config{Seed: 1}, simclock.NewSim(), nil, nil)
			defer broker.Close()
			qs := broker.Queues()
			if err := qs.CreateQueue(messaging.CreateQueueInput{Name: "q.fifo", Attributes: map[string]string{"FifoQueue": "true"}}); err != nil {
				b.Fatal(err)
			}
			send := func(i int) {
				in := messaging.SendMessageInput{Body: fmt.Sprint("m", i), GroupID: fmt.Sprint("g", i%groups), DedupID: fmt.Sprint("d", i)}
				if _, err := qs.SendMessage("q.fifo", in); err != nil {
					b.Fatal(err)
				}
			}
			fill := time.Now()
			for i := range depth {
				send(i)
			}
			b.Logf("filled %d in %v", depth, time.Since(fill))
			var sends, recv, del []time.Duration
			in := messaging.ReceiveMessageInput{VisibilityTimeout: new(60)}
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				send(depth + i)
				t1 := time.Now()
				got, err := qs.ReceiveMessage(context.Background(), "q.fifo", in)
				if err != nil || len(got) != 1 {
					b.Fatalf("receive: %v, %d messages", err, len(got))
				}
				t2 := time.Now()
				if err := qs.DeleteMessage("q.fifo", got[0].ReceiptHandle); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				sends, recv, del = append(sends, t1.Sub(t0)), append(recv, t2.Sub(t1)), append(del, t3.Sub(t2))
			}
			b.StopTimer()
			b.ReportMetric(p99(sends), "send-p99-ns")
			b.ReportMetric(p99(recv), "receive-p99-ns")
			b.ReportMetric(p99(del), "delete-p99-ns")
		})
	}
}

func p99(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)*99/100])
}
