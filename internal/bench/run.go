package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// All returns every scenario, in the order a run takes them.
func All() []Scenario {
	return []Scenario{Notice, Idle, Leader, Traffic, Storm}
}

// Names returns the names of every scenario, in run order.
func Names() []string {
	var names []string
	for _, s := range All() {
		names = append(names, s.Name)
	}
	return names
}

// UnknownError is a scenario name Select does not know.
type UnknownError struct{ Name string }

func (e *UnknownError) Error() string {
	return fmt.Sprintf("no scenario %q; the scenarios are %s", e.Name, strings.Join(Names(), ", "))
}

// Select returns the named scenarios in run order (every scenario when
// names is empty); an unknown name is an *UnknownError.
func Select(names []string) ([]Scenario, error) {
	if len(names) == 0 {
		return All(), nil
	}
	for _, n := range names {
		if !slices.Contains(Names(), n) {
			return nil, &UnknownError{Name: n}
		}
	}
	var out []Scenario
	for _, s := range All() {
		if slices.Contains(names, s.Name) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Result is what Run measured: every row of the scenarios that ran, and
// each scenario's wall time.
type Result struct {
	Rows []Row          `json:"rows"`
	Wall []ScenarioWall `json:"wall"`
}

// ScenarioWall is how long one scenario took.
type ScenarioWall struct {
	Scenario string  `json:"scenario"`
	Seconds  float64 `json:"seconds"`
}

// Run runs the scenarios in order, each in a scratch directory of its
// own under env.Dir (removed afterwards), with env.Progress lines
// prefixed by the scenario's name. A scenario that fails does not stop
// the others: Run returns the rows of those that ran and an error naming
// each failure.
func Run(ctx context.Context, env Env, scenarios []Scenario) (Result, error) {
	var res Result
	var errs []error
	progress := env.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	for i, s := range scenarios {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		dir, err := os.MkdirTemp(env.Dir, s.Name+"-")
		if err != nil {
			return res, err
		}
		senv := env
		senv.Dir = dir
		prefix := fmt.Sprintf("[%d/%d] %s: ", i+1, len(scenarios), s.Name)
		senv.Progress = func(format string, args ...any) { progress(prefix+format, args...) }
		senv.Progress("%s", s.About)
		start := time.Now()
		rows, err := s.Run(ctx, senv)
		res.Wall = append(res.Wall, ScenarioWall{Scenario: s.Name, Seconds: time.Since(start).Seconds()})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (its files: %s)", s.Name, err, dir))
			continue // keep the directory: it holds the sandbox's log and the instances' consoles
		}
		for _, r := range rows {
			r.Scenario = s.Name
			res.Rows = append(res.Rows, r)
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// WriteTable prints the rows as one table: scenario, figure, value, goal,
// whether it is met, and how it was measured.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tVALUE\tGOAL\tMET\tDETAIL")
	for _, r := range rows {
		goal, met := "", ""
		if r.Goal != nil {
			op := "≥"
			if r.AtMost {
				op = "≤"
			}
			goal = op + " " + number(*r.Goal) + " " + r.Unit
			met = "yes"
			if !r.Met() {
				met = "NO"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\t%s\n", r.Scenario, r.Figure, number(r.Value), r.Unit, goal, met, r.Detail)
	}
	return tw.Flush()
}

// WriteJSON prints the result as one JSON object: its rows (each with
// "met") and each scenario's wall time.
func WriteJSON(w io.Writer, res Result) error {
	type row struct {
		Row
		Met bool `json:"met"`
	}
	out := struct {
		Rows []row          `json:"rows"`
		Wall []ScenarioWall `json:"wall"`
	}{Rows: []row{}, Wall: res.Wall}
	for _, r := range res.Rows {
		out.Rows = append(out.Rows, row{Row: r, Met: r.Met()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// number formats a figure with the digits that mean something.
func number(v float64) string {
	switch a := max(v, -v); {
	case a >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
