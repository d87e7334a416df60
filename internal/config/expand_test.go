package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/config"
)

func TestEnvironmentExpansion(t *testing.T) {
	t.Setenv("LG_TEST_QUEUE", "https://sqs.us-east-1.amazonaws.com/123456789012/lifecycle")
	t.Setenv("LG_TEST_POLL", "3s")
	t.Setenv("LG_TEST_STAGE", "prod")
	doc := `source: sqs
sqs:
  queue_url: ${LG_TEST_QUEUE}
imds:
  poll_interval: ${LG_TEST_POLL}
terminate:
  steps:
    - name: drain
      command: [/bin/echo, "stage=${LG_TEST_STAGE}", "cost=$$5", "a $ b"]
      timeout: 5s
      env: {STAGE: "${LG_TEST_STAGE}-x"}
`
	a, err := config.ParseAgent([]byte(doc))
	if err != nil {
		t.Fatalf("ParseAgent: %v", err)
	}
	if got, want := a.SQS.QueueURL, "https://sqs.us-east-1.amazonaws.com/123456789012/lifecycle"; got != want {
		t.Errorf("queue_url = %q, want %q", got, want)
	}
	if got, want := time.Duration(a.IMDS.PollInterval), 3*time.Second; got != want {
		t.Errorf("poll_interval = %v, want %v", got, want)
	}
	if got, want := strings.Join(a.Terminate.Steps[0].Command, " "), "/bin/echo stage=prod cost=$5 a $ b"; got != want {
		t.Errorf("command = %q, want %q", got, want)
	}
	if got, want := a.Terminate.Steps[0].Env["STAGE"], "prod-x"; got != want {
		t.Errorf("env STAGE = %q, want %q", got, want)
	}
}

func TestEnvironmentExpansionErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
		line            int
	}{
		{"unset variable names itself and the field",
			"sqs:\n  queue_url: ${LG_TEST_SURELY_UNSET}\n",
			"sqs.queue_url: refers to the environment variable LG_TEST_SURELY_UNSET, which is not set; set LG_TEST_SURELY_UNSET in the agent's environment", 2},
		{"unclosed reference",
			"sqs:\n  queue_url: ${LG_TEST\n",
			`sqs.queue_url: has an unclosed variable reference "${LG_TEST"`, 2},
		{"bad name",
			"sqs:\n  queue_url: ${1X}\n",
			"sqs.queue_url: refers to ${1X}, which is not a variable name", 2},
		{"unset variable in an env map",
			"terminate:\n  steps:\n    - name: a\n      command: [/bin/true]\n      timeout: 5s\n      env: {A: \"${LG_TEST_SURELY_UNSET}\"}\n",
			"terminate.steps[0].env.A: refers to the environment variable LG_TEST_SURELY_UNSET", 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.ParseAgent([]byte(tt.doc))
			var fe *config.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseAgent error = %v, want a *config.FieldError", err)
			}
			if !strings.Contains(fe.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", fe, tt.want)
			}
			if fe.Line != tt.line {
				t.Errorf("line = %d, want %d", fe.Line, tt.line)
			}
		})
	}
}
