// Package bench holds lifeguard's repeatable benchmark scenarios: each
// runs against a sandbox with real instance processes and returns the
// rows of one table. `lifeguard bench` runs them and prints the table (or
// JSON); the Go benchmarks in the test packages call the same scenarios.
//
// Scenarios measure and report; they never fail because a figure misses
// its goal. They fail only when the run itself went wrong (an action not
// completed, a notification lost), because then the figures mean nothing.
package bench

import "context"

// Env is what a scenario runs with.
type Env struct {
	// Binary is the lifeguard binary the instances run as their agent.
	Binary string
	// Dir is a scratch directory the scenario may use; it is removed
	// afterwards.
	Dir string
	// Progress reports what the scenario is doing, one short line at a
	// time (for a live progress line). Never nil when a scenario runs.
	Progress func(format string, args ...any)
	// Quick asks for fewer repetitions (for tests of the scenarios
	// themselves); the figures are then rough.
	Quick bool
}

// Row is one line of the table.
type Row struct {
	// Scenario is the scenario's Name.
	Scenario string `json:"scenario"`
	// Figure says what was measured, e.g. "scale-in → first step (sqs) p50".
	Figure string `json:"figure"`
	// Value in Unit, e.g. 18.2 "ms".
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Detail adds how it was measured, e.g. "32 scale-ins".
	Detail string `json:"detail,omitempty"`
	// Goal is the figure's goal, when it has one, and AtMost says that the
	// value must not exceed it (otherwise it must reach it).
	Goal   *float64 `json:"goal,omitempty"`
	AtMost bool     `json:"at_most,omitempty"`
}

// Met reports whether the row meets its goal (true when it has none).
func (r Row) Met() bool {
	if r.Goal == nil {
		return true
	}
	if r.AtMost {
		return r.Value <= *r.Goal
	}
	return r.Value >= *r.Goal
}

// Limit returns a goal for Row.Goal (with Row.AtMost set by the
// caller), so scenario code reads `Goal: bench.Limit(20), AtMost: true`.
func Limit(v float64) *float64 { return &v }

// Scenario is one repeatable measurement.
type Scenario struct {
	// Name is what `lifeguard bench --only NAME` selects.
	Name string
	// About says in one line what it measures.
	About string
	Run   func(ctx context.Context, env Env) ([]Row, error)
}
