package systest_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/bench"
)

// The agent's numbers, measured on the built binary running as instances'
// user data in a sandbox process with real limits, in real time: the
// scenarios of `lifeguard bench` (internal/bench), run as Go benchmarks.
// They report figures and assert nothing about them. Run with
//
//	go test -run='^$' -bench='NoticeToFirstStep|AgentIdle|Leader' -benchtime=1x ./internal/systest/
//
// (-short takes the scenarios' quick shape: fewer samples, rough figures).

// BenchmarkNoticeToFirstStep is bench.Notice: the real time from a
// scale-in to the terminate plan's first step starting, and from the
// step's exit to the action completed, for sources sqs and imds at their
// defaults, over turns of scale-ins after a random (seeded) pause.
func BenchmarkNoticeToFirstStep(b *testing.B) { benchScenario(b, bench.Notice) }

// BenchmarkAgentIdle is bench.Idle: agents idle InService for a window,
// their resident memory, CPU, and the AWS and IMDS calls per
// instance-hour that the sandbox counted for their instances.
func BenchmarkAgentIdle(b *testing.B) { benchScenario(b, bench.Idle) }

// benchScenario runs a scenario of internal/bench once per iteration and
// reports each of its rows as a metric.
func benchScenario(b *testing.B, s bench.Scenario) {
	env := bench.Env{Binary: lifeguardBinary(b), Progress: b.Logf, Quick: testing.Short()}
	for b.Loop() {
		env.Dir = b.TempDir()
		rows, err := s.Run(context.Background(), env)
		if err != nil {
			b.Fatalf("%s: %v", s.Name, err)
		}
		for i := range rows {
			rows[i].Scenario = s.Name
		}
		var table strings.Builder
		_ = bench.WriteTable(&table, rows)
		b.Logf("%s:\n%s", s.Name, table.String())
		for _, r := range rows {
			b.ReportMetric(r.Value, metricUnit(r))
		}
	}
	b.ReportMetric(0, "ns/op")
}

var notUnit = regexp.MustCompile(`[^a-z0-9()]+`)

// metricUnit makes a benchmark unit of a row: its figure and unit, lower
// case, without spaces ("scale-in-first-step-(sqs)-p50-ms").
func metricUnit(r bench.Row) string {
	return strings.Trim(notUnit.ReplaceAllString(strings.ToLower(r.Figure+" "+r.Unit), "-"), "-")
}

// waitConsole waits for a line of the instance's console matching re and
// returns its submatches.
func waitConsole(tb testing.TB, dir string, re *regexp.Regexp) []string {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "console.log"))
		if m := re.FindStringSubmatch(string(b)); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s/console.log has no line matching %q within 60 s:\n%s", dir, re, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
