package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
)

// These tests are about one client-side race that a fast local server
// exposes and AWS, being farther away, rarely does. aws-sdk-go-v2 closes a
// request's body as soon as the response headers arrive; net/http's write
// loop, after sending Content-Length bytes, reads the body once more to
// find its end, and the SDK's closed body answers that read with io.EOF,
// which net/http takes for a write error: it closes the connection. A
// response the client has not yet read whole from the socket then fails
// with "use of closed network connection" on a 200, and the SDK retries it
// after a backoff of up to seconds. The sandbox compresses query-protocol
// responses for clients that accept gzip, as EC2 does, which brings them
// into the one read the transport makes with the headers.

// countRetries records every error the SDK retried.
type countRetries struct {
	aws.RetryerV2
	n     atomic.Int64
	mu    sync.Mutex
	first error
}

func (r *countRetries) GetRetryToken(ctx context.Context, opErr error) (func(error) error, error) {
	if r.n.Add(1) == 1 {
		r.mu.Lock()
		r.first = opErr
		r.mu.Unlock()
	}
	return r.RetryerV2.GetRetryToken(ctx, opErr)
}

func (r *countRetries) firstErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

// retryerStandard is the SDK's standard retryer with a short backoff, so
// that a retried call costs the test little time.
func retryerStandard() aws.RetryerV2 {
	return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = time.Millisecond })
}

// groupOf runs a sandbox with a group of n instances (no processes) for
// one test or benchmark and returns its endpoint.
func groupOf(tb testing.TB, n int32) string {
	tb.Helper()
	_, endpoint := start(tb, sandbox.Config{})
	c := asgClient(endpoint, 1)
	ctx := context.Background()
	if _, err := c.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{LaunchConfigurationName: aws.String("lc"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro")}); err != nil {
		tb.Fatal(err)
	}
	if _, err := c.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("g"), LaunchConfigurationName: aws.String("lc"), MinSize: aws.Int32(n), MaxSize: aws.Int32(n), AvailabilityZones: []string{"us-east-1a"}}); err != nil {
		tb.Fatal(err)
	}
	return endpoint
}

// plainConfig is how a third party configures the SDK against the
// sandbox: the SDK's own HTTP client (given here, with its transport
// options, so that tests can watch the connection), and a retryer that
// counts.
func plainConfig(endpoint string, hc aws.HTTPClient, rt *countRetries) aws.Config {
	return aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", ""),
		HTTPClient:  hc,
		Retryer:     func() aws.Retryer { return rt },
	}
}

// describeBoth reads the group and its instances once, checking that
// each answer holds all n instances.
func describeBoth(ctx context.Context, asg *autoscaling.Client, ec *ec2.Client, n int) error {
	g, err := asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"g"}})
	if err != nil {
		return err
	}
	if len(g.AutoScalingGroups) != 1 || len(g.AutoScalingGroups[0].Instances) != n {
		return errors.New("DescribeAutoScalingGroups: the group or its instances are missing")
	}
	in, err := ec.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		return err
	}
	got := 0
	for _, r := range in.Reservations {
		got += len(r.Instances)
	}
	if got != n {
		return errors.New("DescribeInstances: instances are missing")
	}
	return nil
}

// lateWriter forces, on every call, the interleaving that makes the SDK
// retry: it holds net/http's write loop right after it has sent a
// request's body, lets the response arrive and the SDK close the request
// body and start decoding, and only then lets the write loop make its last
// read of the body, fail and close the connection, before the decoder reads
// on. Calls must be made one at a time, with request bodies under 32 KiB
// (net/http sends those in one write after the headers).
type lateWriter struct {
	mu  sync.Mutex
	cur *lateCall
	// Broken counts the connections the write loop closed under a
	// response: the race happened.
	broken atomic.Int64
}

// lateCall is one request's passage through the write loop.
type lateCall struct {
	writes   int           // connection writes since the request's headers
	hold     chan struct{} // closed to let the held write return
	holdOnce sync.Once
	wrote    chan error // the write loop's result for the request
	conn     *lateConn  // the connection of the held write
}

