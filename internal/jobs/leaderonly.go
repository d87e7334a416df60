package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

// Environment variables a leader-only command finds in its environment.
const (
	// EnvFencingToken holds the leadership's fencing token, a decimal
	// number that strictly increases with every new leader: a resource
	// that remembers the highest token it has seen can refuse writes from
	// a deposed leader (see docs/leader.md).
	EnvFencingToken = "LIFEGUARD_FENCING_TOKEN"
	// EnvLeaseDeadline holds, in RFC 3339 (UTC), the time at which the
	// leader would give up if it could not renew its lease from the
	// command's start on; renewals move the real deadline later, so a
	// command that outlives it is not necessarily deposed, but one that
	// acts after it should check its fencing token first.
	EnvLeaseDeadline = "LIFEGUARD_LEASE_DEADLINE"
	// EnvJob and EnvScheduledTime name a scheduled job's run: the job and
	// its slot, the time it was scheduled for (RFC 3339, UTC), which
	// together identify the run across fail-overs.
	EnvJob           = "LIFEGUARD_JOB"
	EnvScheduledTime = "LIFEGUARD_SCHEDULED_TIME"
)

// groupGoneBound bounds how long RunLeaderOnly waits, after the command
// has been reaped and its group sent SIGKILL, for the group's last members
// to die.
const groupGoneBound = 2 * time.Second

// groupGonePoll is how often RunLeaderOnly looks for the group's members
// while it waits for them to go.
const groupGonePoll = 5 * time.Millisecond

// ErrNotLeading is returned (wrapped) by RunLeaderOnly when leadership had
// already ended before the command could start: it was not started.
var ErrNotLeading = errors.New("not leading")

// LeaderOnly is a command that may run only while this instance leads.
type LeaderOnly struct {
	// Argv is exec'd directly, without a shell. An Argv[0] without a
	// slash is looked up in the absolute directories of Env's PATH (see
	// Spec.Argv).
	Argv []string
	// Env is the command's environment ("K=V"); nil means the agent's own.
	// EnvFencingToken and EnvLeaseDeadline are set over it.
	Env []string
	// Dir is the command's working directory; empty means the caller's.
	Dir string
	// Stdout and Stderr receive the command's output; nil discards it.
	// Its standard input is /dev/null.
	Stdout, Stderr io.Writer

	// Token is the leadership's fencing token (at least 1).
	Token uint64
	// Deadline is the lease's current deadline: when the leader would give
	// up without a renewal. Required.
	Deadline time.Time
	// Grace is the time between SIGTERM and SIGKILL when the command is
	// stopped. It must be positive and fit, with the time needed to
	// notice the loss, inside the lease: the leader stops leading before
	// its lease could expire on another instance's clock, and the command
	// must be gone by then.
	Grace time.Duration
	// Timeout, when positive, is how long the command may run before it
	// is stopped the same way.
	Timeout time.Duration
}

// Validate checks s.
func (s LeaderOnly) Validate() error {
	var errs []error
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		errs = append(errs, errors.New("command: empty; give the program and its arguments"))
	}
	if s.Token == 0 {
		errs = append(errs, errors.New("fencing token: 0 is no token; leadership tokens start at 1"))
	}
	if s.Deadline.IsZero() {
		errs = append(errs, errors.New("lease deadline: required"))
	}
	if s.Grace <= 0 {
		errs = append(errs, fmt.Errorf("grace: %s; must be positive (and fit inside the lease)", s.Grace))
	}
	if s.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: %s is negative; use 0 for none", s.Timeout))
	}
	for _, kv := range s.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("environment entry %q is not K=V", kv))
		}
	}
	return errors.Join(errs...)
}

// StopReason says why a leader-only command was stopped.
type StopReason string

// Stop reasons.
const (
	// NotStopped: the command exited on its own.
	NotStopped StopReason = ""
	// StoppedLeadership: leadership ended (ctx was done).
	StoppedLeadership StopReason = "leadership lost"
	// StoppedTimeout: its Timeout expired.
	StoppedTimeout StopReason = "timeout"
)

// RunResult is how a leader-only command ended.
type RunResult struct {
	// Outcome is its exit status (ExitCode, Signal), when it started and
	// ended; TimedOut is set when it was stopped for its Timeout.
	Outcome
	// Stopped says why lifeguard stopped it, if it did.
	Stopped StopReason
	// PID is the command's PID, also its process group's ID.
	PID int
}

// String describes the result for people and the run history: "exit 0",
// "exit 3", "signal SIGKILL", "stopped (leadership lost): signal SIGTERM".
func (r RunResult) String() string {
	s := "exit " + strconv.Itoa(r.ExitCode)
	if r.Signal != "" {
		s = "signal " + r.Signal
	}
	if r.Stopped != NotStopped {
		s = "stopped (" + string(r.Stopped) + "): " + s
	}
	return s
}

