package jobs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

const (
	// supervisorEnv holds the run's directory in the environment of the
	// launcher and the supervisor; its presence turns the process into one.
	supervisorEnv = "LIFEGUARD_JOBS_SUPERVISOR"

	// The roles, in os.Args[1] (and so in ps).
	roleLauncher   = "lifeguard-jobs-launcher"
	roleSupervisor = "lifeguard-jobs-supervisor"

	// readyFD is the supervisor's end of the pipe on which it tells Start
	// that status.json records the command; lockFD is the run's lock,
	// held until the supervisor exits.
	readyFD = 3
	lockFD  = 4

	// marker starts every line the supervisor writes to output.log.
	marker = "lifeguard-jobs: "

	// sweepInterval is how often the supervisor rescans /proc while it
	// waits for the step's processes to go.
	sweepInterval = 20 * time.Millisecond

	prSetChildSubreaper = 36 // PR_SET_CHILD_SUBREAPER, from <linux/prctl.h>
)

func init() {
	dir, ok := os.LookupEnv(supervisorEnv)
	if !ok {
		return
	}
	// Start re-executes the current binary as a launcher, which
	// re-executes it as the supervisor; this is where those processes
	// turn into what they are. They must do their work and exit before
	// the program's own main (or a test binary's TestMain) starts, so this
	// re-exec hook is the one place this package calls os.Exit.
	os.Exit(runRole(dir))
}

// runRole runs the launcher or the supervisor; it returns the exit status.
func runRole(dir string) int {
	role := ""
	if len(os.Args) > 1 {
		role = os.Args[1]
	}
	switch role {
	case roleLauncher:
		return launch(dir)
	case roleSupervisor:
		return supervise(dir)
	}
	say("%s is set, but %q is not a role", supervisorEnv, role)
	return 2
}

// say writes a line to the supervisor's log (its standard error).
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s%s\n", time.Now().UTC().Format(time.RFC3339Nano), marker, fmt.Sprintf(format, args...))
}

// supervisorEnviron is the launcher's and supervisor's environment: the
// agent's, plus the run's directory. A race-enabled binary sleeps a second
// on exit by default (GORACE atexit_sleep_ms), which would add a second to
// every run under `go test -race`; the command gets its own environment,
// untouched.
func supervisorEnviron(dir string) []string {
	goRace := "atexit_sleep_ms=0"
	if v := os.Getenv("GORACE"); v != "" {
		goRace = v + " " + goRace
	}
	return dedupEnv(append(os.Environ(), "GORACE="+goRace, supervisorEnv+"="+dir))
}

// launch starts the supervisor in a new session and exits without waiting
// for it, so the supervisor is re-parented to init (or the nearest child
// subreaper), which reaps it: the agent never has it as a child.
func launch(dir string) int {
	exe, err := os.Executable()
	if err != nil {
		say("find own executable: %v", err)
		return 1
	}
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        []string{exe, roleSupervisor, dir},
		Env:         os.Environ(),
		Stdout:      os.Stderr,
		Stderr:      os.Stderr,
		ExtraFiles:  []*os.File{os.NewFile(readyFD, "ready"), os.NewFile(lockFD, "lock")},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		say("start supervisor: %v", err)
		return 1
	}
	return 0
}

// supervise is the supervisor's whole life; it returns the exit status.
func supervise(dir string) int {
	// The command's parent-death signal fires when the thread that forked
	// it exits, not the process; this goroutine keeps this thread to the
	// end.
	runtime.LockOSThread()
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGCHLD)

	// The lock (lockFD) stays open, as a bare descriptor that no
	// finalizer closes, until the process exits; the command gets neither.
	syscall.CloseOnExec(readyFD)
	syscall.CloseOnExec(lockFD)
	ready := os.NewFile(readyFD, "ready")
	defer ready.Close()

	// Descendants that daemonize (double fork, setsid) are re-parented to
	// us rather than to init, so we can find them, and we reap them.
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		say("become child subreaper: %v", errno)
		return 1
	}
	s, err := newSupervisor(dir)
	if err != nil {
		say("%v", err)
		return 1
	}
	if err := s.start(); err != nil {
		say("%v", err)
		return 1
	}
	_, _ = ready.Write([]byte{'r'}) // Start may be gone; nothing to do then
	_ = ready.Close()
	if s.done {
		return 0
	}
	s.loop(sigs)
	if err := s.finish(); err != nil {
		say("%v", err)
		return 1
	}
	return 0
}

