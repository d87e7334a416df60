package events_test

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/events"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is one world behind one EventBridge endpoint, driven by the real SDK.
type env struct {
	w      *messaging.Buses
	clock  *simclock.Sim
	client *eventbridge.Client
	url    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{clock: simclock.NewSim()}
	e.w = messaging.New(messaging.Config{RelaxLimits: true}, e.clock, nil, nil).Buses()
	srv := httptest.NewServer(events.New(e.w))
	// Cleanups run last-in first-out: the server goes, then the world.
	t.Cleanup(e.w.Close)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	e.client = eventbridge.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:       srv.Client(),
		RetryMaxAttempts: 1,
	})
	return e
}

// wantAPIError checks that err is an API error with the code and, unless
// msg is empty, the message.
func wantAPIError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v, want API error %s", err, code)
	}
	if ae.ErrorCode() != code || (msg != "" && ae.ErrorMessage() != msg) {
		t.Errorf("error %s: %q\nwant  %s: %q", ae.ErrorCode(), ae.ErrorMessage(), code, msg)
	}
}
