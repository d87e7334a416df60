package jobs_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/jobs"
)

// marked is a command that creates the file mark if it ever runs, then
// exits with status 3.
func marked(mark string) []string { return sh(`: > "` + mark + `"; exit 3`) }

// waitLog waits, within waitLimit, for the supervisor's log to contain s.
func waitLog(t *testing.T, dir, s string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !bytes.Contains(supervisorLog(dir), []byte(s)) {
		if time.Now().After(deadline) {
			t.Fatalf("supervisor log has no %q after %v:\n%s", s, waitLimit, supervisorLog(dir))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkNothingRan checks that the run in dir ended without running its
// command, and that the directory cannot be used again.
func checkNothingRan(t *testing.T, dir, mark string) {
	t.Helper()
	waitGone(t, supervisorPID(t, dir), "the released supervisor")
	if _, err := os.Stat(mark); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the command ran (%s: %v)", mark, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "status.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("status.json written for a command never started: %v", err)
	}
	if h, ok, err := jobs.Adopt(dir); err != nil || ok {
		t.Errorf("Adopt = %v, %v, %v; want not adoptable", h, ok, err)
	}
	_, err := jobs.Start(jobs.Spec{Dir: dir, Argv: marked(mark), Env: testEnv})
	if !errors.Is(err, jobs.ErrAlreadyStarted) {
		t.Errorf("Start in the released directory: %v, want ErrAlreadyStarted", err)
	}
	if _, err := os.Stat(mark); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the command ran after all (%s: %v)", mark, err)
	}
}

func TestPrepareThenGo(t *testing.T) {
	t.Parallel()
	mark := filepath.Join(t.TempDir(), "ran")
	p, _ := prepare(t, mark)
	h, err := p.Go()
	if err != nil {
		t.Fatalf("Go: %v", err)
	}
	if o := wait(t, h); o.ExitCode != 3 {
		t.Errorf("outcome %+v, want exit code 3", o)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Errorf("the command did not run: %v", err)
	}
	if _, err := p.Go(); err == nil {
		t.Error("a second Go succeeded")
	}
	p.Release() // no effect after Go
}

func TestPreparedAndReleasedRunsNothing(t *testing.T) {
	t.Parallel()
	mark := filepath.Join(t.TempDir(), "ran")
	p, dir := prepare(t, mark)
	// Released once the supervisor waits, and (in a second run) while it
	// may still be starting: both end the same way.
	deadline := time.Now().Add(waitLimit)
	for !fileExists(filepath.Join(dir, "supervisor.pid")) {
		if time.Now().After(deadline) {
			t.Fatalf("supervisor.pid not written within %v:\n%s", waitLimit, supervisorLog(dir))
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Release()
	waitLog(t, dir, "nothing was run")
	checkNothingRan(t, dir, mark)
	if _, err := p.Go(); err == nil {
		t.Error("Go after Release succeeded")
	}

	p, dir2 := prepare(t, mark)
	p.Release()
	waitLog(t, dir2, "nothing was run")
	checkNothingRan(t, dir2, mark)
}

// prepare prepares a command that creates mark and exits 3, in a fresh
// directory cleaned up when the test ends.
func prepare(t *testing.T, mark string) (*jobs.Prepared, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	p, err := jobs.Prepare(jobs.Spec{Dir: dir, Argv: marked(mark), Env: testEnv})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Cleanup(func() { cleanUp(t, dir) })
	return p, dir
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// preparingAgentDirEnv makes TestHelperPreparingAgent act as an agent.
const preparingAgentDirEnv = "LIFEGUARD_JOBS_TEST_PREPARING_AGENT_DIR"

// TestHelperPreparingAgent is not a test: TestAgentCrashAfterPrepare runs
// the test binary as an agent that prepares a step and then SIGKILLs
// itself before Go.
func TestHelperPreparingAgent(t *testing.T) {
	dir := os.Getenv(preparingAgentDirEnv)
	if dir == "" {
		t.Skip("helper process for TestAgentCrashAfterPrepare")
	}
	if _, err := jobs.Prepare(jobs.Spec{Dir: filepath.Join(dir, "run"), Argv: marked(filepath.Join(dir, "ran")), Env: testEnv}); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
}

// An agent that dies between Prepare and Go has run nothing: its
// supervisor reads EOF on the go pipe and exits.
func TestAgentCrashAfterPrepare(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	t.Cleanup(func() { cleanUp(t, run) })
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperPreparingAgent$", "-test.count=1")
	cmd.Env = append(os.Environ(), preparingAgentDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper agent: %v, want it killed by SIGKILL; output:\n%s", err, out)
	}
	waitLog(t, run, "nothing was run")
	checkNothingRan(t, run, filepath.Join(dir, "ran"))
}

// supervisor.pid is written without fsync; one that a power loss left
// empty or cut short reads as no supervisor once the lock is free.
func TestAdoptWithACutShortPidFile(t *testing.T) {
	t.Parallel()
	for _, content := range []string{"", `{"pid":12`, "\x00\x00\x00"} {
		dir := t.TempDir()
		for name, b := range map[string]string{"spec.json": `{}`, "lock": "", "supervisor.pid": content} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(b), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if h, ok, err := jobs.Adopt(dir); err != nil || ok {
			t.Errorf("pid file %q: Adopt = %v, %v, %v; want not adoptable, no error", content, h, ok, err)
		}
	}
}
