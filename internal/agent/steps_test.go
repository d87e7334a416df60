package agent_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

var stepKey = lifecycle.Key{Instance: instanceID, Transition: lifecycle.TransitionTerminating, Hook: "drain"}

func TestStepRunner(t *testing.T) {
	dir := t.TempDir()
	runner := agent.NewStepRunner(dir, testLogger(t))
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	id := lifecycle.StepID{Key: stepKey, Action: "ACTION1", Step: "flush"}
	s := lifecycle.Step{Name: "flush", Argv: []string{"sh", "-c", `echo "flushing $LIFEGUARD_HOOK"; exit 3`}}

	t.Run("unknown step is not adoptable", func(t *testing.T) {
		h, ok, err := runner.Adopt(ctx, id)
		if h != nil || ok || err != nil {
			t.Errorf("Adopt = %v, %v, %v; want nil, false, nil", h, ok, err)
		}
	})
	t.Run("started step reports its exit code", func(t *testing.T) {
		h, err := runner.Start(ctx, id, s, []string{"LIFEGUARD_HOOK=drain"})
		if err != nil {
			t.Fatal(err)
		}
		if out, err := h.Wait(ctx); err != nil || out != (lifecycle.StepOutcome{ExitCode: 3}) {
			t.Errorf("Wait = %+v, %v; want exit code 3", out, err)
		}
		log, err := os.ReadFile(filepath.Join(dir, "steps", stepKey.String(), "ACTION1", "flush", "1", "output.log"))
		if err != nil || string(log) != "flushing drain\n" {
			t.Errorf("output.log = %q, %v; want the step's output in steps/<key>/<action>/<step>/1", log, err)
		}
	})
	t.Run("ended step is adopted with its outcome", func(t *testing.T) {
		h, ok, err := runner.Adopt(ctx, id)
		if !ok || err != nil {
			t.Fatalf("Adopt = %v, %v; want the step", ok, err)
		}
		if out, err := h.Wait(ctx); err != nil || out.ExitCode != 3 {
			t.Errorf("Wait = %+v, %v; want exit code 3", out, err)
		}
	})
	t.Run("a step started again runs in a new directory", func(t *testing.T) {
		h, err := runner.Start(ctx, id, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := h.Wait(ctx); err != nil || out.ExitCode != 3 {
			t.Errorf("Wait = %+v, %v; want exit code 3", out, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "steps", stepKey.String(), "ACTION1", "flush", "2", "status.json")); err != nil {
			t.Errorf("second run: %v", err)
		}
	})
	t.Run("a step that times out says so", func(t *testing.T) {
		slow := lifecycle.Step{Name: "slow", Argv: []string{"sleep", "30"}, Timeout: 100 * time.Millisecond}
		h, err := runner.Start(ctx, lifecycle.StepID{Key: stepKey, Action: "ACTION1", Step: "slow"}, slow, nil)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := h.Wait(ctx); err != nil || !out.TimedOut || out.ExitCode == 0 {
			t.Errorf("Wait = %+v, %v; want timed out with a non-zero exit code", out, err)
		}
	})
	t.Run("odd step names stay inside the directory", func(t *testing.T) {
		odd := lifecycle.StepID{Key: stepKey, Action: "..", Step: "../../x y"}
		h, err := runner.Start(ctx, odd, lifecycle.Step{Name: odd.Step, Argv: []string{"true"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		matches, _ := filepath.Glob(filepath.Join(dir, "steps", stepKey.String(), "*", "*", "1", "status.json"))
		if len(matches) != 3 { // flush, slow, and the odd one
			t.Errorf("run directories %q, want 3 under steps/<key>/", matches)
		}
	})
}

// TestTerminateWithJobs runs the terminate plan through real supervisors:
// the step sees its LIFEGUARD_* variables and its own, on top of the
// agent's environment.
func TestTerminateWithJobs(t *testing.T) {
	cfg := newConfig(t)
	cfg.IMDS.PollInterval = config.Duration(time.Second)
	out := filepath.Join(t.TempDir(), "out")
	cfg.Terminate.Steps = []config.Step{{
		Name:        "record",
		Command:     []string{"sh", "-c", `echo "$LIFEGUARD_REASON $LIFEGUARD_HOOK $LIFEGUARD_GROUP $FOO ${PATH:+path}" > "$OUT"`},
		Timeout:     config.Duration(waitLimit),
		Env:         map[string]string{"FOO": "bar", "OUT": out},
		OnFailure:   config.FailureAbandon,
		OnInterrupt: config.InterruptRerun,
	}}
	asg := &fakeGroup{t: t, state: "Terminating:Wait", hooks: []lifecycle.Hook{terminateHook("drain", time.Hour)}}
	aws := okCompleter(t)
	a := newAgent(t, cfg, agent.Deps{Metadata: &fakeMetadata{target: "Terminated"}, Group: asg, Completer: aws})
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	if err := a.Run(ctx); err != nil || ctx.Err() != nil {
		t.Fatalf("Run = %v (context: %v); want nil once the action is completed", err, ctx.Err())
	}
	got, err := os.ReadFile(out)
	if err != nil || strings.TrimSpace(string(got)) != "lifecycle-hook drain web bar path" {
		t.Errorf("step wrote %q, %v; want the reason, hook, group, its own variable and the agent's PATH", got, err)
	}
	if c := aws.Completions(); len(c) != 1 || c[0].Result != lifecycle.Continue {
		t.Errorf("completions %+v, want one CONTINUE", c)
	}
}

func TestNew(t *testing.T) {
	deps := agent.Deps{Metadata: &fakeMetadata{}, Group: &fakeGroup{t: t}, Completer: noCalls(t)}
	for _, c := range []struct {
		name string
		edit func(*config.Agent, *agent.Deps)
		want string // in the error; "" = no error
	}{
		{"defaults are fine", func(*config.Agent, *agent.Deps) {}, ""},
		{"sqs source needs an inbox", func(c *config.Agent, _ *agent.Deps) {
			c.Source = config.SourceSQS
			c.SQS.QueueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/lifecycle"
		}, "source sqs needs deps.Inbox"},
		{"invalid config is refused", func(c *config.Agent, _ *agent.Deps) { c.Launch.ConsecutivePasses = 0 }, "launch.consecutive_passes"},
		{"missing deps are refused", func(_ *config.Agent, d *agent.Deps) { d.Group = nil }, "Metadata, Group and Completer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, d := newConfig(t), deps
			c.edit(&cfg, &d)
			_, err := agent.New(cfg, d, nil)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("New = %v, want no error", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("New = %v, want an error about %q", err, c.want)
			}
		})
	}

	t.Run("Run twice is an error", func(t *testing.T) {
		a, err := agent.New(newConfig(t), deps, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := a.Run(ctx); err != nil {
			t.Errorf("first Run = %v, want nil on a cancelled context", err)
		}
		if err := a.Run(t.Context()); err == nil {
			t.Errorf("second Run = nil, want an error")
		}
	})
}

// TestStepOutputIsStreamed runs a step through a real supervisor that
// writes a line and then waits: the line is in the agent's log while the
// step still runs, one record a line, and so is the last one, written
// without a newline, once it ends.
func TestStepOutputIsStreamed(t *testing.T) {
	cfg := newConfig(t)
	cfg.IMDS.PollInterval = config.Duration(time.Second)
	proceed := filepath.Join(t.TempDir(), "proceed")
	cfg.Terminate.Steps = []config.Step{{
		Name:        "drain",
		Command:     []string{"sh", "-c", `echo first; echo second; while [ ! -e "$PROCEED" ]; do sleep 0.05; done; printf last`},
		Timeout:     config.Duration(waitLimit),
		Env:         map[string]string{"PROCEED": proceed},
		OnFailure:   config.FailureContinue,
		OnInterrupt: config.InterruptRerun,
	}}
	var logs syncBuffer
	asg := &fakeGroup{t: t, state: "Terminating:Wait", hooks: []lifecycle.Hook{terminateHook("drain", time.Hour)}}
	a, err := agent.New(cfg, agent.Deps{Metadata: &fakeMetadata{target: "Terminated"}, Group: asg, Completer: okCompleter(t)},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	const second = `msg="step output" instance=i-0123456789abcdef0 transition=autoscaling:EC2_INSTANCE_TERMINATING hook=drain step=drain output=second`
	for !strings.Contains(logs.String(), second) {
		select {
		case err := <-done:
			t.Fatalf("Run = %v before the step's output was logged:\n%s", err, logs.String())
		case <-time.After(10 * time.Millisecond): // poll the log; bounded by ctx
		}
		if ctx.Err() != nil {
			t.Fatalf("the step's output was not logged while it ran:\n%s", logs.String())
		}
	}
	if strings.Contains(logs.String(), `msg="step ended"`) {
		t.Fatalf("the step ended before it was let go on:\n%s", logs.String())
	}
	if err := os.WriteFile(proceed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	out := logs.String()
	i1, i2 := strings.Index(out, "output=first"), strings.Index(out, "output=second")
	i3, end := strings.Index(out, "output=last"), strings.Index(out, `msg="step ended"`)
	if i1 < 0 || i2 < i1 || i3 < i2 || end < i3 {
		t.Errorf("log lacks the lines first, second, last, then step ended, in order:\n%s", out)
	}
	// The command logs "agent started", once, with its address and version.
	if strings.Contains(out, "agent started") {
		t.Errorf("the agent package logs \"agent started\" too:\n%s", out)
	}
}