func (c *lateCall) release() { c.holdOnce.Do(func() { close(c.hold) }) }

// client wraps the SDK's default HTTP client, dialling through lw.
func (lw *lateWriter) client() aws.HTTPClient {
	next := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		d := tr.DialContext
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &lateConn{Conn: c, lw: lw, closed: make(chan struct{})}, nil
		}
	})
	return lateClient{next: next, lw: lw}
}

type lateClient struct {
	next aws.HTTPClient
	lw   *lateWriter
}

func (c lateClient) Do(req *http.Request) (*http.Response, error) {
	call := &lateCall{hold: make(chan struct{}), wrote: make(chan error, 1)}
	c.lw.mu.Lock()
	c.lw.cur = call
	c.lw.mu.Unlock()
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteHeaders: func() {
			c.lw.mu.Lock()
			call.writes = 0
			c.lw.mu.Unlock()
		},
		WroteRequest: func(i httptrace.WroteRequestInfo) { call.wrote <- i.Err },
	})
	resp, err := c.next.Do(req.WithContext(ctx))
	if err != nil {
		call.release()
		return resp, err
	}
	resp.Body = &lateBody{ReadCloser: resp.Body, call: call, lw: c.lw}
	return resp, nil
}

// lateConn holds the write that ends a request's body (the second after
// its headers, which net/http flushes first for the SDK's bodies).
type lateConn struct {
	net.Conn
	lw        *lateWriter
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *lateConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.lw.mu.Lock()
	call := c.lw.cur
	var hold chan struct{}
	if call != nil {
		call.writes++
		if call.writes == 2 {
			call.conn, hold = c, call.hold
		}
	}
	c.lw.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return n, err
}

