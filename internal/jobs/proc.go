package jobs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// procStat is what /proc/<pid>/stat says of a process.
type procStat struct {
	pid, ppid, pgrp int
	state           byte
	start           uint64 // clock ticks after boot
}

// gone reports whether the process has exited, reaped or not.
func (p procStat) gone() bool { return p.state == 'Z' || p.state == 'X' || p.state == 'x' }

// readStat reads /proc/<pid>/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(pid, b)
}

// parseStat parses "pid (comm) state ppid pgrp session … starttime …",
// where comm may itself hold spaces and parentheses; starttime is field 22.
func parseStat(pid int, b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgrp, err2 := strconv.Atoi(string(f[2]))
	start, err3 := strconv.ParseUint(string(f[19]), 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return procStat{pid: pid, ppid: ppid, pgrp: pgrp, state: f[0][0], start: start}, nil
}

// alive reports whether the process with this PID and start time exists
// and has not exited.
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := readStat(pid)
	return err == nil && st.start == start && !st.gone()
}

// listProcs lists every process /proc shows. Processes that vanish while
// it reads are skipped.
func listProcs() ([]procStat, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	out := make([]procStat, 0, len(names))
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		if st, err := readStat(pid); err == nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// descendants returns the processes below root in the process tree, root
// excluded, zombies included.
func descendants(root int) ([]procStat, error) {
	procs, err := listProcs()
	if err != nil {
		return nil, err
	}
	children := map[int][]procStat{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p)
	}
	var out []procStat
	queue := []int{root}
	seen := map[int]bool{root: true}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if !seen[c.pid] {
				seen[c.pid] = true
				out = append(out, c)
				queue = append(queue, c.pid)
			}
		}
	}
	return out, nil
}

// signalProc sends sig to the process with this PID and start time, and to
// no other: the process is pinned by a pidfd before its start time is
// checked, so a process that reused the PID cannot receive the signal.
func signalProc(pid int, start uint64, sig syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	defer p.Release()
	st, err := readStat(pid)
	if err != nil || st.start != start {
		return os.ErrProcessDone
	}
	return p.Signal(sig)
}

// groupOwned reports whether process group pgid is still the one whose
// leader had PID pgid and start time leaderStart. A PID stays allocated
// while a process group of that ID has members, so the number cannot name
// another group until the whole group is gone; a leader with another start
// time is a new process that reused the PID.
func groupOwned(pgid int, leaderStart uint64) bool {
	if st, err := readStat(pgid); err == nil {
		return st.start == leaderStart
	}
	procs, err := listProcs()
	if err != nil {
		return false
	}
	for _, p := range procs {
		if p.pgrp == pgid {
			return true
		}
	}
	return false
}

// signalNames are the Linux signals by number.
var signalNames = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
	7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
	13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD",
	18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU",
	23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM", 27: "SIGPROF",
	28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
}

// signalName is the name of a signal as in <signal.h> ("SIGTERM"), or
// "SIGRTMIN+n" and "signal n" for the others.
func signalName(sig syscall.Signal) string {
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