// procKey identifies a process across PID reuse.
type procKey struct {
	pid   int
	start uint64
}

// supervisor runs one command. All of it runs on the supervisor's main
// goroutine, so the command cannot be reaped before its PID is recorded.
type supervisor struct {
	dir     string
	spec    specRecord
	self    int
	out     *os.File // output.log
	devnull *os.File

	pid, pgid int // the command's; its group's ID is its PID
	pidStart  uint64
	started   time.Time
	ended     time.Time
	ws        syscall.WaitStatus
	exited    bool // the command has been reaped
	done      bool // the outcome is recorded

	timedOut       bool
	stopping       bool
	groupSignalled bool // SIGTERM went to the command's group as a whole
	killAt         time.Time
	signalled      map[procKey]bool
}

// newSupervisor reads the spec, records the supervisor's identity and opens
// the command's files.
func newSupervisor(dir string) (*supervisor, error) {
	s := &supervisor{dir: dir, self: os.Getpid(), signalled: map[procKey]bool{}}
	if err := readJSON(filepath.Join(dir, specFile), &s.spec); err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	me, err := readStat(s.self)
	if err != nil {
		return nil, fmt.Errorf("read own start time: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, pidFile), pidRecord{PID: s.self, StartTime: me.start}); err != nil {
		return nil, err
	}
	s.devnull, err = os.Open(os.DevNull)
	if err != nil {
		return nil, fmt.Errorf("open stdin: %w", err)
	}
	s.out, err = os.OpenFile(filepath.Join(dir, outputFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open output: %w", err)
	}
	return s, nil
}

// start starts the command and records it as running; a command that
// cannot be executed is recorded as exited at once, with status 127 or 126.
func (s *supervisor) start() error {
	s.started = time.Now()
	pid, err := syscall.ForkExec(s.spec.Path, s.spec.Argv, &syscall.ProcAttr{
		Dir:   s.spec.WorkDir,
		Env:   s.spec.Env,
		Files: []uintptr{s.devnull.Fd(), s.out.Fd(), s.out.Fd()},
		Sys: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	})
	if err != nil {
		code := 126
		if errors.Is(err, syscall.ENOENT) {
			code = 127
		}
		fmt.Fprintf(s.out, "%scould not run %s in %s: %v\n", marker, s.spec.Path, s.spec.WorkDir, err)
		say("could not run %s in %s: %v", s.spec.Path, s.spec.WorkDir, err)
		s.done = true
		now := time.Now()
		return writeAtomic(filepath.Join(s.dir, statusFile), statusRecord{
			State:   stateExited,
			Started: s.started,
			Outcome: &outcomeRecord{ExitCode: code, Started: s.started, Ended: now},
		})
	}
	s.pid, s.pgid = pid, pid
	// Not reaped yet, so /proc has it even if it has exited.
	st, err := readStat(pid)
	if err == nil {
		s.pidStart = st.start
		err = writeAtomic(filepath.Join(s.dir, statusFile), statusRecord{
			State:     stateRunning,
			PID:       pid,
			PGID:      pid,
			StartTime: st.start,
			Started:   s.started,
		})
	}
	if err != nil {
		// A command that runs unrecorded could be started again.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return fmt.Errorf("record the command (killed it): %w", err)
	}
	say("started %q as process %d", s.spec.Argv, pid)
	return nil
}

// loop supervises the command until it and every process it left are gone.
func (s *supervisor) loop(sigs <-chan os.Signal) {
	var timeout <-chan time.Time
	if s.spec.Timeout > 0 {
		t := time.NewTimer(time.Until(s.started.Add(s.spec.Timeout)))
		defer t.Stop()
		timeout = t.C
	}
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	var tick <-chan time.Time
	for {
		s.reap()
		if s.exited || s.stopping {
			if s.sweep() {
				return
			}
			if ticker == nil {
				ticker = time.NewTicker(sweepInterval)
				tick = ticker.C
			}
		}
		select {
		case sig := <-sigs:
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				s.stop(signalName(sig.(syscall.Signal)) + " received")
			}
		case <-timeout:
			timeout = nil
			if !s.exited && !s.stopping {
				s.timedOut = true
				s.stop(fmt.Sprintf("timed out after %v", s.spec.Timeout))
			}
		case <-tick:
		}
	}
}

// reap collects every child that has exited: the command and re-parented
// orphans alike.
func (s *supervisor) reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if pid == s.pid && !s.exited {
			s.exited, s.ws, s.ended = true, ws, time.Now()
		}
	}
}

