package lifecycle_test

import (
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	instanceID = "i-0123456789abcdef0"
	token      = "71514b9d-6a40-4b26-8523-05e7ee35fa40"
)

// newAction returns a terminate action seen now, for a hook with the given
// heartbeat timeout.
func newAction(heartbeatTimeout time.Duration) lifecycle.Action {
	return lifecycle.Action{
		InstanceID: instanceID,
		Group:      "web",
		Hook: lifecycle.Hook{
			Name:             "drain",
			Transition:       lifecycle.TransitionTerminating,
			HeartbeatTimeout: heartbeatTimeout,
			DefaultResult:    lifecycle.Abandon,
		},
		Token:  token,
		Seen:   time.Now(),
		Reason: lifecycle.ReasonLifecycleHook,
	}
}

// step returns a step with default policies.
func step(name string) lifecycle.Step {
	return lifecycle.Step{Name: name, Argv: []string{"/usr/local/bin/" + name}}
}

// closed returns an already closed channel: the action is confirmed.
func closed() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func openJournal(t *testing.T) *lifecycle.Journal {
	t.Helper()
	j, err := lifecycle.OpenJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func newExecutor(t *testing.T, j *lifecycle.Journal, c lifecycle.Completer, r lifecycle.StepRunner) *lifecycle.Executor {
	return &lifecycle.Executor{
		Completer: c,
		Steps:     r,
		Journal:   j,
		Log:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// load returns the journal record of key k, failing the test if there is
// none.
func load(t *testing.T, j *lifecycle.Journal, k lifecycle.Key) lifecycle.Record {
	t.Helper()
	rec, ok, err := j.Load(k)
	if err != nil || !ok {
		t.Fatalf("Load(%v) = ok %v, err %v; want the record", k, ok, err)
	}
	return rec
}

// offsets returns when each call happened, relative to start.
func offsets(start time.Time, calls []lifecycletest.Call) []time.Duration {
	var out []time.Duration
	for _, c := range calls {
		out = append(out, c.At.Sub(start))
	}
	return out
}
