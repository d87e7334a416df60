package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

func TestMain(m *testing.M) {
	proc.Main() // the sandbox's instances re-execute this binary as their supervisor
	goleak.VerifyTestMain(m)
}

// TestStormQuick runs the storm small (40 instances, 20 terminated) in
// both modes: every notification arrives once and every action is
// completed, or the run fails. Its figures are not checked.
func TestStormQuick(t *testing.T) {
	rows, err := Storm.Run(context.Background(), Env{Dir: t.TempDir(), Quick: true, Progress: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 19 {
		t.Errorf("%d rows, want 9 without processes and 10 with them", len(rows))
	}
	for _, r := range rows {
		t.Logf("%-60s %8.2f %-2s %s", r.Figure, r.Value, r.Unit, r.Detail)
	}
}

// BenchmarkStorm runs the full storm (1,000 instances, 500 terminated at
// once through a lifecycle hook) without and with processes, and reports
// every row as a metric.
//
//	go test -run='^$' -bench=Storm -benchtime=1x ./internal/bench/
func BenchmarkStorm(b *testing.B) {
	for range b.N {
		rows, err := Storm.Run(context.Background(), Env{Dir: b.TempDir(), Progress: b.Logf})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rows {
			met := ""
			if !r.Met() {
				met = " (goal missed)"
			}
			b.Logf("%-60s %9.2f %-2s %s%s", r.Figure, r.Value, r.Unit, r.Detail, met)
		}
	}
}

// TestStormCountsRetries: a call answered 500 once and then 200 is one
// call and one retry; a call answered at once is one call and no retry.
func TestStormCountsRetries(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{"QueueUrls":[]}`))
	}))
	defer srv.Close()
	r := &stormRun{}
	c := sqs.NewFromConfig(aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
		APIOptions: []func(*middleware.Stack) error{r.countAttempts},
	})
	for range 2 {
		if _, err := c.ListQueues(context.Background(), &sqs.ListQueuesInput{}); err != nil {
			t.Fatal(err)
		}
	}
	if calls, retries := r.calls.Load(), r.retries.Load(); calls != 2 || retries != 1 {
		t.Errorf("%d calls, %d retries; want 2 calls, 1 retry", calls, retries)
	}
}
