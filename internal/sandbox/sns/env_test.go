package sns_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sandboxtest"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitBound bounds every wait for a delivery. Deliveries take
// milliseconds; the bound only turns a bug into a failure instead of a hang.
const waitBound = 10 * time.Second

// env is a sandbox whose SNS endpoint the real SDK drives.
type env struct {
	w      *world.World // Auto Scaling, wired to m
	m      *messaging.Broker
	clock  *simclock.Sim
	client *awssns.Client
	url    string
	http   *http.Client
	seq    int64 // last event seen by waitEvent
}

func newEnv(t *testing.T) *env {
	t.Helper()
	sb := sandboxtest.Start(t, sandbox.Config{RelaxLimits: true})
	e := &env{w: sb.World, m: sb.Messaging, clock: sb.Clock, url: sb.Endpoint, http: sb.HTTP}
	e.client = awssns.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(sb.Endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:       sb.HTTP,
		RetryMaxAttempts: 1,
	})
	return e
}

func (e *env) createTopic(t *testing.T, name string, attrs map[string]string) string {
	t.Helper()
	out, err := e.client.CreateTopic(t.Context(), &awssns.CreateTopicInput{Name: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("CreateTopic %s: %v", name, err)
	}
	return aws.ToString(out.TopicArn)
}

// createQueue creates an SQS queue in the world and returns its ARN.
func (e *env) createQueue(t *testing.T, name string, attrs map[string]string) string {
	t.Helper()
	if err := e.m.Queues().CreateQueue(messaging.CreateQueueInput{Name: name, Attributes: attrs}); err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	return "arn:aws:sqs:us-east-1:123456789012:" + name
}

// receive takes every message waiting on a queue.
func (e *env) receive(t *testing.T, queue string) []messaging.ReceivedMessage {
	t.Helper()
	ten := 10
	msgs, err := e.m.Queues().ReceiveMessage(t.Context(), queue, messaging.ReceiveMessageInput{MaxNumberOfMessages: &ten, MessageAttributeNames: []string{"All"}})
	if err != nil {
		t.Fatalf("ReceiveMessage %s: %v", queue, err)
	}
	return msgs
}

// apiCode returns the AWS error code of err, "" when it is not an API error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, what string, err error, code, msgPart string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("%s: got %v, want %s", what, err, code)
	}
	if ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), msgPart) {
		t.Errorf("%s: got %s %q, want %s containing %q", what, ae.ErrorCode(), ae.ErrorMessage(), code, msgPart)
	}
}

// post is one request a subscriber received.
type post struct {
	header http.Header
	body   string
}

// subscriber is an HTTP endpoint that records what SNS posts to it and,
// when confirm is set, confirms subscriptions by GETting their SubscribeURL.
type subscriber struct {
	url   string
	posts chan post

	mu     sync.Mutex
	status int // answer; 200 when zero
}

func newSubscriber(t *testing.T, confirm bool) *subscriber {
	t.Helper()
	s := &subscriber{posts: make(chan post, 32)}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p := post{header: r.Header.Clone(), body: string(b)}
		if confirm && r.Header.Get("x-amz-sns-message-type") == "SubscriptionConfirmation" {
			if err := getSubscribeURL(r.Context(), client, p.body); err != nil {
				t.Errorf("confirming: %v", err)
			}
		}
		s.posts <- p
		s.mu.Lock()
		status := s.status
		s.mu.Unlock()
		if status != 0 {
			rw.WriteHeader(status)
		}
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/hook"
	return s
}

func (s *subscriber) answer(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

// next waits for the next post.
func (s *subscriber) next(t *testing.T) post {
	t.Helper()
	select {
	case p := <-s.posts:
		return p
	case <-time.After(waitBound):
		t.Fatal("no POST reached the subscriber")
	}
	return post{}
}

// none checks that nothing more was posted by the time the world is idle.
func (s *subscriber) none(t *testing.T) {
	t.Helper()
	select {
	case p := <-s.posts:
		t.Errorf("unexpected POST %s: %s", p.header.Get("x-amz-sns-message-type"), p.body)
	default:
	}
}

func getSubscribeURL(ctx context.Context, client *http.Client, body string) error {
	i := strings.Index(body, `"SubscribeURL" : "`)
	if i < 0 {
		return errors.New("no SubscribeURL in " + body)
	}
	rest := body[i+len(`"SubscribeURL" : "`):]
	u, err := strconv.Unquote(`"` + rest[:strings.IndexByte(rest, '"')] + `"`)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "<ConfirmSubscriptionResult><SubscriptionArn>") {
		return errors.New("GET SubscribeURL: " + resp.Status + ": " + string(b))
	}
	return nil
}
