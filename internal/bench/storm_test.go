package bench_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/bench"
	"github.com/lifeguardhq/lifeguard/internal/proc"
)

func TestMain(m *testing.M) {
	proc.Main() // the sandbox's instances re-execute this binary as their supervisor
	goleak.VerifyTestMain(m)
}

// TestStormQuick runs the storm small (40 instances, 20 terminated) in
// both modes: every notification arrives once and every action is
// completed, or the run fails. Its figures are not checked.
func TestStormQuick(t *testing.T) {
	rows, err := bench.Storm.Run(context.Background(), bench.Env{Dir: t.TempDir(), Quick: true, Progress: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 18 {
		t.Errorf("%d rows, want 9 per mode", len(rows))
	}
	for _, r := range rows {
		t.Logf("%-60s %8.2f %-2s %s", r.Figure, r.Value, r.Unit, r.Detail)
	}
}

// BenchmarkStorm runs the full storm (1,000 instances, 500 terminated at
// once through a lifecycle hook) without and with processes, and reports
// every row as a metric.
//
//	go test -run='^$' -bench=Storm -benchtime=1x ./internal/bench/
func BenchmarkStorm(b *testing.B) {
	for range b.N {
		rows, err := bench.Storm.Run(context.Background(), bench.Env{Dir: b.TempDir(), Progress: b.Logf})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rows {
			met := ""
			if !r.Met() {
				met = " (goal missed)"
			}
			b.Logf("%-60s %9.2f %-2s %s%s", r.Figure, r.Value, r.Unit, r.Detail, met)
		}
	}
}
