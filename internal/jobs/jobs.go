package jobs

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

// DefaultGrace is the time between SIGTERM and SIGKILL when Spec.Grace is 0.
const DefaultGrace = 10 * time.Second

// pollInterval is how often Wait looks at the status file and the
// supervisor's liveness when it cannot wait for the supervisor's exit
// itself: while the supervisor is starting, or when the kernel has no
// pidfd (before Linux 5.3).
const pollInterval = 25 * time.Millisecond

// supervisorLogTail is how much of supervisor.log a failed Start quotes.
const supervisorLogTail = 2 << 10

// ErrSupervisorLost is returned (wrapped) by Wait and Stop when the
// supervisor exited, or was killed, without recording an outcome.
var ErrSupervisorLost = errors.New("supervisor exited without recording an outcome")

// ErrAlreadyStarted is returned (wrapped) by Start when a run was already
// started in the directory; adopt it, or rerun in a new directory.
var ErrAlreadyStarted = errors.New("a run was already started in this directory")

// Spec is one supervised command.
type Spec struct {
	// Dir is a directory owned by this run, created if missing. It holds
	// spec.json, status.json, output.log and the supervisor's files.
	Dir string
	// Argv is exec'd directly, without a shell. An Argv[0] without a
	// slash is looked up in the absolute directories of Env's PATH (the
	// default search path /usr/local/bin:/usr/bin:/bin when Env has no
	// PATH); a relative one with a slash is taken from the agent's working
	// directory at Start, which is also the command's.
	Argv []string
	// Env is the command's whole environment ("K=V"); nil means the
	// agent's own (os.Environ at Start). Of entries with the same name,
	// the last is kept, as os/exec does.
	Env []string
	// Timeout, when positive, is how long the command may run before it
	// is stopped (SIGTERM to its group, SIGKILL after Grace).
	Timeout time.Duration
	// Grace is the time between SIGTERM and SIGKILL; 0 means DefaultGrace.
	Grace time.Duration
}

// Outcome is how a command ended.
type Outcome struct {
	// ExitCode is the command's exit status; -1 when a signal killed it.
	// A command that could not be executed has 127 (not found) or 126
	// (any other reason), as in the shell, and output.log says why.
	ExitCode int
	// Signal names the signal that killed the command ("SIGTERM"), if
	// one did.
	Signal string
	// TimedOut is true when the command was stopped because its Timeout
	// expired, however it then ended.
	TimedOut bool
	// Started and Ended are when the command was started and when it
	// exited (its leftover processes may have been stopped after).
	Started, Ended time.Time
}

// Handle is a supervised run, from Start or Adopt. It holds nothing but
// the run's directory: every method reads the run's files, so a Handle is
// safe for concurrent use and handles to the same run are interchangeable.
// A Handle needs no closing.
type Handle struct {
	dir string
}

// Start claims s.Dir for a run and launches a detached supervisor, in a
// session of its own and without a parent-death signal, which runs the
// command and records its outcome. It returns once the supervisor has
// durably recorded the running command, so Adopt after a crash right after
// Start finds it. It fails with ErrAlreadyStarted when a run was already
// started in s.Dir, and, without claiming the directory, when s is invalid
// or Argv[0] is not an executable file. Start is Prepare, then Go.
func Start(s Spec) (*Handle, error) {
	p, err := Prepare(s)
	if err != nil {
		return nil, err
	}
	return p.Go()
}

// Prepared is a run whose supervisor is being started, or waits, and will
// start the command only when Go tells it to. Its methods may be called
// from any goroutine.
type Prepared struct {
	h       *Handle
	logPath string

	mu     sync.Mutex
	goW    *os.File // the agent's end of the go pipe; nil once used or released
	readyR *os.File
}

// Prepare does what Start does up to the command: it claims s.Dir (spec.json,
// the lock) and launches the supervisor, which initialises, writes its pid
// file and then waits, without running anything, for Go. It returns as soon
// as the supervisor is launched, so that its start-up (a re-execution of the
// whole binary) overlaps whatever the caller does meanwhile.
//
// The supervisor waits on a pipe whose only writer is the Prepared: if Go
// is never called (Release, or the caller's process dies), it reads EOF and
// exits without running the command, leaving the directory claimed, with no
// status.json, so that Adopt reports the run not adoptable (ok=false) and
// Start refuses the directory (ErrAlreadyStarted). Errors are Start's.
func Prepare(s Spec) (*Prepared, error) {
	if s.Dir == "" {
		return nil, errors.New("start job: empty directory")
	}
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("start job: directory: %w", err)
	}
	rec, err := newSpecRecord(s)
	if err != nil {
		return nil, fmt.Errorf("start job in %s: %w", dir, err)
	}
	goW, readyR, err := prepare(dir, rec)
	if err != nil {
		return nil, fmt.Errorf("start job in %s: %w", dir, err)
	}
	return &Prepared{h: &Handle{dir: dir}, logPath: filepath.Join(dir, supervisorFile), goW: goW, readyR: readyR}, nil
}

