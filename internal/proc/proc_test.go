package proc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

func TestMain(m *testing.M) {
	proc.Main()
	goleak.VerifyTestMain(m)
}

// waitLimit bounds every wait in these tests; nothing should come close.
const waitLimit = 10 * time.Second

// Roles of this test binary.
const (
	roleEcho      = "proc-test-echo"
	roleSubreaper = "proc-test-subreaper"
)

func init() {
	// echo prints its arguments and whether it sees the role variable,
	// and exits with status 3.
	proc.Register(roleEcho, func(args []string) int {
		_, leaked := os.LookupEnv(proc.RoleEnv)
		fmt.Printf("%q leaked=%v\n", args, leaked)
		return 3
	})
	// subreaper becomes a child subreaper, runs the shell script args[1]
	// (which writes a file "ready" when its processes are up) in directory
	// args[0], then stops everything below itself with a grace of
	// args[2], as the step and instance supervisors do.
	proc.Register(roleSubreaper, func(args []string) int {
		if err := proc.BecomeSubreaper(); err != nil {
			fmt.Println(err)
			return 1
		}
		dir, script := args[0], args[1]
		grace, err := time.ParseDuration(args[2])
		if err != nil {
			fmt.Println(err)
			return 1
		}
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			fmt.Println(err)
			return 1
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		var sweep proc.Sweep
		sweep.TermGroup(cmd.Process.Pid)
		deadline := time.Now().Add(grace)
		for proc.Reap(nil) {
			if _, err := sweep.Signal(os.Getpid(), !time.Now().Before(deadline)); err != nil {
				fmt.Println(err)
				return 1
			}
			time.Sleep(5 * time.Millisecond)
		}
		return 0
	})
}

func TestCommandRunsTheRole(t *testing.T) {
	t.Parallel()
	cmd, err := proc.Command(roleEcho, "a", "b c")
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("role: %v, want exit status 3; output: %s", err, out)
	}
	if got, want := string(out), `["a" "b c"] leaked=false`+"\n"; got != want {
		t.Errorf("role printed %q, want %q", got, want)
	}
}

func TestCommandRefusesAnUnknownRole(t *testing.T) {
	t.Parallel()
	if _, err := proc.Command("no-such-role"); err == nil || !strings.Contains(err.Error(), `role "no-such-role" is not registered`) {
		t.Errorf("Command: %v, want the role named as not registered", err)
	}
}

func TestMainRejectsAnUnknownRole(t *testing.T) {
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), proc.RoleEnv+"=no-such-role")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("binary with an unknown role: %v, want exit status 2; output: %s", err, out)
	}
	if !bytes.Contains(out, []byte(`role "no-such-role" is not registered`)) {
		t.Errorf("output %q does not name the role", out)
	}
}

func TestIDSurvivesPIDReuse(t *testing.T) {
	t.Parallel()
	me, err := proc.Identify(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	other := proc.ID{PID: me.PID, Start: me.Start + 1}
	tests := []struct {
		name      string
		id        proc.ID
		wantAlive bool
	}{
		{"the PID and start time of a live process", me, true},
		{"the PID with another start time", other, false},
		{"no PID", proc.ID{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.id.Alive(); got != tt.wantAlive {
				t.Errorf("Alive = %v, want %v", got, tt.wantAlive)
			}
			// Signal 0 checks without signalling.
			err := tt.id.Signal(0)
			if tt.wantAlive && err != nil || !tt.wantAlive && !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("Signal: %v, want nil for a live process, os.ErrProcessDone otherwise", err)
			}
		})
	}
}

// TestPinHoldsTheProcessItFound: a pinned process is signalled through
// its pin, and once it is gone (reaped, its PID free for another) the pin
// reaches nothing.
func TestPinHoldsTheProcessItFound(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p, err := proc.Pin(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	if p.Stat.PID != cmd.Process.Pid || p.Stat.Exited() {
		t.Fatalf("pinned %+v, want the live process %d", p.Stat, cmd.Process.Pid)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL through the pin: %v", err)
	}
	_ = cmd.Wait()
	if err := p.Signal(0); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("signal after the process was reaped: %v, want os.ErrProcessDone", err)
	}
	if _, err := proc.Pin(0); err == nil {
		t.Error("Pin(0) succeeded, want an error")
	}
}

func TestSignalName(t *testing.T) {
	t.Parallel()
	for sig, want := range map[syscall.Signal]string{
		syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL", 34: "SIGRTMIN+0", 40: "SIGRTMIN+6", 99: "signal 99",
	} {
		if got := proc.SignalName(sig); got != want {
			t.Errorf("SignalName(%d) = %q, want %q", int(sig), got, want)
		}
	}
}

