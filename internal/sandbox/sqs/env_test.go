package sqs_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sandboxtest"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitBound bounds every wait for the sandbox: it answers in
// microseconds, and long polls here wait up to 20 s, so a wait that reaches
// the bound is a bug, not a slow machine.
const waitBound = 10 * time.Second

// env is a sandbox whose SQS endpoint the real SDK drives.
type env struct {
	w      *messaging.Queues
	clock  *simclock.Sim
	client *awssqs.Client
	url    string
	http   *http.Client
}

func newEnv(t testing.TB, cfg sandbox.Config) *env {
	t.Helper()
	sb := sandboxtest.Start(t, cfg)
	e := &env{w: sb.Messaging.Queues(), clock: sb.Clock, url: sb.Endpoint, http: sb.HTTP}
	e.client = awssqs.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(sb.Endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:       sb.HTTP,
		RetryMaxAttempts: 1,
	})
	return e
}

// createQueue creates a queue through the SDK and returns its URL.
func (e *env) createQueue(t testing.TB, name string, attrs map[string]string) string {
	t.Helper()
	out, err := e.client.CreateQueue(context.Background(), &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

// apiError returns an SDK error's code and message.
func apiError(t *testing.T, err error) (string, string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want an API error", err)
	}
	return ae.ErrorCode(), ae.ErrorMessage()
}

// post sends a raw request and returns the status, headers and body.
func (e *env) post(t *testing.T, path string, header http.Header, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// query posts an awsquery form as AWS CLI 2.9 does.
func (e *env) query(t *testing.T, form string) (int, string) {
	t.Helper()
	status, _, body := e.post(t, "/", http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}}, form)
	return status, body
}

// jsonCall posts an awsJson1_0 request as the Go SDK does.
func (e *env) jsonCall(t *testing.T, op, body string) (int, http.Header, string) {
	t.Helper()
	return e.post(t, "/", http.Header{
		"Content-Type":      {"application/x-amz-json-1.0"},
		"X-Amz-Target":      {"AmazonSQS." + op},
		"X-Amzn-Query-Mode": {"true"},
	}, body)
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}
