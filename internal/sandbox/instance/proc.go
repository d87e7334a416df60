package instance

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// procEntry is what /proc/<pid>/stat says of a process.
type procEntry struct {
	pid, ppid, pgrp int
}

// readProc lists every process /proc shows. Processes that vanish while it
// reads are skipped.
func readProc() ([]procEntry, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	out := make([]procEntry, 0, len(names))
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		e, ok := readStat(pid)
		if ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// readStat parses /proc/<pid>/stat: "pid (comm) state ppid pgrp …", where
// comm may itself hold spaces and parentheses.
func readStat(pid int) (procEntry, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procEntry{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procEntry{}, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 3 {
		return procEntry{}, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgrp, err2 := strconv.Atoi(string(f[2]))
	if err1 != nil || err2 != nil {
		return procEntry{}, false
	}
	return procEntry{pid: pid, ppid: ppid, pgrp: pgrp}, true
}

// family returns the processes below root in the process tree, plus those
// in process group pgrp (0 for none), root itself excluded. Zombies are
// included: a process is gone only once it has been reaped.
func family(root, pgrp int) ([]int, error) {
	procs, err := readProc()
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	seen := map[int]bool{root: true}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	if pgrp > 0 {
		for _, p := range procs {
			if p.pgrp == pgrp && !seen[p.pid] {
				seen[p.pid] = true
				out = append(out, p.pid)
			}
		}
	}
	return out, nil
}
