package jobs

import (
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

// sleeper starts a process that runs until killed, and kills it when the
// test ends.
func sleeper(t *testing.T) (*exec.Cmd, proc.ID) {
	t.Helper()
	cmd := exec.Command("/bin/sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	id, err := proc.Identify(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return cmd, id
}

func TestWaitExitWakesOnTheExit(t *testing.T) {
	cmd, id := sleeper(t)
	done := make(chan error, 1)
	go func() { done <- waitExit(context.Background(), id) }()
	select {
	case err := <-done:
		t.Fatalf("waitExit returned %v while the process runs", err)
	case <-time.After(50 * time.Millisecond): // a chance to return wrongly
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if errors.Is(err, errNoPidfd) {
			t.Skip("the kernel has no pollable pidfd; Wait polls")
		}
		if err != nil {
			t.Fatalf("waitExit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waitExit did not return within 10 s of the exit")
	}
}

func TestWaitExitEndsWithItsContext(t *testing.T) {
	_, id := sleeper(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- waitExit(ctx, id) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) && !errors.Is(err, errNoPidfd) {
		t.Fatalf("waitExit after cancel: %v, want context.Canceled", err)
	}
}

func TestWaitExitOfAnotherProcessWithThePID(t *testing.T) {
	_, id := sleeper(t)
	id.Start++ // the pid now names another process than id's
	if err := waitExit(context.Background(), id); err != nil && !errors.Is(err, errNoPidfd) {
		t.Fatalf("waitExit of a reused pid: %v, want nil at once", err)
	}
}

func TestWaitExitOfAGoneProcess(t *testing.T) {
	cmd, id := sleeper(t)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := waitExit(context.Background(), id); err != nil && !errors.Is(err, errNoPidfd) {
		t.Fatalf("waitExit of a reaped process: %v, want nil", err)
	}
}
