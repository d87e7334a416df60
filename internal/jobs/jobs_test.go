package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/jobs"
	"github.com/lifeguardhq/lifeguard/internal/proc"
)

func TestMain(m *testing.M) {
	proc.Main()
	goleak.VerifyTestMain(m)
}

// waitLimit bounds every wait in these tests; nothing should come close.
const waitLimit = 10 * time.Second

// testEnv is a small environment for commands.
var testEnv = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

// start starts s, in a fresh directory unless s.Dir is set, and stops the
// run when the test ends.
func start(t *testing.T, s jobs.Spec) *jobs.Handle {
	t.Helper()
	if s.Dir == "" {
		s.Dir = filepath.Join(t.TempDir(), "run")
	}
	if s.Env == nil {
		s.Env = testEnv
	}
	h, err := jobs.Start(s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { cleanUp(t, h.Dir()) })
	return h
}

// cleanUp stops whatever still runs in dir and checks the supervisor's log
// for trouble (a race report or a panic).
func cleanUp(t *testing.T, dir string) {
	t.Helper()
	if h, ok, err := jobs.Adopt(dir); err != nil {
		t.Errorf("Adopt at cleanup: %v", err)
	} else if ok {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if _, err := h.Stop(ctx); err != nil {
			t.Errorf("Stop at cleanup: %v", err)
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "supervisor.log"))
	for _, bad := range []string{"DATA RACE", "panic:", "fatal error:"} {
		if bytes.Contains(log, []byte(bad)) {
			t.Errorf("supervisor log has %q:\n%s", bad, log)
		}
	}
}

// wait waits for the outcome, within waitLimit.
func wait(t *testing.T, h *jobs.Handle) jobs.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	o, err := h.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v; output:\n%s\nsupervisor log:\n%s", err, h.Output(4096), supervisorLog(h.Dir()))
	}
	return o
}

func supervisorLog(dir string) []byte {
	b, _ := os.ReadFile(filepath.Join(dir, "supervisor.log"))
	return b
}

// statOf returns the state (field 3) and start time (field 22) of a process
// from /proc/<pid>/stat.
func statOf(pid int) (state string, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	start, err = strconv.ParseUint(f[19], 10, 64)
	return f[0], start, err
}

// gone reports whether a process has exited (a zombie counts).
func gone(pid int) bool {
	state, _, err := statOf(pid)
	return err != nil || state == "Z" || state == "X"
}

// waitGone waits, within waitLimit, for a process to exit.
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (process %d) still runs after %v", what, pid, waitLimit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readPID waits, within waitLimit, for a file holding a PID and a newline.
func readPID(t *testing.T, path string) int {
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
		time.Sleep(10 * time.Millisecond)
	}
}