// Dir returns the run's directory (absolute).
func (p *Prepared) Dir() string { return p.h.dir }

// Go tells the supervisor to start the command and returns, as Start does,
// once the supervisor has durably recorded the running command (or its
// outcome, when it could not be executed). It fails when the supervisor
// exited before (it could not initialise, or was killed), and when Go or
// Release was called before; whether the command started is then unknown
// only if the supervisor died after Go's byte reached it, as with Start.
func (p *Prepared) Go() (*Handle, error) {
	p.mu.Lock()
	goW, readyR := p.goW, p.readyR
	p.goW, p.readyR = nil, nil
	p.mu.Unlock()
	if goW == nil {
		return nil, fmt.Errorf("start job in %s: already started or released", p.h.dir)
	}
	defer readyR.Close()
	_, err := goW.Write([]byte{'g'})
	goW.Close()
	if err != nil {
		// EPIPE: the supervisor is gone, and nothing was started.
		return nil, fmt.Errorf("start job in %s: start supervisor: it exited before the command was started: %w%s", p.h.dir, err, quoteLog(p.logPath))
	}
	// The supervisor writes one byte once status.json is durable; EOF
	// means it exited first.
	var b [1]byte
	if n, _ := readyR.Read(b[:]); n == 0 {
		return nil, fmt.Errorf("start job in %s: start supervisor: it exited before recording the command%s", p.h.dir, quoteLog(p.logPath))
	}
	return p.h, nil
}

// Release tells the supervisor to exit without starting the command; the
// directory stays claimed. It does nothing after Go or a first Release.
func (p *Prepared) Release() {
	p.mu.Lock()
	goW, readyR := p.goW, p.readyR
	p.goW, p.readyR = nil, nil
	p.mu.Unlock()
	if goW != nil {
		goW.Close()
		readyR.Close()
	}
}

// newSpecRecord checks s and resolves what Start decides for the command.
func newSpecRecord(s Spec) (specRecord, error) {
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return specRecord{}, errors.New("empty argv")
	}
	if s.Timeout < 0 {
		return specRecord{}, fmt.Errorf("negative timeout %v", s.Timeout)
	}
	if s.Grace < 0 {
		return specRecord{}, fmt.Errorf("negative grace %v", s.Grace)
	}
	env := s.Env
	if env == nil {
		env = os.Environ()
	}
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return specRecord{}, fmt.Errorf("environment entry %q is not K=V", kv)
		}
	}
	env = proc.MergeEnv(env)
	wd, err := os.Getwd()
	if err != nil {
		return specRecord{}, fmt.Errorf("working directory: %w", err)
	}
	path, err := lookPath(s.Argv[0], env, wd)
	if err != nil {
		return specRecord{}, err
	}
	return specRecord{
		Path:    path,
		Argv:    s.Argv,
		Env:     env,
		WorkDir: wd,
		Timeout: s.Timeout,
		Grace:   cmp.Or(s.Grace, DefaultGrace),
	}, nil
}

// lookPath resolves name as execvp would, with the PATH of env (the
// default search path when env has none) and relative to wd, except that
// relative PATH entries are skipped.
func lookPath(name string, env []string, wd string) (string, error) {
	if strings.Contains(name, "/") {
		path := name
		if !filepath.IsAbs(path) {
			path = filepath.Join(wd, path)
		}
		if err := executable(path); err != nil {
			return "", fmt.Errorf("command %s: %w", name, err)
		}
		return path, nil
	}
	pathEnv := "/usr/local/bin:/usr/bin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for d := range strings.SplitSeq(pathEnv, ":") {
		if !filepath.IsAbs(d) {
			continue // "" and "." would make the agent's directory a source of commands
		}
		path := filepath.Join(d, name)
		if executable(path) == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("command %s: %w in PATH %q", name, exec.ErrNotFound, pathEnv)
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if fi.Mode()&0o111 == 0 {
		return fs.ErrPermission
	}
	return nil
}

