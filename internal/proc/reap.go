package proc

import (
	"errors"
	"fmt"
	"syscall"
)

const prSetChildSubreaper = 36 // PR_SET_CHILD_SUBREAPER, from <linux/prctl.h>

// BecomeSubreaper makes the calling process a child subreaper: descendants
// orphaned by their parent (a double fork, a daemon) are re-parented to it
// rather than to init, so it can find them, signal them and must reap them
// (see Reap). So the process is alone exactly when it has no child left.
func BecomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return fmt.Errorf("become child subreaper: %w", errno)
	}
	return nil
}

// Reap collects every child of the calling process that has exited,
// calling exited (if not nil) for each, and reports whether the process
// still has a child: one that runs, or one that exited since. It never
// blocks. For a child subreaper, false means that no process is left below
// it.
func Reap(exited func(pid int, ws syscall.WaitStatus)) (more bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG|syscall.WALL, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.ECHILD):
			return false
		case err != nil, pid == 0:
			return true
		}
		if exited != nil {
			exited(pid, ws)
		}
	}
}

// Sweep stops the processes below one process, pass after pass: its zero
// value is ready. It is meant for a child subreaper stopping everything
// below itself: call Reap, and while it reports children, Signal, once per
// tick and whenever a child exits, with kill set once the grace period is
// over.
type Sweep struct {
	group     int // a process group signalled as a whole (TermGroup)
	signalled map[ID]bool
}

// TermGroup sends SIGTERM and SIGCONT to process group pgid, whose ID must
// be pinned by the caller (its leader is the caller's child, not reaped
// yet), and notes that its members need no SIGTERM of their own.
func (s *Sweep) TermGroup(pgid int) {
	s.group = pgid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	_ = syscall.Kill(-pgid, syscall.SIGCONT)
}

// Signal signals every process below root that it finds alive: without
// kill, SIGTERM and SIGCONT, once per process (members of the TermGroup
// group had theirs); with kill, SIGKILL, every time. Every signal goes to
// the process found and no other (ID.Signal). It returns how many live
// processes it found; the error is for an unreadable /proc.
func (s *Sweep) Signal(root int, kill bool) (live int, err error) {
	pids, err := Descendants(root)
	if err != nil {
		return 0, err
	}
	if s.signalled == nil {
		s.signalled = map[ID]bool{}
	}
	for _, pid := range pids {
		st, err := ReadStat(pid)
		if err != nil || st.Exited() {
			continue
		}
		live++
		id := st.ID()
		switch {
		case kill:
			_ = id.Signal(syscall.SIGKILL)
		case s.signalled[id], s.group != 0 && st.PGID == s.group:
		default:
			s.signalled[id] = true
			_ = id.Signal(syscall.SIGTERM)
			_ = id.Signal(syscall.SIGCONT)
		}
	}
	return live, nil
}
