package proc

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// hostProcs is how many processes the benchmarks keep alive on the host
// besides the family they look for: a sandbox with a few hundred
// instances has that many.
const hostProcs = 500

// BenchmarkFamily measures one tick of a supervisor that stops its
// family: finding the processes below it, with hostProcs other processes
// on the host. "scan" reads every /proc/<pid>/stat, as the supervisors did
// on every tick and every SIGCHLD; "children" walks
// /proc/<pid>/task/<tid>/children from the family's root (Descendants).
func BenchmarkFamily(b *testing.B) {
	dir := b.TempDir()
	startBench(b, dir, `i=0; while [ $i -lt `+strconv.Itoa(hostProcs)+` ]; do sleep 1000 & i=$((i+1)); done; echo > crowd.ready; wait`, "crowd.ready")
	fam := startBench(b, dir, `sleep 1000 & sh -c 'sleep 1000 & wait' & echo > family.ready; wait`, "family.ready")
	procs, err := Scan()
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct {
		name string
		find func(int) ([]int, error)
	}{
		{"scan", scanDescendants},
		{"children", Descendants},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				pids, err := bm.find(fam.Pid())
				if err != nil || len(pids) != 3 {
					b.Fatalf("found %v, %v; want the family's 3 processes", pids, err)
				}
			}
			b.ReportMetric(float64(len(procs)), "host-procs")
		})
	}
}

// startBench starts a shell script as a Group in dir, waits for it to
// write ready, and stops it when the benchmark ends.
func startBench(b *testing.B, dir, script, ready string) *Group {
	b.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	g, err := StartGroup(cmd, syscall.SIGKILL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := g.Stop(ctx, 0); err != nil {
			b.Errorf("stop: %v", err)
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(dir, ready)); err == nil {
			return g
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not written within a minute", ready)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