// prepare claims dir and launches the supervisor (spawn). It returns the
// agent's ends of the go pipe (written by Go) and of the ready pipe.
func prepare(dir string, rec specRecord) (goW, readyR *os.File, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create directory: %w", err)
	}
	// The lock is held from here until the supervisor exits: this open
	// file description passes to the launcher and on to the supervisor.
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open lock: %w", err)
	}
	defer lock.Close()
	if err := flock(lock, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil, ErrAlreadyStarted
		}
		return nil, nil, fmt.Errorf("lock: %w", err)
	}
	specPath := filepath.Join(dir, specFile)
	if _, err := os.Lstat(specPath); err == nil {
		return nil, nil, ErrAlreadyStarted
	}
	logPath := filepath.Join(dir, supervisorFile)
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open supervisor log: %w", err)
	}
	defer log.Close()
	// Both pipes are close-on-exec here (os.Pipe), so no other process the
	// agent starts holds an end: the supervisor reads EOF on the go pipe
	// as soon as the agent closes its end or dies.
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("create pipe: %w", err)
	}
	goR, goW, err := os.Pipe()
	if err != nil {
		readyR.Close()
		readyW.Close()
		return nil, nil, fmt.Errorf("create pipe: %w", err)
	}
	err = spawn(dir, log, readyW, lock, goR)
	readyW.Close() // the supervisor has its own
	goR.Close()
	if err != nil {
		readyR.Close()
		goW.Close()
		return nil, nil, fmt.Errorf("start supervisor: %w%s", err, quoteLog(logPath))
	}
	// The spec is written while the supervisor starts up; it reads it
	// only once Go has told it to start the command, which is after this.
	// Created exclusively, it claims the directory for this run.
	if err := createExclusive(specPath, rec); err != nil {
		readyR.Close()
		goW.Close() // the supervisor exits, having run nothing
		if errors.Is(err, fs.ErrExist) {
			return nil, nil, ErrAlreadyStarted
		}
		return nil, nil, fmt.Errorf("write spec: %w", err)
	}
	return goW, readyR, nil
}

// siblingFlags are the clone flags that make the supervisor the agent's
// sibling; a variable for tests, which take the launcher's path by making
// them invalid.
var siblingFlags uintptr = syscall.CLONE_PARENT

// spawn starts the supervisor in a session of its own, as a sibling of the
// agent (CLONE_PARENT): the agent's parent, not the agent, is its parent
// and reaps it, and the agent never has it as a child. Where that cannot
// be done (the agent is the init of its PID namespace, which has no parent
// to share), the launcher starts it instead, at the cost of one more
// process start, and init or the nearest child subreaper reaps it.
func spawn(dir string, log, readyW, lock, goR *os.File) error {
	cmd, err := proc.Command(roleSupervisor, dir)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = []*os.File{readyW, lock, goR} // readyFD, lockFD, goFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Cloneflags: siblingFlags}
	switch err := cmd.Start(); {
	case err == nil:
		return cmd.Process.Release() // not the agent's child: never waited for
	case !errors.Is(err, syscall.EINVAL):
		return err
	}
	if cmd, err = proc.Command(roleLauncher, dir); err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = []*os.File{readyW, lock, goR}
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("launcher: %w", err)
	}
	return nil
}

// quoteLog is ": " and the end of the supervisor's log, if it has one.
func quoteLog(path string) string {
	b := bytes.TrimSpace(tail(path, supervisorLogTail))
	if len(b) == 0 {
		return ""
	}
	return ": " + string(b)
}

// Adopt reattaches to the run in dir. It returns ok=false, and a nil
// error, when dir has no live supervisor and no recorded outcome: nothing
// was ever started there, or the supervisor died without recording one
// (then what is left of the command's process group is SIGKILLed first).
// An outcome recorded while no agent ran is found by Wait at once. Errors
// are for unreadable files.
func Adopt(dir string) (h *Handle, ok bool, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, false, fmt.Errorf("adopt job in %s: %w", dir, err)
	}
	h = &Handle{dir: abs}
	if _, err := h.check(); errors.Is(err, ErrSupervisorLost) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("adopt job in %s: %w", abs, err)
	}
	return h, true, nil
}

// Dir returns the run's directory (absolute).
func (h *Handle) Dir() string { return h.dir }

// Wait blocks until the command's outcome is recorded and returns it. It
// returns an error wrapping ErrSupervisorLost when the supervisor died
// without recording one (after SIGKILLing what is left of the command's
// process group), and ctx's error when ctx ends first. A recorded outcome
// is returned even when ctx has already ended.
func (h *Handle) Wait(ctx context.Context) (Outcome, error) {
	return h.wait(ctx, false)
}

