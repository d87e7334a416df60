package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/bench"
)

func TestSelect(t *testing.T) {
	all, err := bench.Select(nil)
	if err != nil || len(all) != len(bench.All()) {
		t.Fatalf("Select(nil) = %d scenarios, %v; want all %d", len(all), err, len(bench.All()))
	}
	// Run order, whatever the order asked.
	got, err := bench.Select([]string{"leader", "notice"})
	if err != nil || len(got) != 2 || got[0].Name != "notice" || got[1].Name != "leader" {
		t.Errorf("Select(leader, notice) = %v, %v; want notice then leader", got, err)
	}
	_, err = bench.Select([]string{"idle", "nope"})
	var unknown *bench.UnknownError
	if !errors.As(err, &unknown) || unknown.Name != "nope" || !strings.Contains(err.Error(), strings.Join(bench.Names(), ", ")) {
		t.Errorf("Select(idle, nope) = %v; want an UnknownError naming nope and the valid names", err)
	}
	for _, want := range []string{"notice", "idle", "leader", "traffic", "storm"} {
		if !slices.Contains(bench.Names(), want) {
			t.Errorf("Names() = %v, want %s among them", bench.Names(), want)
		}
	}
}

// TestRun runs two scenarios of its own: each gets a scratch directory
// and prefixed progress lines, its rows are stamped with its name, and
// a failing one leaves its directory, is named in the error, and does
// not stop the next.
func TestRun(t *testing.T) {
	var dirs []string
	var lines []string
	failing := bench.Scenario{Name: "broken", About: "fails", Run: func(_ context.Context, env bench.Env) ([]bench.Row, error) {
		dirs = append(dirs, env.Dir)
		return nil, errors.New("the sandbox did not start")
	}}
	fine := bench.Scenario{Name: "fine", About: "measures", Run: func(_ context.Context, env bench.Env) ([]bench.Row, error) {
		dirs = append(dirs, env.Dir)
		env.Progress("step %d", 1)
		if err := os.WriteFile(env.Dir+"/scratch", nil, 0o644); err != nil {
			return nil, err
		}
		return []bench.Row{{Figure: "f", Value: 3, Unit: "ms", Goal: bench.Limit(2), AtMost: true}}, nil
	}}
	root := t.TempDir()
	res, err := bench.Run(context.Background(), bench.Env{Dir: root, Progress: func(f string, a ...any) {
		lines = append(lines, strings.TrimSpace(strings.ReplaceAll(f, "%s", "")))
	}}, []bench.Scenario{failing, fine})
	if err == nil || !strings.Contains(err.Error(), "broken: the sandbox did not start") || !strings.Contains(err.Error(), dirs[0]) {
		t.Errorf("Run = %v; want the broken scenario's error with its directory", err)
	}
	if len(res.Rows) != 1 || res.Rows[0].Scenario != "fine" || res.Rows[0].Met() {
		t.Errorf("rows %+v; want fine's one row, stamped, not met", res.Rows)
	}
	if len(res.Wall) != 2 || res.Wall[0].Scenario != "broken" || res.Wall[1].Scenario != "fine" {
		t.Errorf("wall %+v; want both scenarios'", res.Wall)
	}
	if _, err := os.Stat(dirs[0]); err != nil {
		t.Errorf("the failed scenario's directory is gone: %v", err)
	}
	if _, err := os.Stat(dirs[1]); !os.IsNotExist(err) {
		t.Errorf("the scenario's scratch directory %s is left: %v", dirs[1], err)
	}
	if !slices.Contains(lines, "[2/2] fine: step %d") {
		t.Errorf("progress lines %q; want fine's prefixed with its place in the run", lines)
	}
}

func TestWriteTableAndJSON(t *testing.T) {
	rows := []bench.Row{
		{Scenario: "notice", Figure: "scale-in → first step (sqs) p50", Value: 18.3, Unit: "ms", Detail: "16 scale-ins", Goal: bench.Limit(20), AtMost: true},
		{Scenario: "idle", Figure: "idle RSS (sqs), median", Value: 21.5, Unit: "MiB", Goal: bench.Limit(16), AtMost: true},
		{Scenario: "idle", Figure: "idle AWS calls (sqs) per instance-hour", Value: 180, Unit: "calls"},
	}
	var table bytes.Buffer
	if err := bench.WriteTable(&table, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "SCENARIO") {
		t.Fatalf("table:\n%s\nwant a header and three rows", table.String())
	}
	for i, want := range [][]string{{"18.3 ms", "≤ 20 ms", "yes", "16 scale-ins"}, {"21.5 MiB", "≤ 16 MiB", "NO"}, {"180 calls"}} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("table row %q lacks %q", lines[i+1], w)
			}
		}
	}

	var out bytes.Buffer
	if err := bench.WriteJSON(&out, bench.Result{Rows: rows, Wall: []bench.ScenarioWall{{Scenario: "idle", Seconds: 1.5}}}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Rows []map[string]any
		Wall []bench.ScenarioWall
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if len(got.Rows) != 3 || got.Rows[0]["met"] != true || got.Rows[1]["met"] != false || got.Rows[2]["met"] != true ||
		got.Rows[0]["goal"] != 20.0 || got.Rows[0]["at_most"] != true || got.Rows[2]["goal"] != nil || got.Rows[0]["figure"] != rows[0].Figure {
		t.Errorf("JSON rows %v", got.Rows)
	}
	if len(got.Wall) != 1 || got.Wall[0].Seconds != 1.5 {
		t.Errorf("JSON wall %v", got.Wall)
	}
}
