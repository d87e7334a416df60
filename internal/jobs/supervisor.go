package jobs

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

const (
	// The roles, in os.Args[1] (and so in ps); the run's directory is
	// their one argument.
	roleLauncher   = "lifeguard-jobs-launcher"
	roleSupervisor = "lifeguard-jobs-supervisor"

	// readyFD is the supervisor's end of the pipe on which it tells Start
	// (Go) that status.json records the command; lockFD is the run's lock,
	// held until the supervisor exits; goFD is the end of the pipe on which
	// Go tells it to start the command (one byte; EOF: exit, run nothing).
	readyFD = 3
	lockFD  = 4
	goFD    = 5

	// marker starts every line the supervisor writes to output.log.
	marker = "lifeguard-jobs: "

	// sweepInterval is how often the supervisor looks again for the
	// step's processes while it waits for them to go.
	sweepInterval = 20 * time.Millisecond
)

// Start re-executes the current binary as a launcher, which re-executes it
// as the supervisor; proc.Main (called first by the program's main, or a
// test binary's TestMain) turns those processes into what they are.
func init() {
	proc.Register(roleLauncher, withDir(launch))
	proc.Register(roleSupervisor, withDir(supervise))
}

// withDir adapts a role to its arguments: the run's directory.
func withDir(role func(dir string) int) func(args []string) int {
	return func(args []string) int {
		if len(args) != 1 || args[0] == "" {
			say("want the run's directory as the one argument, got %q", args)
			return 2
		}
		return role(args[0])
	}
}

// say writes a line to the supervisor's log (its standard error).
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s%s\n", time.Now().UTC().Format(time.RFC3339Nano), marker, fmt.Sprintf(format, args...))
}

// launch starts the supervisor in a new session and exits without waiting
// for it, so the supervisor is re-parented to init (or the nearest child
// subreaper), which reaps it: the agent never has it as a child.
func launch(dir string) int {
	cmd, err := proc.Command(roleSupervisor, dir)
	if err != nil {
		say("%v", err)
		return 1
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.ExtraFiles = []*os.File{os.NewFile(readyFD, "ready"), os.NewFile(lockFD, "lock"), os.NewFile(goFD, "go")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
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
	syscall.CloseOnExec(goFD)
	ready := os.NewFile(readyFD, "ready")
	defer ready.Close()
	goPipe := os.NewFile(goFD, "go")
	defer goPipe.Close()

	// Descendants that daemonize (double fork, setsid) are re-parented to
	// us rather than to init, so we can find them, and we reap them.
	if err := proc.BecomeSubreaper(); err != nil {
		say("%v", err)
		return 1
	}
	s, err := newSupervisor(dir)
	if err != nil {
		say("%v", err)
		return 1
	}
	// Wait for Go. Its only writer is the agent's Prepared: EOF means it
	// was released, or the agent died, before the command was to start.
	var b [1]byte
	if n, _ := goPipe.Read(b[:]); n == 0 {
		say("released before the command was started; nothing was run")
		return 0
	}
	_ = goPipe.Close()
	// Prepare writes the spec after launching the supervisor, and before
	// Go can be called.
	if err := readJSON(filepath.Join(dir, specFile), &s.spec); err != nil {
		say("read spec: %v", err)
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

	timedOut bool
	stopping bool
	killAt   time.Time
	sweep    proc.Sweep
}

// newSupervisor records the supervisor's identity and opens the command's
// files; the spec is read once Go has been received.
func newSupervisor(dir string) (*supervisor, error) {
	s := &supervisor{dir: dir, self: os.Getpid()}
	me, err := proc.Identify(s.self)
	if err != nil {
		return nil, fmt.Errorf("read own start time: %w", err)
	}
	// Not fsynced: the pid file is a liveness check within one boot (a
	// power loss ends the supervisor too, and a pid file it cut short is
	// read as no supervisor, see Handle.check); renamed into place, it is
	// never seen half written.
	if err := writeVolatile(filepath.Join(dir, pidFile), pidRecord{PID: me.PID, StartTime: me.Start}); err != nil {
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
	id, err := proc.Identify(pid)
	if err == nil {
		s.pidStart = id.Start
		err = writeAtomic(filepath.Join(s.dir, statusFile), statusRecord{
			State:     stateRunning,
			PID:       pid,
			PGID:      pid,
			StartTime: id.Start,
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
		// As a child subreaper, the supervisor has a child as long as a
		// process of the step is left anywhere below it.
		more := proc.Reap(s.exit)
		if s.exited && !more {
			return
		}
		if s.exited || s.stopping {
			s.signal()
			if ticker == nil {
				ticker = time.NewTicker(sweepInterval)
				tick = ticker.C
			}
		}
		select {
		case sig := <-sigs:
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				s.stop(proc.SignalName(sig.(syscall.Signal)) + " received")
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

// exit notes a reaped child: the command, or a re-parented orphan.
func (s *supervisor) exit(pid int, ws syscall.WaitStatus) {
	if pid == s.pid && !s.exited {
		s.exited, s.ws, s.ended = true, ws, time.Now()
	}
}

// stop starts stopping the step: SIGTERM and SIGCONT to the command's
// group now (signal takes care of the processes outside it), SIGKILL after
// grace.
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
		s.sweep.TermGroup(s.pgid)
	}
}

// signal signals the step's processes as the stopping phase requires; the
// supervisor has a child left, so the command runs or left processes.
func (s *supervisor) signal() {
	if !s.stopping {
		s.stop("the command exited but left processes running")
	}
	kill := !time.Now().Before(s.killAt)
	if _, err := s.sweep.Signal(s.self, kill); err != nil {
		say("%v", err)
	}
	if kill && !s.exited {
		_ = syscall.Kill(-s.pgid, syscall.SIGKILL)
	}
}

// finish records the outcome.
func (s *supervisor) finish() error {
	o := outcomeRecord{ExitCode: s.ws.ExitStatus(), TimedOut: s.timedOut, Started: s.started, Ended: s.ended}
	if s.ws.Signaled() {
		o.ExitCode, o.Signal = -1, proc.SignalName(s.ws.Signal())
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