// Stop asks the supervisor to stop the command now (SIGTERM to its
// process group, SIGKILL after the grace period) and waits for the
// outcome, as Wait. Stopping a run that has ended returns its outcome. If
// ctx ends first, Stop returns ctx's error and the supervisor carries on
// stopping the command; Stop may be called again.
func (h *Handle) Stop(ctx context.Context) (Outcome, error) {
	return h.wait(ctx, true)
}

// Output returns the last n bytes of the command's combined standard output
// and error (output.log); an empty slice when there is none or it cannot
// be read.
func (h *Handle) Output(n int) []byte {
	return tail(filepath.Join(h.dir, outputFile), n)
}

// wait waits until there is an outcome; with stop, it signals the
// supervisor as soon as it knows which process that is. The supervisor
// records the outcome and then exits, so once it runs Wait sleeps until
// its exit (on a pidfd, through the runtime's poller) and reads
// status.json once more: the outcome is seen as soon as it is durable,
// not at the next tick of a poll. It polls only while it cannot know the
// supervisor's process.
func (h *Handle) wait(ctx context.Context, stop bool) (Outcome, error) {
	var tick *time.Ticker
	signalled := false
	for {
		sup, err := h.check()
		if err != nil {
			return Outcome{}, fmt.Errorf("job in %s: %w", h.dir, err)
		}
		if sup.outcome != nil {
			return *sup.outcome, nil
		}
		if stop && !signalled && sup.pid != nil {
			signalled = true
			err := sup.pid.id().Signal(syscall.SIGTERM)
			if err != nil && !errors.Is(err, os.ErrProcessDone) {
				return Outcome{}, fmt.Errorf("stop job in %s: %w", h.dir, err)
			}
			continue // look again at once: it may have been gone
		}
		if sup.pid != nil {
			switch err := waitExit(ctx, sup.pid.id()); {
			case err == nil:
				continue // it exited: the outcome is recorded, or it is lost
			case ctx.Err() != nil:
				return Outcome{}, fmt.Errorf("job in %s: %w", h.dir, context.Cause(ctx))
			}
			// No pidfd: poll.
		}
		if tick == nil {
			tick = time.NewTicker(pollInterval)
			defer tick.Stop()
		}
		select {
		case <-ctx.Done():
			return Outcome{}, fmt.Errorf("job in %s: %w", h.dir, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// supervision is what check found: an outcome, or a live supervisor
// (whose pid record is nil while it is starting).
type supervision struct {
	outcome *Outcome
	pid     *pidRecord
}

// check looks at the run once. It returns ErrSupervisorLost when there is
// no outcome and no live supervisor, after cleaning up after the dead one.
func (h *Handle) check() (supervision, error) {
	if o, err := h.recorded(); o != nil || err != nil {
		return supervision{outcome: o}, err
	}
	var rec pidRecord
	err := readJSON(filepath.Join(h.dir, pidFile), &rec)
	switch {
	case err == nil && rec.PID > 0:
		if rec.id().Alive() {
			return supervision{pid: &rec}, nil
		}
	case err == nil, errors.Is(err, fs.ErrNotExist), errors.Is(err, errDecode):
		// Start, the launcher or the supervisor may be on its way. A pid
		// file that does not decode is one a power loss cut short
		// (supervisor.pid is written without fsync): no process of this
		// boot wrote it, and the lock says whether one runs.
		held, err := lockHeld(h.dir)
		if err != nil {
			return supervision{}, err
		}
		if held {
			return supervision{}, nil
		}
	default:
		return supervision{}, err
	}
	// The supervisor is gone; it may have recorded an outcome just before.
	if o, err := h.recorded(); o != nil || err != nil {
		return supervision{outcome: o}, err
	}
	h.killLeftovers()
	return supervision{}, ErrSupervisorLost
}

// recorded returns the outcome in status.json, if there is one.
func (h *Handle) recorded() (*Outcome, error) {
	st, ok, err := readStatus(h.dir)
	if err != nil || !ok || st.State != stateExited {
		return nil, err
	}
	o := st.Outcome.outcome()
	return &o, nil
}

// killLeftovers SIGKILLs the command and its process group after the
// supervisor died without an outcome. The command should already have died
// of its parent-death signal, but its group may not have.
func (h *Handle) killLeftovers() {
	st, ok, err := readStatus(h.dir)
	if err != nil || !ok || st.State != stateRunning || st.PGID <= 0 {
		return
	}
	cmd := proc.ID{PID: st.PID, Start: st.StartTime}
	_ = cmd.Signal(syscall.SIGKILL)
	if st.PGID == st.PID && proc.GroupOwned(cmd) {
		_ = syscall.Kill(-st.PGID, syscall.SIGKILL)
	}
}