// RunLeaderOnly runs s.Argv while ctx, the leadership, lasts: in a process
// group of its own, with SIGKILL as its parent-death signal (it must not
// run on beside a new leader when the agent dies), and with the fencing
// token and the lease deadline in its environment. When ctx is done first,
// or the timeout expires, the group is stopped: SIGTERM (and SIGCONT),
// then SIGKILL to the group and every process below the command after
// s.Grace.
//
// It returns once the command has exited and been reaped and its group
// has been sent SIGKILL, and after waiting (up to a bound of 2 s) for the
// group's last members to die: leader-only work has returned before
// the caller releases the lease. Processes that left the group (setsid)
// are killed only when the grace expires, as descendants of a command
// still running; a command that must not leave any behind runs under a
// supervisor instead (Start).
//
// It returns an error, without starting anything, when s is invalid,
// Argv[0] is not an executable file, or ctx is already done (wrapping
// ErrNotLeading); the command's own failure is in the RunResult, not an
// error.
func RunLeaderOnly(ctx context.Context, s LeaderOnly) (RunResult, error) {
	if err := s.Validate(); err != nil {
		return RunResult{}, fmt.Errorf("run leader-only command: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return RunResult{}, fmt.Errorf("run leader-only command %s: %w (%w)", s.Argv[0], ErrNotLeading, context.Cause(ctx))
	}
	env := s.Env
	if env == nil {
		env = os.Environ()
	}
	env = proc.MergeEnv(append(env[:len(env):len(env)],
		EnvFencingToken+"="+strconv.FormatUint(s.Token, 10),
		EnvLeaseDeadline+"="+s.Deadline.UTC().Format(time.RFC3339Nano)))
	wd := s.Dir
	if wd == "" {
		var err error
		if wd, err = os.Getwd(); err != nil {
			return RunResult{}, fmt.Errorf("run leader-only command: working directory: %w", err)
		}
	}
	path, err := lookPath(s.Argv[0], env, wd)
	if err != nil {
		return RunResult{}, fmt.Errorf("run leader-only command: %w", err)
	}
	cmd := &exec.Cmd{Path: path, Args: s.Argv, Env: env, Dir: s.Dir, Stdout: s.Stdout, Stderr: s.Stderr}
	// Output copied through a pipe (a Writer that is not a file) must not
	// keep the run open after the command, through a process that left
	// its group and holds the pipe.
	cmd.WaitDelay = s.Grace
	g, err := proc.StartGroup(cmd, syscall.SIGKILL)
	if err != nil {
		return RunResult{}, fmt.Errorf("run leader-only command %s: %w", s.Argv[0], err)
	}
	res := RunResult{PID: g.Pid()}
	res.Started = time.Now()

	var timeout <-chan time.Time
	if s.Timeout > 0 {
		t := time.NewTimer(s.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-g.Exited():
	case <-ctx.Done():
		res.Stopped = StoppedLeadership
	case <-timeout:
		res.Stopped, res.TimedOut = StoppedTimeout, true
	}
	if res.Stopped != NotStopped {
		// Stop ends once the command has exited, SIGKILL included: it
		// needs no deadline of its own.
		_ = g.Stop(context.WithoutCancel(ctx), s.Grace)
	}
	<-g.Exited()
	res.Ended = time.Now()
	res.ExitCode, res.Signal = exitStatus(g.Err(), cmd)
	waitGroupGone(g.Pid())
	return res, nil
}

// exitStatus turns the end of cmd into an exit code (-1 when a signal
// killed it) and a signal name.
func exitStatus(err error, cmd *exec.Cmd) (int, string) {
	if cmd.ProcessState != nil {
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			if ws.Signaled() {
				return -1, proc.SignalName(ws.Signal())
			}
			return ws.ExitStatus(), ""
		}
	}
	if err != nil {
		return -1, ""
	}
	return 0, ""
}

// waitGroupGone waits, up to groupGoneBound, until process group pgid has
// no live member left: members that have exited but wait to be reaped by
// their new parent (zombies) can no longer act. Looking for them takes a
// scan of /proc, done only while the group has members.
func waitGroupGone(pgid int) {
	deadline := time.Now().Add(groupGoneBound)
	for proc.GroupExists(pgid) && liveMember(pgid) && time.Now().Before(deadline) {
		time.Sleep(groupGonePoll)
	}
}

// liveMember reports whether process group pgid has a member that has not
// exited (true when it cannot tell).
func liveMember(pgid int) bool {
	procs, err := proc.Scan()
	if err != nil {
		return true
	}
	for _, p := range procs {
		if p.PGID == pgid && !p.Exited() {
			return true
		}
	}
	return false
}
