package agent_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

// TestJournalLock starts two agents on one journal directory: the second
// fails at once, naming the directory and the first one's pid, and runs
// nothing; once the first has stopped, an agent starts on it again.
func TestJournalLock(t *testing.T) {
	cfg := newConfig(t)
	md := &fakeMetadata{target: "InService"}
	asg := &fakeGroup{t: t, state: "InService"}
	deps := agent.Deps{Metadata: md, Group: asg, Completer: noCalls(t), Steps: &lifecycletest.StepRunner{T: t}}
	first := start(t, newAgent(t, cfg, deps))

	_, err := agent.New(cfg, deps, testLogger(t))
	if !errors.Is(err, agent.ErrJournalLocked) {
		t.Fatalf("second New = %v, want an error wrapping ErrJournalLocked", err)
	}
	pid := strconv.Itoa(os.Getpid())
	if msg := err.Error(); !strings.Contains(msg, cfg.Paths.JournalDir) || !strings.Contains(msg, "pid "+pid) {
		t.Errorf("second New = %q, want it to name %s and pid %s", msg, cfg.Paths.JournalDir, pid)
	}
	if b, err := os.ReadFile(filepath.Join(cfg.Paths.JournalDir, "agent.lock")); err != nil || strings.TrimSpace(string(b)) != pid {
		t.Errorf("agent.lock holds %q (%v), want the holder's pid %s", b, err, pid)
	}

	if err := first.stop(); err != nil {
		t.Fatalf("first Run = %v, want nil", err)
	}
	again, err := agent.New(cfg, deps, testLogger(t))
	if err != nil {
		t.Fatalf("New after the first agent stopped = %v, want nil", err)
	}
	again.Close()
	third, err := agent.New(cfg, deps, testLogger(t))
	if err != nil {
		t.Fatalf("New after Close = %v, want nil", err)
	}
	third.Close()
}