// supervisorPID reads the supervisor's PID from its pid file.
func supervisorPID(t *testing.T, dir string) int {
	t.Helper()
	var rec struct {
		PID int `json:"pid"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "supervisor.pid"))
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil || rec.PID <= 0 {
		t.Fatalf("read supervisor.pid %q: %v", b, err)
	}
	return rec.PID
}

// same reports whether two outcomes are equal, times compared as instants.
func same(a, b jobs.Outcome) bool {
	return a.ExitCode == b.ExitCode && a.Signal == b.Signal && a.TimedOut == b.TimedOut &&
		a.Started.Equal(b.Started) && a.Ended.Equal(b.Ended)
}

func checkTimes(t *testing.T, o jobs.Outcome) {
	t.Helper()
	if o.Started.IsZero() || o.Ended.Before(o.Started) {
		t.Errorf("Started %v, Ended %v: want Started set and not after Ended", o.Started, o.Ended)
	}
}

func TestOutcomeIsRecorded(t *testing.T) {
	t.Parallel()
	notExecutable := filepath.Join(t.TempDir(), "no-shebang")
	if err := os.WriteFile(notExecutable, []byte("echo hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		argv       []string
		env        []string
		wantCode   int
		wantSignal string
		wantOutput string // the whole output
		wantPrefix string // or how it starts
	}{
		{
			name:       "exit code and output",
			argv:       sh("echo out; echo err >&2; exit 3"),
			wantCode:   3,
			wantOutput: "out\nerr\n",
		},
		{
			name:       "argv is not interpreted by a shell",
			argv:       []string{"/bin/echo", "a  b", `"q" 'r'`, "$HOME", ";", "*", "`id`"},
			wantOutput: "a  b \"q\" 'r' $HOME ; * `id`\n",
		},
		{
			name:       "the environment is exactly Env",
			argv:       []string{"/usr/bin/env"},
			env:        []string{"A=1", "B=two words", "A=3"},
			wantOutput: "A=3\nB=two words\n",
		},
		{
			name:       "Argv[0] is looked up in Env's PATH",
			argv:       []string{"echo", "found"},
			env:        []string{"PATH=/nonexistent:/bin"},
			wantOutput: "found\n",
		},
		{
			name:       "standard input is empty",
			argv:       sh("cat; echo eof"),
			wantOutput: "eof\n",
		},
		{
			name:       "a signal that kills the command",
			argv:       sh("kill -USR1 $$"),
			wantCode:   -1,
			wantSignal: "SIGUSR1",
		},
		{
			name:       "a file the kernel cannot execute ends with 126",
			argv:       []string{notExecutable},
			wantCode:   126,
			wantPrefix: "lifeguard-jobs: could not run " + notExecutable + " in ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, jobs.Spec{Argv: tt.argv, Env: tt.env})
			o := wait(t, h)
			if o.ExitCode != tt.wantCode || o.Signal != tt.wantSignal || o.TimedOut {
				t.Errorf("outcome %+v, want exit code %d, signal %q, not timed out", o, tt.wantCode, tt.wantSignal)
			}
			checkTimes(t, o)
			got := string(h.Output(4096))
			if tt.wantPrefix != "" && !strings.HasPrefix(got, tt.wantPrefix) {
				t.Errorf("output %q, want it to start with %q", got, tt.wantPrefix)
			}
			if tt.wantPrefix == "" && got != tt.wantOutput {
				t.Errorf("output %q, want %q", got, tt.wantOutput)
			}
		})
	}
}

func TestOutputReturnsTheTail(t *testing.T) {
	t.Parallel()
	h := start(t, jobs.Spec{Argv: sh("echo out; echo err >&2")})
	wait(t, h)
	for n, want := range map[int]string{0: "", 4: "err\n", 8: "out\nerr\n", 100: "out\nerr\n"} {
		if got := string(h.Output(n)); got != want {
			t.Errorf("Output(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestStartRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec jobs.Spec
		want string
	}{
		{"no directory", jobs.Spec{Argv: []string{"/bin/true"}}, "empty directory"},
		{"no argv", jobs.Spec{Dir: "x"}, "empty argv"},
		{"a command not in PATH", jobs.Spec{Dir: "x", Argv: []string{"no-such-command-lifeguard"}, Env: testEnv}, "executable file not found"},
		{"a missing command", jobs.Spec{Dir: "x", Argv: []string{"/nonexistent/cmd"}}, "no such file"},
		{"a directory as the command", jobs.Spec{Dir: "x", Argv: []string{"/"}}, "is a directory"},
		{"a negative timeout", jobs.Spec{Dir: "x", Argv: []string{"/bin/true"}, Timeout: -time.Second}, "negative timeout"},
		{"a negative grace", jobs.Spec{Dir: "x", Argv: []string{"/bin/true"}, Grace: -time.Second}, "negative grace"},
		{"an environment entry without =", jobs.Spec{Dir: "x", Argv: []string{"/bin/true"}, Env: []string{"PATH"}}, "not K=V"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.spec.Dir != "" {
				tt.spec.Dir = filepath.Join(t.TempDir(), tt.spec.Dir)
			}
			_, err := jobs.Start(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start: %v, want an error with %q", err, tt.want)
			}
			if tt.spec.Dir != "" {
				if _, err := os.Stat(tt.spec.Dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the directory was created for a rejected spec (%v)", err)
				}
			}
		})
	}
}

func TestStartRefusesADirectoryThatHadARun(t *testing.T) {
	t.Parallel()
	h := start(t, jobs.Spec{Argv: sh("exit 0")})
	for _, when := range []string{"running or just ended", "ended"} {
		if when == "ended" {
			wait(t, h)
		}
		_, err := jobs.Start(jobs.Spec{Dir: h.Dir(), Argv: sh("exit 1"), Env: testEnv})
		if !errors.Is(err, jobs.ErrAlreadyStarted) {
			t.Errorf("second Start (%s): %v, want ErrAlreadyStarted", when, err)
		}
	}
	if o := wait(t, h); o.ExitCode != 0 {
		t.Errorf("exit code %d, want the first run's 0", o.ExitCode)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		argv       []string
		grace      time.Duration
		wantSignal string
	}{
		{"a command that obeys SIGTERM ends with it", []string{"sleep", "1000"}, waitLimit, "SIGTERM"},
		{"a command that ignores SIGTERM is killed after the grace", sh(`trap "" TERM; sleep 1000`), 300 * time.Millisecond, "SIGKILL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const timeout = 100 * time.Millisecond
			h := start(t, jobs.Spec{Argv: tt.argv, Timeout: timeout, Grace: tt.grace})
			o := wait(t, h)
			if o.ExitCode != -1 || o.Signal != tt.wantSignal || !o.TimedOut {
				t.Errorf("outcome %+v, want killed by %s, timed out", o, tt.wantSignal)
			}
			checkTimes(t, o)
			atLeast := timeout
			if tt.wantSignal == "SIGKILL" {
				atLeast += tt.grace
			}
			if d := o.Ended.Sub(o.Started); d < atLeast {
				t.Errorf("ran %v, want at least %v", d, atLeast)
			}
		})
	}
}

func TestStop(t *testing.T) {
	t.Parallel()
	h := start(t, jobs.Spec{Argv: []string{"sleep", "1000"}})
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	o, err := h.Stop(ctx)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if o.ExitCode != -1 || o.Signal != "SIGTERM" || o.TimedOut {
		t.Errorf("outcome %+v, want killed by SIGTERM, not timed out", o)
	}
	again, err := h.Stop(ctx)
	if err != nil || !same(again, o) {
		t.Errorf("second Stop: %+v, %v; want %+v", again, err, o)
	}
}

func TestWaitEndsWithItsContext(t *testing.T) {
	t.Parallel()
	h := start(t, jobs.Spec{Argv: []string{"sleep", "1000"}})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if o, err := h.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait: %+v, %v; want the context's deadline", o, err)
	}
}

func TestAdoptFindsARecordedOutcomeAtOnce(t *testing.T) {
	t.Parallel()
	h := start(t, jobs.Spec{Argv: sh("exit 5")})
	want := wait(t, h)

	adopted, ok, err := jobs.Adopt(h.Dir())
	if err != nil || !ok {
		t.Fatalf("Adopt: ok=%v, %v; want the ended run", ok, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the outcome is there: no waiting needed
	got, err := adopted.Wait(ctx)
	if err != nil || !same(got, want) || got.ExitCode != 5 {
		t.Errorf("Wait: %+v, %v; want %+v", got, err, want)
	}
}

func TestAdoptWithoutARun(t *testing.T) {
	t.Parallel()
	for name, dir := range map[string]string{
		"an empty directory":  t.TempDir(),
		"a missing directory": filepath.Join(t.TempDir(), "missing"),
	} {
		h, ok, err := jobs.Adopt(dir)
		if h != nil || ok || err != nil {
			t.Errorf("%s: Adopt = %v, %v, %v; want nil, false, nil", name, h, ok, err)
		}
	}
}

// TestAdoptWhileStarting covers an agent that crashed inside Start: until
// the supervisor has written its pid file, the run's lock, held from Start
// on, says it is alive.
func TestAdoptWhileStarting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lock, err := os.Create(filepath.Join(dir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	h, ok, err := jobs.Adopt(dir)
	if !ok || err != nil {
		t.Fatalf("Adopt with the lock held: ok=%v, %v; want a starting run", ok, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with the lock held: %v; want the context's deadline", err)
	}

	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := jobs.Adopt(dir); ok || err != nil {
		t.Errorf("Adopt with the lock free: ok=%v, %v; want nothing running", ok, err)
	}
	if _, err := h.Wait(t.Context()); !errors.Is(err, jobs.ErrSupervisorLost) {
		t.Errorf("Wait with the lock free: %v; want ErrSupervisorLost", err)
	}
}

func TestSupervisorLivenessSurvivesPIDReuse(t *testing.T) {
	t.Parallel()
	_, start, err := statOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		startTime uint64
		wantAlive bool
	}{
		{"a process with the recorded PID and start time is the supervisor", start, true},
		{"a process with the recorded PID but another start time is not", start + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			rec := []byte(`{"pid":` + strconv.Itoa(os.Getpid()) + `,"startTime":` + strconv.FormatUint(tt.startTime, 10) + `}`)
			if err := os.WriteFile(filepath.Join(dir, "supervisor.pid"), rec, 0o600); err != nil {
				t.Fatal(err)
			}
			h, ok, err := jobs.Adopt(dir)
			if ok != tt.wantAlive || err != nil {
				t.Fatalf("Adopt: ok=%v, %v; want ok=%v", ok, err, tt.wantAlive)
			}
			if !ok {
				return
			}
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			if _, err := h.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Wait: %v; want the context's deadline, the supervisor being alive", err)
			}
		})
	}
}

// agentDirEnv makes TestHelperAgent act as an agent.
const agentDirEnv = "LIFEGUARD_JOBS_TEST_AGENT_DIR"

// TestHelperAgent is not a test: TestSupervisorSurvivesAgentCrash runs the
// test binary as an agent that starts a step and then SIGKILLs itself.
func TestHelperAgent(t *testing.T) {
	dir := os.Getenv(agentDirEnv)
	if dir == "" {
		t.Skip("helper process for TestSupervisorSurvivesAgentCrash")
	}
	_, err := jobs.Start(jobs.Spec{
		Dir:  filepath.Join(dir, "run"),
		Argv: sh(`while [ ! -e "$GATE" ]; do sleep 0.01; done; exit 7`),
		Env:  append([]string{"GATE=" + filepath.Join(dir, "gate")}, testEnv...),
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
}

func TestSupervisorSurvivesAgentCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	t.Cleanup(func() { cleanUp(t, run) })
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperAgent$", "-test.count=1")
	cmd.Env = append(os.Environ(), agentDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper agent: %v, want it killed by SIGKILL; output:\n%s", err, out)
	}

	h, ok, err := jobs.Adopt(run)
	if err != nil || !ok {
		t.Fatalf("Adopt after the agent crashed: ok=%v, %v; supervisor log:\n%s", ok, err, supervisorLog(run))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if o, err := h.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait before the step may end: %+v, %v; want it still running", o, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gate"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if o := wait(t, h); o.ExitCode != 7 || o.Signal != "" {
		t.Errorf("outcome %+v, want exit code 7", o)
	}
}

func TestSupervisorKilledTakesTheStepWithIt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// report looks at the run after the supervisor died and checks
		// that the loss is reported.
		report func(t *testing.T, h *jobs.Handle)
	}{
		{"Wait reports the loss", func(t *testing.T, h *jobs.Handle) {
			ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
			defer cancel()
			if o, err := h.Wait(ctx); !errors.Is(err, jobs.ErrSupervisorLost) {
				t.Errorf("Wait: %+v, %v; want ErrSupervisorLost", o, err)
			}
		}},
		{"Adopt reports the loss", func(t *testing.T, h *jobs.Handle) {
			if h, ok, err := jobs.Adopt(h.Dir()); h != nil || ok || err != nil {
				t.Errorf("Adopt: %v, %v, %v; want nil, false, nil", h, ok, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			h := start(t, jobs.Spec{
				Argv: sh(`echo $$ > "$OUT/cmd.pid"; sleep 1000 & echo $! > "$OUT/bg.pid"; wait`),
				Env:  append([]string{"OUT=" + out}, testEnv...),
			})
			cmdPID := readPID(t, filepath.Join(out, "cmd.pid"))
			bgPID := readPID(t, filepath.Join(out, "bg.pid"))

			if err := syscall.Kill(supervisorPID(t, h.Dir()), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			// The command dies of its parent-death signal; the rest of its
			// group is left for whoever finds the supervisor dead.
			waitGone(t, cmdPID, "the command")
			if gone(bgPID) {
				t.Fatalf("the command's background process went with it; this test cannot tell who killed it")
			}
			tt.report(t, h)
			waitGone(t, bgPID, "the command's background process")
		})
	}
}

func TestLeftoverProcessesAreStopped(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid(1) not installed")
	}
	// The daemon leaves the command's session and process group; when its
	// parent exits it is re-parented to the supervisor.
	const daemonize = `setsid sh -c 'echo $$ > "$OUT/daemon.pid"; exec sleep 1000' & while [ ! -s "$OUT/daemon.pid" ]; do sleep 0.01; done; `
	tests := []struct {
		name         string
		script       string
		timeout      time.Duration
		wantCode     int
		wantTimedOut bool
	}{
		{"a daemon started by a step is stopped when the step ends", daemonize + "exit 4", 0, 4, false},
		{"a daemon started by a step is stopped when the step times out", daemonize + "sleep 1000", 200 * time.Millisecond, -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			h := start(t, jobs.Spec{
				Argv:    sh(tt.script),
				Env:     append([]string{"OUT=" + out}, testEnv...),
				Timeout: tt.timeout,
			})
			o := wait(t, h)
			if o.ExitCode != tt.wantCode || o.TimedOut != tt.wantTimedOut {
				t.Errorf("outcome %+v, want exit code %d, timed out %v", o, tt.wantCode, tt.wantTimedOut)
			}
			// The outcome is recorded only once every process of the step
			// is gone.
			if pid := readPID(t, filepath.Join(out, "daemon.pid")); !gone(pid) {
				t.Errorf("the daemon (process %d) still runs after the outcome was recorded; supervisor log:\n%s", pid, supervisorLog(h.Dir()))
			}
		})
	}
}
