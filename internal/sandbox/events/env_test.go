package events_test

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sandboxtest"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a sandbox whose EventBridge endpoint the real SDK drives.
type env struct {
	w      *messaging.Buses
	clock  *simclock.Sim
	client *eventbridge.Client
	url    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	sb := sandboxtest.Start(t, sandbox.Config{RelaxLimits: true})
	e := &env{w: sb.Messaging.Buses(), clock: sb.Clock, url: sb.Endpoint}
	e.client = eventbridge.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(sb.Endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:       sb.HTTP,
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
