package agent

import (
	"context"
	"fmt"
	"strings"

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

// BuildInfo is the agent binary's version, served as
// lifeguard_build_info{version, commit, go_version} 1. cli fills it in.
type BuildInfo struct {
	Version   string
	Commit    string
	GoVersion string
}

// metrics are the agent's Prometheus metrics, in a registry of its own.
// Label values are lowercase: transitions launching and terminating,
// results continue, abandon and the others below.
type metrics struct {
	reg           *prometheus.Registry
	actions       *prometheus.CounterVec
	inProgress    *prometheus.GaugeVec
	heartbeats    prometheus.Counter
	lastHeartbeat prometheus.Gauge
	steps         *prometheus.CounterVec
	probes        *prometheus.CounterVec
	actionTime    *prometheus.HistogramVec
}

// newMetrics returns the agent's metrics, with extra registered beside
// them (it fails when one of them clashes with another).
func newMetrics(build BuildInfo, extra ...prometheus.Collector) (*metrics, error) {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeguard_lifecycle_actions_total",
			Help: "Lifecycle actions handled to the end, by transition (launching, terminating) and result (continue, abandon, gone, failed).",
		}, []string{"transition", "result"}),
		inProgress: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lifeguard_lifecycle_actions_in_progress",
			Help: "Lifecycle actions the agent is handling now, by transition (launching, terminating).",
		}, []string{"transition"}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lifeguard_heartbeats_total",
			Help: "Lifecycle action heartbeats Auto Scaling accepted.",
		}),
		lastHeartbeat: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lifeguard_last_heartbeat_timestamp_seconds",
			Help: "When Auto Scaling last accepted a heartbeat, in seconds since the Unix epoch; 0 before the first.",
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
			Name:    "lifeguard_lifecycle_action_duration_seconds",
			Help:    "Time from when the agent first saw a lifecycle action to its completion, by transition and result (continue, abandon).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 18), // 1 s to about 36 h
		}, []string{"transition", "result"}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "lifeguard_build_info",
		Help:        "Always 1; the labels say which lifeguard runs.",
		ConstLabels: prometheus.Labels{"version": build.Version, "commit": build.Commit, "go_version": build.GoVersion},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(m.actions, m.inProgress, m.heartbeats, m.lastHeartbeat, m.steps, m.probes, m.actionTime, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range extra {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// heartbeat is the Executor's Heartbeated: it counts the heartbeats Auto
// Scaling accepted, and notes when it last did.
func (m *metrics) heartbeat(_ lifecycle.Action, err error) {
	if err == nil {
		m.heartbeats.Inc()
		m.lastHeartbeat.SetToCurrentTime()
	}
}

// resultLabel is a result as a label value: lowercase.
func resultLabel(r lifecycle.Result) string { return strings.ToLower(string(r)) }

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

// metered wraps next to count how its steps end; the result prepares
// steps (lifecycle.StepPreparer) when next does.
func metered(next lifecycle.StepRunner, m *metrics) lifecycle.StepRunner {
	w := meteredSteps{next: next, m: m}
	if sp, ok := next.(lifecycle.StepPreparer); ok {
		return meteredPreparer{meteredSteps: w, prep: sp}
	}
	return w
}

// meteredPreparer is meteredSteps of a StepRunner that prepares steps.
type meteredPreparer struct {
	meteredSteps
	prep lifecycle.StepPreparer
}

func (w meteredPreparer) Prepare(ctx context.Context, id lifecycle.StepID, s lifecycle.Step, env []string) (lifecycle.PreparedStep, error) {
	p, err := w.prep.Prepare(ctx, id, s, env)
	if err != nil {
		return nil, err
	}
	return meteredPrepared{next: p, m: w.m}, nil
}

// meteredPrepared counts how a prepared step ends, as meteredSteps does.
type meteredPrepared struct {
	next lifecycle.PreparedStep
	m    *metrics
}

func (p meteredPrepared) Go(ctx context.Context) (lifecycle.StepHandle, error) {
	h, err := p.next.Go(ctx)
	if err != nil {
		if ctx.Err() == nil { // else whether it started is unknown
			p.m.steps.WithLabelValues(resultStartError).Inc()
		}
		return nil, err
	}
	return meteredHandle{next: h, m: p.m}, nil
}

func (p meteredPrepared) Release() { p.next.Release() }

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
