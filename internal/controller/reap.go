package controller

import (
	"slices"
	"time"
)

// Results of a lifecycle action the reaper completes.
const (
	ResultContinue = "CONTINUE"
	ResultAbandon  = "ABANDON"
)

// Defaults of the reaper.
const (
	// DefaultReapGrace is how long an action waits without a live agent
	// before the reaper completes it.
	DefaultReapGrace = 2 * time.Minute
)

// ReapSettings configure the orphan reaper.
type ReapSettings struct {
	// Grace is how long a waiting instance may go without a presence
	// renewal (and how long the controller must have seen it waiting)
	// before its action is completed.
	Grace time.Duration
	// Launch and Terminate are the results given to launch and terminate
	// actions (defaults ABANDON and CONTINUE).
	Launch, Terminate string
}

// WithDefaults returns r with its zero fields defaulted.
func (r ReapSettings) WithDefaults() ReapSettings {
	if r.Grace <= 0 {
		r.Grace = DefaultReapGrace
	}
	if r.Launch == "" {
		r.Launch = ResultAbandon
	}
	if r.Terminate == "" {
		r.Terminate = ResultContinue
	}
	return r
}

// Waiting is an instance held in Pending:Wait or Terminating:Wait, with
// what the controller knows of its agent.
type Waiting struct {
	Instance string
	// State is Pending:Wait or Terminating:Wait.
	State string
	// Since is when this controller first saw the instance in State (on
	// its own clock).
	Since time.Time
	// Renewed is the agent's last presence announcement (zero: none).
	Renewed time.Time
}

// Reaping is one action the reaper completes.
type Reaping struct {
	Instance string
	State    string
	Result   string
}

// Reap returns the waiting instances whose agent is dead at now: its last
// presence announcement is older than the grace, or, when it never
// announced itself, this controller has seen it waiting for at least the
// grace (an agent still booting gets the whole grace). An instance whose
// agent announced itself within the grace is never reaped.
func Reap(r ReapSettings, now time.Time, ws []Waiting) []Reaping {
	r = r.WithDefaults()
	var out []Reaping
	for _, w := range ws {
		switch {
		case !w.Renewed.IsZero() && now.Sub(w.Renewed) < r.Grace:
			continue // alive
		case w.Renewed.IsZero() && (w.Since.IsZero() || now.Sub(w.Since) < r.Grace):
			continue // never heard of: perhaps still booting
		}
		res := r.Launch
		switch w.State {
		case StatePendingWait:
		case StateTerminatingWait:
			res = r.Terminate
		default:
			continue
		}
		out = append(out, Reaping{Instance: w.Instance, State: w.State, Result: res})
	}
	slices.SortFunc(out, func(a, b Reaping) int {
		if a.Instance < b.Instance {
			return -1
		}
		if a.Instance > b.Instance {
			return 1
		}
		return 0
	})
	return out
}
