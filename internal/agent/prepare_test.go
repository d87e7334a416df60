package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// The jobs StepRunner prepares steps: a prepared step released runs
// nothing and is not adoptable; the next attempt, prepared and started,
// runs once in a directory of its own.
func TestStepRunnerPrepares(t *testing.T) {
	dir := t.TempDir()
	runner, ok := agent.NewStepRunner(dir, testLogger(t)).(interface {
		lifecycle.StepRunner
		lifecycle.StepPreparer
	})
	if !ok {
		t.Fatal("the jobs StepRunner does not prepare steps")
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	id := lifecycle.StepID{Key: stepKey, Action: "ACTION1", Step: "flush"}
	mark := filepath.Join(t.TempDir(), "ran")
	s := lifecycle.Step{Name: "flush", Argv: []string{"sh", "-c", `echo run >> "$MARK"; exit 4`}}
	env := []string{"MARK=" + mark}
	attempt := func(n string) string { return filepath.Join(dir, "steps", stepKey.String(), "ACTION1", "flush", n) }

	p, err := runner.Prepare(ctx, id, s, env)
	if err != nil {
		t.Fatal(err)
	}
	p.Release()
	// The released supervisor exits having run nothing; Adopt (which
	// waits while it still runs) then reports the step not adoptable.
	deadline := time.Now().Add(waitLimit)
	for {
		h, ok, err := runner.Adopt(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if _, err := h.Wait(ctx); err == nil || time.Now().After(deadline) {
			t.Fatalf("the released step was adopted with an outcome (%v)", err)
		}
	}
	if _, err := os.Stat(mark); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the released step ran: %v", err)
	}

	p, err = runner.Prepare(ctx, id, s, env)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p.Go(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := h.Wait(ctx); err != nil || out.ExitCode != 4 {
		t.Errorf("Wait = %+v, %v; want exit code 4", out, err)
	}
	if b, err := os.ReadFile(mark); err != nil || string(b) != "run\n" {
		t.Errorf("the step ran %q (%v), want once", b, err)
	}
	for n, want := range map[string]bool{"1": false, "2": true} {
		_, err := os.Stat(filepath.Join(attempt(n), "status.json"))
		if got := err == nil; got != want {
			t.Errorf("attempt %s has status.json: %v, want %v", n, got, want)
		}
	}
}
