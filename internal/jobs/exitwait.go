package jobs

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

// sysPidfdOpen is pidfd_open(2)'s number, the same on every architecture.
const sysPidfdOpen = 434

// errNoPidfd says the process cannot be waited for on a pidfd (the kernel
// has none); the caller polls instead.
var errNoPidfd = errors.New("pidfd_open not supported")

// waitExit blocks until the process id names has exited (or is not that
// process), or ctx ends. It waits on a pidfd, which becomes readable when
// the process exits, through the runtime's poller: no thread is held and
// nothing polls. It returns nil once the process is gone, ctx's error, or
// errNoPidfd.
func waitExit(ctx context.Context, id proc.ID) error {
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(id.PID), 0, 0)
	switch {
	case errno == syscall.ESRCH:
		return nil
	case errno != 0:
		return errNoPidfd
	}
	if err := syscall.SetNonblock(int(fd), true); err != nil {
		syscall.Close(int(fd))
		return errNoPidfd
	}
	syscall.CloseOnExec(int(fd))
	f := os.NewFile(fd, "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return errNoPidfd
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
	defer stop()
	// The process is pinned by the pidfd: if it is not the one id names
	// (its start time differs), the pid was reused and id's has exited.
	// Read calls the function first, then after each readiness event;
	// readiness is reset before each call, so an exit after the check
	// still wakes the wait.
	err = rc.Read(func(uintptr) bool { return !id.Alive() })
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		// The file is not pollable (os.NewFile found it blocking, or the
		// poller refused it).
		return errNoPidfd
	}
}
