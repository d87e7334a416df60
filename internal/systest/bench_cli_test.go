package systest_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestBenchCLI drives `lifeguard bench` as a user would: an unknown
// scenario is a usage error naming the valid ones; `--quick --only idle
// --json` runs the cheapest scenario (two idle agents for a few seconds)
// and prints its rows as JSON, with goals and whether each is met.
func TestBenchCLI(t *testing.T) {
	out, errOut, code := runIn(t, t.TempDir(), "bench", "--only", "idle,nope")
	if code != 2 || out != "" || !strings.Contains(errOut, `no scenario "nope"`) || !strings.Contains(errOut, "notice, idle, leader, traffic, storm") {
		t.Errorf("bench --only idle,nope = exit %d, stdout %q, stderr %q; want 2 and the valid names", code, out, errOut)
	}

	out, errOut, code = runIn(t, t.TempDir(), "bench", "--quick", "--only", "idle", "--json")
	if code != 0 {
		t.Fatalf("bench --quick --only idle --json = exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "[1/1] idle: ") {
		t.Errorf("no progress line on stderr:\n%s", errOut)
	}
	var res struct {
		Rows []struct {
			Scenario, Figure, Unit, Detail string
			Value                          float64
			Goal                           *float64
			AtMost                         bool `json:"at_most"`
			Met                            bool
		}
		Wall []struct {
			Scenario string
			Seconds  float64
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("stdout is not the JSON result: %v\n%s", err, out)
	}
	var figures []string
	for _, r := range res.Rows {
		figures = append(figures, r.Figure)
		if r.Scenario != "idle" || r.Unit == "" || r.Detail == "" {
			t.Errorf("row %+v: want scenario idle, a unit and a detail", r)
		}
		if r.Goal != nil && r.Met != (r.AtMost && r.Value <= *r.Goal || !r.AtMost && r.Value >= *r.Goal) {
			t.Errorf("row %+v: met does not follow from its value and goal", r)
		}
		if (strings.HasPrefix(r.Figure, "idle RSS") || strings.HasPrefix(r.Figure, "idle CPU")) && r.Value <= 0 {
			t.Errorf("row %+v: an agent's resident memory and CPU time are more than nothing", r)
		}
	}
	var want []string
	for _, src := range []string{"sqs", "imds"} {
		want = append(want, "idle RSS ("+src+"), 1 min", "idle RSS ("+src+"), steady median", "idle RSS ("+src+"), steady peak",
			"idle RSS anonymous ("+src+"), steady median", "idle CPU ("+src+") per instance-hour",
			"idle AWS calls ("+src+") per instance-hour", "idle IMDS calls ("+src+") per instance-hour")
	}
	if !slices.Equal(figures, want) {
		t.Errorf("figures %q, want %q", figures, want)
	}
	if len(res.Wall) != 1 || res.Wall[0].Scenario != "idle" || res.Wall[0].Seconds <= 0 {
		t.Errorf("wall %+v, want idle's", res.Wall)
	}
}