// waitPID polls for a file holding a PID and a newline, up to waitLimit.
func waitPID(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		b, err := os.ReadFile(path)
		if err == nil && bytes.HasSuffix(b, []byte("\n")) {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written within %v", path, waitLimit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gone reports whether a process has exited (a zombie counts).
func gone(pid int) bool {
	st, err := proc.ReadStat(pid)
	return err != nil || st.Exited()
}

// waitGone waits, within waitLimit, for a process to exit (SIGKILL is
// delivered asynchronously).
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (process %d) still runs after %v", what, pid, waitLimit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitGroupGone waits, within waitLimit, for a process group to have no
// member left (killed members are reaped by their new parent).
func waitGroupGone(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for proc.GroupExists(pgid) {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has members after %v", pgid, waitLimit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startGroup starts a shell script in dir as a Group and stops it when the
// test ends.
func startGroup(t *testing.T, dir, script string) *proc.Group {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	g, err := proc.StartGroup(cmd, syscall.SIGKILL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := g.Stop(ctx, 0); err != nil {
			t.Errorf("Stop at cleanup: %v", err)
		}
	})
	return g
}

func TestDescendantsFindsChildrenAndGrandchildren(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := startGroup(t, dir, `sleep 1000 & echo $! > child.pid
sh -c 'sleep 1000 & echo $! > grandchild.pid; wait' &
wait`)
	child := waitPID(t, filepath.Join(dir, "child.pid"))
	grandchild := waitPID(t, filepath.Join(dir, "grandchild.pid"))
	got, err := proc.Descendants(g.Pid())
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{child, grandchild} {
		if !slices.Contains(got, pid) {
			t.Errorf("Descendants(%d) = %v, lacks %d", g.Pid(), got, pid)
		}
	}
	if slices.Contains(got, g.Pid()) || len(got) != 3 {
		t.Errorf("Descendants(%d) = %v, want the 3 processes below it", g.Pid(), got)
	}
	if got, err := proc.Descendants(1 << 30); len(got) != 0 || err != nil {
		t.Errorf("Descendants of no process = %v, %v; want none", got, err)
	}
}

func TestGroupStop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script string
		grace  time.Duration
	}{
		{"the group ends on SIGTERM", `sleep 1000 & echo $! > member.pid; wait`, waitLimit},
		{"a member that ignores SIGTERM is killed after grace", `sh -c 'trap "" TERM; echo $$ > member.pid; while :; do sleep 0.01; done' & wait`, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			g := startGroup(t, dir, tt.script)
			member := waitPID(t, filepath.Join(dir, "member.pid"))
			ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
			defer cancel()
			if err := g.Stop(ctx, tt.grace); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			waitGone(t, member, "the group's member")
			waitGroupGone(t, g.Pid())
			if err := g.SignalGroup(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("SignalGroup after Stop: %v, want os.ErrProcessDone", err)
			}
		})
	}
}

func TestGroupEndsWithItsLeader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := startGroup(t, dir, `sleep 1000 & echo $! > member.pid; exit 5`)
	member := waitPID(t, filepath.Join(dir, "member.pid"))
	select {
	case <-g.Exited():
	case <-time.After(waitLimit):
		t.Fatal("Exited not closed after the leader exited")
	}
	var exit *exec.ExitError
	if err := g.Err(); !errors.As(err, &exit) || exit.ExitCode() != 5 {
		t.Errorf("Err = %v, want exit status 5", err)
	}
	waitGone(t, member, "the group's member")
	waitGroupGone(t, g.Pid())
}

func TestSweepStopsEverythingBelowASubreaper(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid(1) not installed")
	}
	tests := []struct {
		name   string
		script string
		grace  string
	}{
		{"a setsid daemon and a double-forked one", `setsid sh -c 'echo $$ > a.pid; exec sleep 1000' &
(sh -c 'echo $$ > b.pid; exec sleep 1000' &) 
while [ ! -s a.pid ] || [ ! -s b.pid ]; do sleep 0.01; done; touch ready; wait`, "10s"},
		{"a daemon that ignores SIGTERM", `setsid sh -c 'trap "" TERM; echo $$ > a.pid; while :; do sleep 0.01; done' &
(sh -c 'trap "" TERM; echo $$ > b.pid; while :; do sleep 0.01; done' &)
while [ ! -s a.pid ] || [ ! -s b.pid ]; do sleep 0.01; done; touch ready; wait`, "100ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			c, err := proc.Command(roleSubreaper, dir, tt.script, tt.grace)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
			defer cancel()
			cmd := exec.CommandContext(ctx, c.Path, c.Args[1:]...)
			cmd.Env = c.Env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("subreaper: %v; output:\n%s", err, out)
			}
			for _, name := range []string{"a.pid", "b.pid"} {
				if pid := waitPID(t, filepath.Join(dir, name)); !gone(pid) {
					t.Errorf("process %d (%s) outlived the subreaper's sweep", pid, name)
				}
			}
		})
	}
}

func TestGroupKillTakesDaemonsBelowTheLeader(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid(1) not installed")
	}
	dir := t.TempDir()
	// The daemon leaves the group but stays below the leader, which
	// ignores SIGTERM.
	g := startGroup(t, dir, `trap "" TERM; setsid sh -c 'echo $$ > daemon.pid; exec sleep 1000' & wait`)
	daemon := waitPID(t, filepath.Join(dir, "daemon.pid"))
	if st, err := proc.ReadStat(daemon); err != nil || st.PGID == g.Pid() {
		t.Fatalf("daemon %d: %+v, %v; want it out of the group", daemon, st, err)
	}
	g.Kill()
	waitGone(t, daemon, "the daemon")
	select {
	case <-g.Exited():
	case <-time.After(waitLimit):
		t.Fatal("Exited not closed after Kill")
	}
}

func TestMergeEnv(t *testing.T) {
	got := proc.MergeEnv([]string{"A=1", "B=2", "A=3"}, nil, []string{"C=4", "B=5", "EMPTY="})
	want := []string{"A=3", "B=5", "C=4", "EMPTY="}
	if !slices.Equal(got, want) {
		t.Errorf("MergeEnv = %q, want %q (a later entry replaces an earlier one in its place)", got, want)
	}
}

func TestStatusKiB(t *testing.T) {
	rss, err := proc.StatusKiB(os.Getpid(), "VmRSS")
	if err != nil || rss <= 0 {
		t.Errorf("StatusKiB(self, VmRSS) = %d, %v; want this process's resident set", rss, err)
	}
	if _, err := proc.StatusKiB(os.Getpid(), "NoSuchField"); err == nil {
		t.Error("StatusKiB of a field /proc/self/status lacks: no error")
	}
}
