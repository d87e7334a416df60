package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Group is a command running as a child of the caller in a process group
// of its own, whose ID is the command's PID. Safe for concurrent use.
//
// When the command exits, whatever is left in its group is SIGKILLed
// before the command is reaped (while the group's ID cannot name another
// group); then Exited is closed. SIGKILL cannot be caught: those members
// are gone a moment later, once the kernel has delivered it (and their
// new parent has reaped them). Processes that left the group (setsid)
// and were re-parented away are not found: a supervisor that must catch
// them is a child subreaper (see Sweep).
type Group struct {
	pid    int
	proc   *os.Process
	exited chan struct{}
	err    error // the command's exit (cmd.Wait), set before exited is closed

	mu     sync.Mutex
	reaped bool      // the command is being reaped: its PID may name another process
	killAt time.Time // when Stop's grace ends; zero before Stop
}

// StartGroup starts cmd in a new process group, with parentDeath (unless
// 0) as its parent-death signal, and waits for it in the background. It
// sets cmd.SysProcAttr's Setpgid and Pdeathsig; the caller must not Wait
// for cmd itself.
//
// Linux sends the parent-death signal when the thread that forked the
// command exits, not the process; so the command is forked from, and
// waited for on, a thread locked to a goroutine of its own for the
// command's whole life.
func StartGroup(cmd *exec.Cmd, parentDeath syscall.Signal) (*Group, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pgid = true, 0
	cmd.SysProcAttr.Pdeathsig = parentDeath
	g := &Group{exited: make(chan struct{})}
	started := make(chan error, 1)
	go g.run(cmd, started)
	if err := <-started; err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Group) run(cmd *exec.Cmd, started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		started <- err
		return
	}
	g.pid, g.proc = cmd.Process.Pid, cmd.Process
	started <- nil

	// Not reaped yet, so the group's ID stays pinned while its leftovers
	// are killed; should waiting fail, nothing is pinned.
	pinned := waitExited(g.pid) == nil
	g.mu.Lock()
	g.reaped = true
	if pinned {
		_ = syscall.Kill(-g.pid, syscall.SIGKILL)
	}
	g.mu.Unlock()
	g.err = cmd.Wait()
	close(g.exited)
}

// waitExited blocks until the child pid has exited, without reaping it.
func waitExited(pid int) error {
	const pPID, wNOWAIT = 1, 0x1000000 // P_PID, WNOWAIT from <linux/wait.h>
	var info [128]byte                 // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|wNOWAIT, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
}

// Pid returns the command's PID, which is also its process group's ID.
func (g *Group) Pid() int { return g.pid }

// Exited is closed once the command has exited and been reaped, and its
// group SIGKILLed.
func (g *Group) Exited() <-chan struct{} { return g.exited }

// Err returns how the command ended, as exec.Cmd.Wait does; call it after
// Exited is closed.
func (g *Group) Err() error {
	<-g.exited
	return g.err
}

// Signal sends sig to the command alone. It returns os.ErrProcessDone once
// the command has been reaped; it never reaches another process.
func (g *Group) Signal(sig syscall.Signal) error { return g.proc.Signal(sig) }

// SignalGroup sends sig to every process in the command's group, until the
// command exits (then it returns os.ErrProcessDone: the group has been
// killed).
func (g *Group) SignalGroup(sig syscall.Signal) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reaped {
		return os.ErrProcessDone
	}
	return syscall.Kill(-g.pid, sig)
}

// Kill SIGKILLs the command, its group and every process below it, until
// the command exits.
func (g *Group) Kill() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reaped {
		return
	}
	// List the family first: once the command dies, its descendants are
	// re-parented away.
	var ids []ID
	if pids, err := Descendants(g.pid); err == nil {
		for _, pid := range pids {
			if id, err := Identify(pid); err == nil {
				ids = append(ids, id)
			}
		}
	}
	_ = syscall.Kill(-g.pid, syscall.SIGKILL)
	for _, id := range ids {
		_ = id.Signal(syscall.SIGKILL)
	}
}

// Stop stops the group: SIGTERM and SIGCONT to it, then, if the command
// has not exited after grace, Kill. It returns nil once the command has
// exited and the rest of its group has been sent SIGKILL (see Group), and
// ctx's error if ctx ends first; the command then keeps its grace and Stop may be called again
// (the grace counts from the first call).
func (g *Group) Stop(ctx context.Context, grace time.Duration) error {
	g.mu.Lock()
	first := g.killAt.IsZero()
	if first {
		g.killAt = time.Now().Add(max(grace, 0))
	}
	killAt := g.killAt
	g.mu.Unlock()
	if first {
		_ = g.SignalGroup(syscall.SIGTERM)
		_ = g.SignalGroup(syscall.SIGCONT)
	}
	timer := time.NewTimer(time.Until(killAt))
	defer timer.Stop()
	select {
	case <-g.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop process group %d: %w", g.pid, context.Cause(ctx))
	case <-timer.C:
	}
	g.Kill()
	select {
	case <-g.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop process group %d: %w", g.pid, context.Cause(ctx))
	}
}
