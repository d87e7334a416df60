package agent

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// Phases of an action in /status.
const (
	phaseProbing   = "probing"   // launch: waiting for readiness
	phaseRunning   = "running"   // the Executor runs: steps, waiting for confirmation, completing
	phaseRetrying  = "retrying"  // the Executor failed; it runs again soon
	phaseCompleted = "completed" // completed with Result (now or by an earlier agent)
	phaseGone      = "gone"      // Auto Scaling no longer had the action
	phaseFailed    = "failed"    // the agent gave up at the action's deadline
)

// snapshot is what /status reports besides the actions; guarded by
// Agent.mu.
type snapshot struct {
	Instance       string `json:"instance"`
	Group          string `json:"group"`
	LifecycleState string `json:"lifecycle_state"`
	TargetState    string `json:"target_state"`
	// Terminating says the terminate plan has started, for Reason;
	// Confirmed that Auto Scaling reported Terminating:Wait (or later).
	Terminating bool   `json:"terminating"`
	Reason      string `json:"reason,omitempty"`
	Confirmed   bool   `json:"confirmed"`
	Draining    bool   `json:"draining"`
}

// actionState is one action the agent handles; its fields are guarded by
// Agent.mu, except key and plan, which never change.
type actionState struct {
	key    lifecycle.Key
	plan   lifecycle.Plan
	action lifecycle.Action
	phase  string
	result lifecycle.Result
	err    string
	passes int // launch: consecutive passing rounds of probes
	done   bool
}

// statusDoc is the /status document.
type statusDoc struct {
	snapshot
	Actions []actionDoc `json:"actions"`
	// Traffic is the load balancer targets' health as the traffic
	// section's last wait read it; absent when the section is off.
	Traffic []TargetDoc `json:"traffic,omitempty"`
}

type actionDoc struct {
	Hook        string    `json:"hook"`
	Transition  string    `json:"transition"`
	Token       string    `json:"token"`
	Reason      string    `json:"reason"`
	Phase       string    `json:"phase"`
	Result      string    `json:"result,omitempty"`
	Error       string    `json:"error,omitempty"`
	ProbePasses int       `json:"probe_passes,omitempty"`
	StepsDone   int       `json:"steps_done"`
	Steps       int       `json:"steps"`
	Seen        time.Time `json:"seen"`
	Deadline    time.Time `json:"deadline"`
}

// update changes the snapshot under the lock.
func (a *Agent) update(f func(*snapshot)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(&a.snap)
}

// track registers an action for /status.
func (a *Agent) track(act lifecycle.Action, plan lifecycle.Plan, phase string) *actionState {
	st := &actionState{key: act.Key(), plan: plan, action: act, phase: phase}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.actions = append(a.actions, st)
	return st
}

// actionOf returns a copy of st's action.
func (a *Agent) actionOf(st *actionState) lifecycle.Action {
	a.mu.Lock()
	defer a.mu.Unlock()
	return st.action
}

func (a *Agent) setPhase(st *actionState, phase, errText string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st.phase, st.err = phase, errText
}

// finish records how st ended and counts it. NoHook actions are not
// lifecycle actions and are not counted.
func (a *Agent) finish(st *actionState, phase string, r lifecycle.Result, errText string) {
	a.mu.Lock()
	st.phase, st.result, st.err, st.done = phase, r, errText, true
	a.mu.Unlock()
	if st.key.Hook == NoHook {
		return
	}
	label := resultLabel(r)
	switch phase {
	case phaseGone:
		label = resultGone
	case phaseFailed:
		label = resultFailed
	}
	transition := transitionLabel(st.key.Transition)
	a.metrics.actions.WithLabelValues(transition, label).Inc()
	if phase == phaseFailed {
		return
	}
	pr, ok, err := a.journal.Progress(st.key, st.plan)
	if err == nil && ok && pr.Completed && !pr.CompletedAt.Before(a.started) {
		a.metrics.actionTime.WithLabelValues(transition, label).Observe(pr.CompletedAt.Sub(pr.Seen).Seconds())
	}
}

// Handler serves the agent's loopback endpoints:
//
//   - GET /healthz: 200 "ok" while the agent's process serves.
//   - GET /status: JSON with the instance, group, lifecycle state, IMDS
//     target state, whether the terminate plan started (and why, and
//     whether Auto Scaling confirmed it), whether a drain was requested,
//     and every action the agent handles: hook, transition, token, reason,
//     phase (probing, running, retrying, completed, gone, failed), result,
//     steps done of steps (from the journal), when it was first seen and
//     its deadline; with the traffic section on, each load balancer
//     target's state as the last wait read it (traffic).
//   - GET /metrics: the agent's Prometheus metrics (its own registry).
//   - GET /leader: leader election's state (LeaderDoc; 404 when it is
//     off); ?wait=D&leading=L&token=T answers as soon as it differs from
//     L and T, or after D (at most 30 s).
//   - POST /leader/resign: hand leadership off at once.
//
// It may be served before, during and after Run.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(a.statusDoc()) // a write error means the client went away
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /leader", a.serveLeader)
	mux.HandleFunc("POST /leader/resign", a.serveResign)
	return mux
}

// statusDoc builds the /status document.
func (a *Agent) statusDoc() statusDoc {
	a.mu.Lock()
	doc := statusDoc{snapshot: a.snap, Actions: make([]actionDoc, 0, len(a.actions))}
	if a.traffic != nil {
		doc.Traffic = a.traffic.status()
	}
	states := make([]actionState, len(a.actions))
	for i, st := range a.actions {
		states[i] = *st
	}
	a.mu.Unlock()
	for _, st := range states {
		act := st.action
		d := actionDoc{
			Hook:        act.Hook.Name,
			Transition:  string(act.Hook.Transition),
			Token:       act.Token,
			Reason:      string(act.Reason),
			Phase:       st.phase,
			Result:      string(st.result),
			Error:       st.err,
			ProbePasses: st.passes,
			Steps:       len(st.plan.Steps),
		}
		if pr, ok, err := a.journal.Progress(st.key, st.plan); err == nil && ok {
			act.Seen = pr.Seen
			if act.Token == "" {
				d.Token = pr.Token
			}
			d.StepsDone = pr.Done
		}
		d.Seen, d.Deadline = act.Seen, lifecycle.Deadline(act)
		doc.Actions = append(doc.Actions, d)
	}
	return doc
}
