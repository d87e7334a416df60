package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// StatusKiB returns a memory field of /proc/<pid>/status, such as "VmRSS"
// or "RssAnon", in KiB.
func StatusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				if v, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return v, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}
