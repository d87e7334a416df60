package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// Descendants returns the PIDs of the processes below root in the process
// tree, root excluded, zombies included, parents before their children. It
// reads /proc/<pid>/task/<tid>/children of root and of each process found,
// so its cost grows with the family, not with the host; a child being
// created or reaped while it reads may be missed (see the package
// documentation). Without those files it reads every /proc/<pid>/stat. A
// root that does not exist has no descendants.
func Descendants(root int) ([]int, error) {
	if !haveChildren() {
		return scanDescendants(root)
	}
	var out []int
	seen := map[int]bool{root: true}
	var buf [256]byte
	for next, queue := 0, []int{root}; next < len(queue); next++ {
		kids, err := children(queue[next], buf[:])
		if err != nil {
			return nil, err
		}
		for _, c := range kids {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out, nil
}

// children lists the children of every thread of pid. A process that is
// gone, or a thread that exits while it reads, contributes none.
func children(pid int, buf []byte) ([]int, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list threads of %d: %w", pid, err)
	}
	tids, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, nil // the process went while we read
	}
	var out []int
	for _, tid := range tids {
		b, err := readSmall(dir+tid+"/children", buf)
		if err != nil {
			continue
		}
		for f := range bytes.FieldsSeq(b) {
			if c, err := strconv.Atoi(string(f)); err == nil && c > 0 {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

var haveChildren = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/thread-self/children")
	return err == nil
})

// Scan lists every process /proc shows; processes that vanish while it
// reads are skipped. It reads a file per process on the host: prefer
// Descendants, or a process group, where they do.
func Scan() ([]Stat, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	out := make([]Stat, 0, len(names))
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		if st, err := ReadStat(pid); err == nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// scanDescendants is Descendants from a Scan of the whole host.
func scanDescendants(root int) ([]int, error) {
	procs, err := Scan()
	if err != nil {
		return nil, err
	}
	kids := map[int][]int{}
	for _, p := range procs {
		kids[p.PPID] = append(kids[p.PPID], p.PID)
	}
	var out []int
	seen := map[int]bool{root: true}
	for next, queue := 0, []int{root}; next < len(queue); next++ {
		for _, c := range kids[queue[next]] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out, nil
}

// GroupExists reports whether process group pgid has a member, an
// unreaped zombie included.
func GroupExists(pgid int) bool {
	if pgid <= 0 {
		return false
	}
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// GroupOwned reports whether process group pgid is still the one whose
// leader was the process leader (pgid == leader.PID). A PID stays
// allocated while a process group of that ID has members, so the number
// cannot name another group until the whole group is gone; a process with
// PID pgid and another start time is a new process that reused the PID.
func GroupOwned(leader ID) bool {
	if leader.PID <= 0 {
		return false
	}
	if st, err := ReadStat(leader.PID); err == nil {
		return st.Start == leader.Start
	}
	return GroupExists(leader.PID)
}

// AgentIn returns the PID of a `lifeguard agent --config …` process whose
// working directory is dir (an instance's, where its user data starts the
// agent), or 0 when none runs there. It reads every process of the host.
func AgentIn(dir string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err != nil || cwd != dir {
			continue
		}
		if cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline"); bytes.Contains(cmdline, []byte("agent\x00--config")) {
			return pid, nil
		}
	}
	return 0, nil
}
