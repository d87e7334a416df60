package proc

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Children returns the PIDs of pid's children, zombies included: from
// /proc/<pid>/task/<tid>/children where the kernel keeps them, else from
// a Scan of the host. A process that does not exist has none.
func Children(pid int) ([]int, error) {
	if !haveChildren() {
		procs, err := Scan()
		if err != nil {
			return nil, err
		}
		var out []int
		for _, p := range procs {
			if p.PPID == pid {
				out = append(out, p.PID)
			}
		}
		return out, nil
	}
	var buf [256]byte
	return children(pid, buf[:])
}

// Environ returns the environment pid was started with, as "NAME=value"
// entries: /proc/<pid>/environ is the environment its program was executed
// with, whatever it changed since. It fails for a process that is gone or
// whose environment it may not read.
func Environ(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return nil, err
	}
	var out []string
	for e := range bytes.SplitSeq(b, []byte{0}) {
		if len(e) > 0 {
			out = append(out, string(e))
		}
	}
	return out, nil
}

// MergeEnv concatenates environments ("NAME=value" entries); a later entry
// replaces an earlier one of the same name, in the place of the first, as
// os/exec does with duplicates.
func MergeEnv(envs ...[]string) []string {
	n := 0
	for _, env := range envs {
		n += len(env)
	}
	out := make([]string, 0, n)
	at := make(map[string]int, n)
	for _, env := range envs {
		for _, kv := range env {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := at[k]; ok {
				out[i] = kv
				continue
			}
			at[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}