func (c *lateConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// lateBody lets the held write go on the decoder's first read, and waits
// until the write loop has finished with the request (and, if it failed,
// closed the connection) before reading.
type lateBody struct {
	io.ReadCloser
	call *lateCall
	lw   *lateWriter
	once sync.Once
}

func (b *lateBody) settle() {
	b.once.Do(func() {
		b.call.release()
		if err := <-b.call.wrote; err != nil {
			b.lw.mu.Lock()
			conn := b.call.conn
			b.lw.mu.Unlock()
			if conn != nil {
				<-conn.closed
				b.lw.broken.Add(1)
			}
		}
	})
}

func (b *lateBody) Read(p []byte) (int, error) {
	b.settle()
	return b.ReadCloser.Read(p)
}

func (b *lateBody) Close() error {
	b.settle()
	return b.ReadCloser.Close()
}

// TestQueryResponsesSurviveTheClientsEarlyClose: plain SDK clients reading
// a 25-instance group and its instances, with the write loop forced to
// fail under every response, see every call succeed at its first attempt.
func TestQueryResponsesSurviveTheClientsEarlyClose(t *testing.T) {
	const n, calls = 25, 20
	endpoint := groupOf(t, n)
	lw := &lateWriter{}
	rt := &countRetries{RetryerV2: retryerStandard()}
	cfg := plainConfig(endpoint, lw.client(), rt)
	asg, ec := autoscaling.NewFromConfig(cfg), ec2.NewFromConfig(cfg)
	for i := range calls {
		if err := describeBoth(t.Context(), asg, ec, n); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if lw.broken.Load() == 0 {
		t.Fatal("the write loop never closed a connection under a response: the test no longer makes the race it guards against")
	}
	if k := rt.n.Load(); k > 0 {
		t.Errorf("%d of %d calls were retried; first: %v", k, 2*calls, rt.firstErr())
	}
}

// TestUncompressedResponsesMeetTheClientsEarlyClose is the control: a
// client that declines gzip (as net/http's DisableCompression does) gets
// the same answers whole, larger than the transport's first read, and the
// forced race makes the SDK retry them. Only the client can close that
// (internal/awscloud's OwnRequestBodies does).
func TestUncompressedResponsesMeetTheClientsEarlyClose(t *testing.T) {
	const n = 25
	endpoint := groupOf(t, n)
	lw := &lateWriter{}
	hc := lw.client().(lateClient)
	hc.next = hc.next.(*awshttp.BuildableClient).WithTransportOptions(func(tr *http.Transport) { tr.DisableCompression = true })
	rt := &countRetries{RetryerV2: retryerStandard()}
	cfg := plainConfig(endpoint, hc, rt)
	_ = describeBoth(t.Context(), autoscaling.NewFromConfig(cfg), ec2.NewFromConfig(cfg), n)
	if rt.n.Load() == 0 {
		t.Fatal("no call was retried: uncompressed answers no longer meet the race, or the test no longer makes it")
	}
	t.Logf("%d retries; first: %v", rt.n.Load(), rt.firstErr())
}

// BenchmarkQueryCallRetries makes 10,000 query-protocol calls with plain
// SDK clients against a 25-instance group, as a third party would, from one
// goroutine and from four, and reports how many the SDK retried and how
// many times the client's write loop lost the race described above
// (races): half read the group, a quarter read the instances, a quarter
// record a heartbeat for an action that does not exist (an error answer).
// "gzip" is the SDK's default client; "identity" declines compression and
// so sees the answers as the sandbox sent them before it compressed. It
// fails if a gzip call is retried.
//
//	go test -run='^$' -bench=QueryCallRetries -benchtime=1x ./internal/sandbox/
func BenchmarkQueryCallRetries(b *testing.B) {
	for _, workers := range []int{1, 4} {
		for _, enc := range []string{"gzip", "identity"} {
			b.Run(fmt.Sprintf("goroutines=%d/%s", workers, enc), func(b *testing.B) {
				benchQueryCalls(b, workers, enc == "gzip")
			})
		}
	}
}

func benchQueryCalls(b *testing.B, workers int, gzip bool) {
	const n, calls = 25, 10000
	endpoint := groupOf(b, n)
	var races atomic.Int64
	rt := &countRetries{RetryerV2: retryerStandard()}
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.DisableCompression = !gzip })
	cfg := plainConfig(endpoint, raceCounter{next: hc, races: &races}, rt)
	asg, ec := autoscaling.NewFromConfig(cfg), ec2.NewFromConfig(cfg)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := next.Add(1); i <= calls; i = next.Add(1) {
					var err error
					switch i % 4 {
					case 0, 1:
						var out *autoscaling.DescribeAutoScalingGroupsOutput
						out, err = asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"g"}})
						if err == nil && len(out.AutoScalingGroups[0].Instances) != n {
							b.Errorf("DescribeAutoScalingGroups: %d instances, want %d", len(out.AutoScalingGroups[0].Instances), n)
						}
					case 2:
						_, err = ec.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
					case 3:
						_, err = asg.RecordLifecycleActionHeartbeat(ctx, &autoscaling.RecordLifecycleActionHeartbeatInput{AutoScalingGroupName: aws.String("g"), LifecycleHookName: aws.String("none"), LifecycleActionToken: aws.String("00000000-0000-4000-8000-000000000000")})
						if apiCode(err) == "ValidationError" {
							err = nil
						}
					}
					if err != nil {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if f := failed.Load(); f > 0 {
			b.Logf("%d calls failed; first retried error: %v", f, rt.firstErr())
		}
	}
	b.ReportMetric(float64(rt.n.Load())/float64(b.N), "retries/10k-calls")
	b.ReportMetric(float64(races.Load())/float64(b.N), "races/10k-calls")
	b.Logf("%d calls, %d retried, %d lost races in the write loop", calls*b.N, rt.n.Load(), races.Load())
	if gzip && rt.n.Load() > 0 {
		b.Errorf("%d retries; first: %v", rt.n.Load(), rt.firstErr())
	}
}

// raceCounter counts the requests whose write loop failed after the
// response had begun: the race the SDK's retries come from.
type raceCounter struct {
	next  aws.HTTPClient
	races *atomic.Int64
}

func (c raceCounter) Do(req *http.Request) (*http.Response, error) {
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err != nil {
				c.races.Add(1)
			}
		},
	})
	return c.next.Do(req.WithContext(ctx))
}
