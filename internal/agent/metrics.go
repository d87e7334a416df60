package agent

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// Operation names in lifeguard_aws_calls_total{op}.
const (
	opInstanceID       = "imds:instance-id"
	opTargetState      = "imds:autoscaling/target-lifecycle-state"
	opSpot             = "imds:spot/instance-action"
	opDescribeInstance = "DescribeAutoScalingInstances"
	opDescribeHooks    = "DescribeLifecycleHooks"
	opHeartbeat        = "RecordLifecycleActionHeartbeat"
	opComplete         = "CompleteLifecycleAction"
	opOpenQueue        = "sqs:open-queue" // the calls of Inbox.Open
	opReceive          = "ReceiveMessage"
	opDelete           = "DeleteMessage"
	opRelease          = "ChangeMessageVisibilityBatch" // one per SQSBatchLimit messages
	opKeep             = "ChangeMessageVisibility"
	opRemoveQueue      = "sqs:remove-queue" // Unsubscribe and DeleteQueue
)

// Outcomes in lifeguard_aws_calls_total{outcome}.
const (
	outcomeOK             = "ok"
	outcomeError          = "error"
	outcomeNoActiveAction = "no_active_action"
	outcomeNotInGroup     = "not_in_group"
	outcomeCanceled       = "canceled"
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
	awsCalls   *prometheus.CounterVec
	probes     *prometheus.CounterVec
	actionTime *prometheus.HistogramVec
}

func newMetrics() *metrics {
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
		awsCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lifeguard_aws_calls_total",
			Help: "Calls to instance metadata, Auto Scaling and SQS, by operation and outcome (ok, error, no_active_action, not_in_group, canceled).",
		}, []string{"op", "outcome"}),
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
	m.reg.MustRegister(m.actions, m.heartbeats, m.steps, m.awsCalls, m.probes, m.actionTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// call counts one call of op that returned err.
func (m *metrics) call(op string, err error) {
	outcome := outcomeOK
	switch {
	case err == nil:
	case errors.Is(err, lifecycle.ErrNoActiveAction):
		outcome = outcomeNoActiveAction
	case errors.Is(err, ErrNotInGroup):
		outcome = outcomeNotInGroup
	case errors.Is(err, context.Canceled):
		outcome = outcomeCanceled
	default:
		outcome = outcomeError
	}
	m.awsCalls.WithLabelValues(op, outcome).Inc()
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

// meteredMetadata counts the calls to a Metadata.
type meteredMetadata struct {
	next Metadata
	m    *metrics
}

func (w meteredMetadata) InstanceID(ctx context.Context) (string, error) {
	id, err := w.next.InstanceID(ctx)
	w.m.call(opInstanceID, err)
	return id, err
}

func (w meteredMetadata) TargetLifecycleState(ctx context.Context) (string, error) {
	s, err := w.next.TargetLifecycleState(ctx)
	w.m.call(opTargetState, err)
	return s, err
}

func (w meteredMetadata) SpotInterruption(ctx context.Context) (*SpotNotice, error) {
	n, err := w.next.SpotInterruption(ctx)
	w.m.call(opSpot, err)
	return n, err
}

// meteredGroup counts the calls to a Group.
type meteredGroup struct {
	next Group
	m    *metrics
}

func (w meteredGroup) Instance(ctx context.Context, instanceID string) (Membership, error) {
	mb, err := w.next.Instance(ctx, instanceID)
	w.m.call(opDescribeInstance, err)
	return mb, err
}

func (w meteredGroup) Hooks(ctx context.Context, group string) ([]lifecycle.Hook, error) {
	h, err := w.next.Hooks(ctx, group)
	w.m.call(opDescribeHooks, err)
	return h, err
}

// meteredCompleter counts the calls to a Completer and the heartbeats
// accepted.
type meteredCompleter struct {
	next lifecycle.Completer
	m    *metrics
}

func (w meteredCompleter) Heartbeat(ctx context.Context, a lifecycle.Action) error {
	err := w.next.Heartbeat(ctx, a)
	w.m.call(opHeartbeat, err)
	if err == nil {
		w.m.heartbeats.Inc()
	}
	return err
}

func (w meteredCompleter) Complete(ctx context.Context, a lifecycle.Action, r lifecycle.Result) error {
	err := w.next.Complete(ctx, a, r)
	w.m.call(opComplete, err)
	return err
}

// meteredInbox counts the opening of the queue; the queue it returns
// counts its calls.
type meteredInbox struct {
	next Inbox
	m    *metrics
}

func (w meteredInbox) Open(ctx context.Context, instanceID string) (Queue, error) {
	q, err := w.next.Open(ctx, instanceID)
	w.m.call(opOpenQueue, err)
	if err != nil {
		return nil, err
	}
	return meteredQueue{next: q, m: w.m}, nil
}

// meteredQueue counts the calls to a Queue.
type meteredQueue struct {
	next Queue
	m    *metrics
}

func (w meteredQueue) Receive(ctx context.Context, wait time.Duration) ([]Message, error) {
	ms, err := w.next.Receive(ctx, wait)
	w.m.call(opReceive, err)
	return ms, err
}

func (w meteredQueue) Delete(ctx context.Context, m Message) error {
	err := w.next.Delete(ctx, m)
	w.m.call(opDelete, err)
	return err
}

func (w meteredQueue) Release(ctx context.Context, ms []Message) error {
	err := w.next.Release(ctx, ms)
	for range (len(ms) + SQSBatchLimit - 1) / SQSBatchLimit {
		w.m.call(opRelease, err)
	}
	return err
}

func (w meteredQueue) Keep(ctx context.Context, m Message) error {
	err := w.next.Keep(ctx, m)
	w.m.call(opKeep, err)
	return err
}

func (w meteredQueue) Remove(ctx context.Context) error {
	err := w.next.Remove(ctx)
	w.m.call(opRemoveQueue, err)
	return err
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
