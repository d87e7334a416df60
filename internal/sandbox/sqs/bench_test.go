package sqs_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
)

// BenchmarkLongPollWake measures how long a long-polling receiver, parked
// in ReceiveMessage (WaitTimeSeconds 20) over real HTTP with the SDK,
// takes to get a message once it is sent: from the send's commit in the
// world to the receiver holding the decoded response. It reports the
// median and 99th percentile in milliseconds.
func BenchmarkLongPollWake(b *testing.B) {
	e := newEnv(b, sandbox.Config{})
	url := aws.String(e.createQueue(b, "q", nil))
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seq := lastSeq(e.w)
		got := make(chan time.Time, 1)
		go func() {
			out, err := e.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: url, WaitTimeSeconds: 20})
			if err != nil || len(out.Messages) != 1 {
				b.Errorf("receive: %v %v", out, err)
			} else if err := e.w.DeleteMessage("q", aws.ToString(out.Messages[0].ReceiptHandle)); err != nil {
				b.Error(err)
			}
			got <- time.Now()
		}()
		waitEvent(b, e.w, seq, "long poll waiting q")
		start := time.Now()
		if _, err := e.w.SendMessage("q", messaging.SendMessageInput{Body: "wake"}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-got).Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}