// stop starts stopping the step: SIGTERM and SIGCONT to the command's
// group now (sweep signals the processes outside it), SIGKILL after grace.
func (s *supervisor) stop(reason string) {
	if s.stopping {
		return
	}
	s.stopping = true
	s.killAt = time.Now().Add(s.spec.Grace)
	say("%s; stopping the command's processes (SIGKILL after %v)", reason, s.spec.Grace)
	if !s.exited {
		// Until the command is reaped its PID, and so its group's ID,
		// cannot name anything else.
		s.groupSignalled = true
		_ = syscall.Kill(-s.pgid, syscall.SIGTERM)
		_ = syscall.Kill(-s.pgid, syscall.SIGCONT)
	}
}

// sweep signals the step's processes as the stopping phase requires and
// reports whether the command has exited and none of them is left.
func (s *supervisor) sweep() bool {
	fam, err := descendants(s.self)
	if err != nil {
		say("%v", err)
		if !s.exited && s.stopping && !time.Now().Before(s.killAt) {
			_ = syscall.Kill(-s.pgid, syscall.SIGKILL)
		}
		return s.exited
	}
	live := fam[:0]
	for _, p := range fam {
		if !p.gone() {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return s.exited
	}
	if !s.stopping {
		s.stop("the command exited but left processes running")
	}
	kill := !time.Now().Before(s.killAt)
	for _, p := range live {
		k := procKey{p.pid, p.start}
		switch {
		case kill:
			_ = signalProc(p.pid, p.start, syscall.SIGKILL)
		case s.signalled[k], s.groupSignalled && p.pgrp == s.pgid:
		default:
			s.signalled[k] = true
			_ = signalProc(p.pid, p.start, syscall.SIGTERM)
			_ = signalProc(p.pid, p.start, syscall.SIGCONT)
		}
	}
	if kill && !s.exited {
		_ = syscall.Kill(-s.pgid, syscall.SIGKILL)
	}
	return false
}

// finish records the outcome.
func (s *supervisor) finish() error {
	o := outcomeRecord{ExitCode: s.ws.ExitStatus(), TimedOut: s.timedOut, Started: s.started, Ended: s.ended}
	if s.ws.Signaled() {
		o.ExitCode, o.Signal = -1, signalName(s.ws.Signal())
		say("the command was killed by %s", o.Signal)
	} else {
		say("the command exited with status %d", o.ExitCode)
	}
	s.done = true
	return writeAtomic(filepath.Join(s.dir, statusFile), statusRecord{
		State:     stateExited,
		PID:       s.pid,
		PGID:      s.pgid,
		StartTime: s.pidStart,
		Started:   s.started,
		Outcome:   &o,
	})
}
