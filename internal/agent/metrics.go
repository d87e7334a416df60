package agent

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// Results in lifeguard_steps_total{result}, lifeguard_probe_checks_total{result}
// and lifeguard_lifecycle_actions_total{result} besides CONTINUE and ABANDON.
const (
	resultSuccess    = "success"
	resultFailure    = "failure"
	resultTimeout    = "timeout"
	resultStartError = "start_error"
	resultPass       = "pass"
	resultFail       = "fail"
	resultFatal      = "fatal"
	resultGone       = "gone"   // Auto Scaling no longer had the action
	resultFailed     = "failed" // the agent gave up at the action's deadline
)

// metrics are the agent's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg        *prometheus.Registry
	actions    *prometheus.CounterVec
	heartbeats prometheus.Counter
	steps      *prometheus.CounterVec
	probes     *prometheus.CounterVec
	actionTime *prometheus.HistogramVec
}

// newMetrics returns the agent's metrics, with extra registered beside
// them (it fails when one of them clashes with another).
func newMetrics(extra ...prometheus.Collector) (*metrics, error) {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeguard_lifecycle_actions_total",
			Help: "Lifecycle actions handled to the end, by transition (launching, terminating) and result (CONTINUE, ABANDON, gone, failed).",
		}, []string{"transition", "result"}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lifeguard_heartbeats_total",
			Help: "Lifecycle action heartbeats Auto Scaling accepted.",
		}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeguard_steps_total",
			Help: "Plan steps that ended, by result (success, failure, timeout, start_error).",
		}, []string{"result"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeguard_probe_checks_total",
			Help: "Readiness probe checks, by probe name and result (pass, fail, fatal).",
		}, []string{"probe", "result"}),
		actionTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lifeguard_action_seconds",
			Help:    "Time from when the agent first saw a lifecycle action to its completion, by transition.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 18), // 1 s to about 36 h
		}, []string{"transition"}),
	}
	m.reg.MustRegister(m.actions, m.heartbeats, m.steps, m.probes, m.actionTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range extra {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// heartbeat is the Executor's Heartbeated: it counts the heartbeats Auto
// Scaling accepted.
func (m *metrics) heartbeat(_ lifecycle.Action, err error) {
	if err == nil {
		m.heartbeats.Inc()
	}
}

// transitionLabel is the short name of a transition in labels.
func transitionLabel(t lifecycle.Transition) string {
	switch t {
	case lifecycle.TransitionLaunching:
		return "launching"
	case lifecycle.TransitionTerminating:
		return "terminating"
	}
	return string(t)
}

// meteredSteps counts how steps end.
type meteredSteps struct {
	next lifecycle.StepRunner
	m    *metrics
}

func (w meteredSteps) Start(ctx context.Context, id lifecycle.StepID, s lifecycle.Step, env []string) (lifecycle.StepHandle, error) {
	h, err := w.next.Start(ctx, id, s, env)
	if err != nil {
		if ctx.Err() == nil { // else whether it started is unknown
			w.m.steps.WithLabelValues(resultStartError).Inc()
		}
		return nil, err
	}
	return meteredHandle{next: h, m: w.m}, nil
}

func (w meteredSteps) Adopt(ctx context.Context, id lifecycle.StepID) (lifecycle.StepHandle, bool, error) {
	h, ok, err := w.next.Adopt(ctx, id)
	if !ok || err != nil {
		return h, ok, err
	}
	return meteredHandle{next: h, m: w.m}, true, nil
}

type meteredHandle struct {
	next lifecycle.StepHandle
	m    *metrics
}

func (h meteredHandle) Wait(ctx context.Context) (lifecycle.StepOutcome, error) {
	out, err := h.next.Wait(ctx)
	if err == nil {
		result := resultSuccess
		switch {
		case out.TimedOut:
			result = resultTimeout
		case out.ExitCode != 0:
			result = resultFailure
		}
		h.m.steps.WithLabelValues(result).Inc()
	}
	return out, err
}
