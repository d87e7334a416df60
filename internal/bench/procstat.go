package bench

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

// agentPID finds the agent process whose working directory is dir (an
// instance's: its user data execs the agent there).
func agentPID(dir string) (int, error) {
	pid, err := proc.AgentIn(dir)
	if err == nil && pid == 0 {
		err = fmt.Errorf("no agent process runs in %s", dir)
	}
	return pid, err
}

// cpuTicks returns utime+stime of pid, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[i+2:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	return utime + stime, nil
}

// cpuTime returns the CPU time pid's threads have run, to the
// nanosecond: the sum of /proc/PID/task/*/schedstat's first field. Clock
// ticks (utime+stime) are 10 ms each, which is most of what an idle agent
// uses in a minute; falls back to them where the kernel keeps no
// schedstat.
func cpuTime(pid int) (time.Duration, error) {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/schedstat", pid)); os.IsNotExist(err) {
		ticks, err := cpuTicks(pid)
		return time.Duration(float64(ticks) / clockTicks() * float64(time.Second)), err
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread exited meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: %q", pid, t.Name(), b)
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: %q", pid, t.Name(), b)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// vmRSS returns pid's resident memory (VmRSS) in KiB.
func vmRSS(pid int) (float64, error) {
	v, err := proc.StatusKiB(pid, "VmRSS")
	return float64(v), err
}

// rssAnon returns pid's resident anonymous memory (RssAnon) in KiB: the
// heap, stacks and runtime data, without the binary's pages, which are
// shared with the page cache.
func rssAnon(pid int) (float64, error) {
	v, err := proc.StatusKiB(pid, "RssAnon")
	return float64(v), err
}

// clockTicks returns the kernel's clock ticks per second (CLK_TCK).
func clockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}

// percentile returns the nearest-rank p-th percentile of samples.
func percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(samples))
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
