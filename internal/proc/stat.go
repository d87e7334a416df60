package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
)

// Stat is what /proc/<pid>/stat says of a process.
type Stat struct {
	PID, PPID, PGID int
	State           byte   // R, S, D, Z, T, …
	Start           uint64 // clock ticks after boot
}

// Exited reports whether the process has exited, reaped or not (a zombie).
func (s Stat) Exited() bool { return s.State == 'Z' || s.State == 'X' || s.State == 'x' }

// ID is the process's identity across PID reuse.
func (s Stat) ID() ID { return ID{PID: s.PID, Start: s.Start} }

// ReadStat reads /proc/<pid>/stat. A process that does not exist (any
// more) gives an error satisfying errors.Is(err, fs.ErrNotExist).
func ReadStat(pid int) (Stat, error) {
	var buf [512]byte
	b, err := readSmall("/proc/"+strconv.Itoa(pid)+"/stat", buf[:])
	if err != nil {
		return Stat{}, err
	}
	return parseStat(pid, b)
}

// readSmall reads a small file into buf, growing it if need be.
func readSmall(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		k, err := f.Read(buf[n:])
		n += k
		if errors.Is(err, io.EOF) {
			return buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// parseStat parses "pid (comm) state ppid pgrp session … starttime …",
// where comm may itself hold spaces and parentheses; starttime is field 22.
func parseStat(pid int, b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgrp, err2 := strconv.Atoi(string(f[2]))
	start, err3 := strconv.ParseUint(string(f[19]), 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return Stat{PID: pid, PPID: ppid, PGID: pgrp, State: f[0][0], Start: start}, nil
}

// ID names a process across PID reuse: its PID and its start time in
// clock ticks after boot (field 22 of /proc/<pid>/stat).
type ID struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"startTime"`
}

// Identify returns the ID of the process with this PID.
func Identify(pid int) (ID, error) {
	st, err := ReadStat(pid)
	if err != nil {
		return ID{}, err
	}
	return st.ID(), nil
}

// Alive reports whether the process exists, has not exited, and is the
// one this ID names (a reused PID has another start time).
func (id ID) Alive() bool {
	if id.PID <= 0 {
		return false
	}
	st, err := ReadStat(id.PID)
	return err == nil && st.Start == id.Start && !st.Exited()
}

// Signal sends sig to the process this ID names, and to no other: the
// process is pinned by a pidfd before its start time is checked, so a
// process that reused the PID cannot receive the signal. It returns
// os.ErrProcessDone when the process is gone.
func (id ID) Signal(sig syscall.Signal) error {
	p, err := Pin(id.PID)
	if err != nil {
		return os.ErrProcessDone
	}
	defer p.Release()
	if p.Stat.Start != id.Start {
		return os.ErrProcessDone
	}
	return p.Signal(sig)
}

// Pinned is a process held by a pidfd, with what /proc said of it once it
// was held: its signals reach that process or none, however often they
// are sent, whoever gets its PID next.
type Pinned struct {
	Stat Stat
	p    *os.Process
}

// Pin holds the process with this PID and reads its stat. An error means
// there is no such process (any more). The caller must Release it.
func Pin(pid int) (Pinned, error) {
	if pid <= 0 {
		return Pinned{}, os.ErrProcessDone
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return Pinned{}, err
	}
	st, err := ReadStat(pid)
	if err != nil {
		p.Release()
		return Pinned{}, err
	}
	return Pinned{Stat: st, p: p}, nil
}

// Signal sends sig to the pinned process; os.ErrProcessDone once it is
// gone.
func (p Pinned) Signal(sig syscall.Signal) error { return p.p.Signal(sig) }

// Release lets the pinned process go.
func (p Pinned) Release() { _ = p.p.Release() }

// signalNames are the Linux signals by number.
var signalNames = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
	7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
	13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD",
	18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU",
	23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM", 27: "SIGPROF",
	28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
}

// SignalName is the name of a signal as in <signal.h> ("SIGTERM"), or
// "SIGRTMIN+n" and "signal n" for the others.
func SignalName(sig syscall.Signal) string {
	n := int(sig)
	switch {
	case n > 0 && n < len(signalNames) && signalNames[n] != "":
		return signalNames[n]
	case n >= 34 && n <= 64:
		return "SIGRTMIN+" + strconv.Itoa(n-34)
	default:
		return "signal " + strconv.Itoa(n)
	}
}
