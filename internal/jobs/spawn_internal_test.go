package jobs

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

// startStopped starts a command that waits in a fresh directory, stops it,
// and returns the supervisor's parent, read while it ran, and the outcome.
func startStopped(t *testing.T) (ppid int, o Outcome) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	h, err := Start(Spec{Dir: dir, Argv: []string{"/bin/sleep", "60"}, Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	var rec pidRecord
	if err := readJSON(filepath.Join(dir, pidFile), &rec); err != nil {
		t.Fatal(err)
	}
	st, err := proc.ReadStat(rec.PID)
	if err != nil {
		t.Fatal(err)
	}
	o, err = h.Stop(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.PPID, o
}

// The supervisor is the agent's sibling, never its child.
func TestSupervisorIsNotTheAgentsChild(t *testing.T) {
	ppid, o := startStopped(t)
	if ppid == os.Getpid() {
		t.Errorf("the supervisor's parent is the agent (%d)", ppid)
	}
	if ppid != os.Getppid() {
		t.Errorf("the supervisor's parent is %d, want the agent's parent %d", ppid, os.Getppid())
	}
	if o.Signal != "SIGTERM" {
		t.Errorf("outcome %+v, want the command stopped by SIGTERM", o)
	}
}

// Where the supervisor cannot be the agent's sibling, the launcher starts
// it, and it is not the agent's child either.
func TestSupervisorStartedByTheLauncher(t *testing.T) {
	old := siblingFlags
	siblingFlags = syscall.CLONE_THREAD // without CLONE_SIGHAND: EINVAL, as for an init
	t.Cleanup(func() { siblingFlags = old })
	ppid, o := startStopped(t)
	if ppid == os.Getpid() || ppid == os.Getppid() {
		t.Errorf("the supervisor's parent is %d (agent %d, its parent %d), want the launcher's reaper", ppid, os.Getpid(), os.Getppid())
	}
	if o.Signal != "SIGTERM" {
		t.Errorf("outcome %+v, want the command stopped by SIGTERM", o)
	}
}
