package awscloud

import (
	"context"
	"errors"
	"net/http"
	"path"
	"reflect"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes in lifeguard_aws_calls_total{outcome}.
const (
	outcomeOK             = "ok"
	outcomeError          = "error"
	outcomeNoActiveAction = "no_active_action"
	outcomeCanceled       = "canceled"
	outcomeNotFound       = "not_found" // HTTP 404: for instance metadata, no such item (yet)
)

// callsMiddlewareID names the counting middleware in an operation's stack.
const callsMiddlewareID = "lifeguard/CountCalls"

// CallCounter counts every call made by the SDK clients built from the
// configurations it instruments, whatever the service: Auto Scaling, SQS,
// SNS, instance metadata, and any added later. It is the counter
// lifeguard_aws_calls_total{op, outcome, service} and a
// prometheus.Collector. A call is one operation, however many HTTP
// attempts its retries make. op is the operation's name
// (CompleteLifecycleAction, ReceiveMessage, …), for instance metadata
// "imds:" and the path read (imds:instance-id,
// imds:autoscaling/target-lifecycle-state, imds:spot/instance-action,
// imds:instance-life-cycle;
// imds:api/token for a session token); service is the client's package
// (autoscaling, sqs, sns, imds); outcome is ok, no_active_action (Auto
// Scaling has no such lifecycle action), not_found (HTTP 404: an instance
// metadata item that is not there, such as the spot notice), canceled or
// error.
type CallCounter struct {
	calls *prometheus.CounterVec
}

var _ prometheus.Collector = (*CallCounter)(nil)

// NewCallCounter returns a counter with no calls counted.
func NewCallCounter() *CallCounter {
	return &CallCounter{calls: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lifeguard_aws_calls_total",
		Help: "Calls to AWS APIs and instance metadata, by operation, service and outcome (ok, error, no_active_action, not_found, canceled).",
	}, []string{"op", "outcome", "service"})}
}

// Instrument makes every client built from cfg from now on count its calls
// in c (an SDK middleware in cfg.APIOptions). Instrumenting a
// configuration twice counts each call once.
func (c *CallCounter) Instrument(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, c.addMiddleware)
}

// Describe implements prometheus.Collector.
func (c *CallCounter) Describe(ch chan<- *prometheus.Desc) { c.calls.Describe(ch) }

// Collect implements prometheus.Collector.
func (c *CallCounter) Collect(ch chan<- prometheus.Metric) { c.calls.Collect(ch) }

func (c *CallCounter) addMiddleware(stack *middleware.Stack) error {
	if _, ok := stack.Initialize.Get(callsMiddlewareID); ok {
		return nil
	}
	return stack.Initialize.Add(&countCalls{c: c, op: stack.ID()}, middleware.Before)
}

// countCalls is the counting middleware of one operation (op).
type countCalls struct {
	c  *CallCounter
	op string
}

func (*countCalls) ID() string { return callsMiddlewareID }

func (m *countCalls) HandleInitialize(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleInitialize(ctx, in)
	service, name := callLabels(m.op, in.Parameters)
	m.c.calls.WithLabelValues(name, outcome(err), service).Inc()
	return out, md, err
}

// callCounterOf returns the CallCounter cfg was instrumented with, or nil:
// for calls made without the SDK's operation stack.
func callCounterOf(cfg aws.Config) *CallCounter {
	stack := middleware.NewStack("lifeguard/find-counter", nil)
	for _, fn := range cfg.APIOptions {
		if err := fn(stack); err != nil {
			return nil
		}
	}
	if m, ok := stack.Initialize.Get(callsMiddlewareID); ok {
		if cc, ok := m.(*countCalls); ok {
			return cc.c
		}
	}
	return nil
}

// callLabels returns the service and operation labels of a call of
// operation op with input params.
func callLabels(op string, params any) (service, name string) {
	t := reflect.TypeOf(params)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil {
		service = path.Base(t.PkgPath())
	}
	if service != "imds" {
		return service, op
	}
	if in, ok := params.(*imds.GetMetadataInput); ok {
		return service, "imds:" + strings.TrimPrefix(in.Path, "/")
	}
	if op == "getToken" {
		return service, "imds:api/token"
	}
	return service, "imds:" + op
}

// outcome classifies a call's error.
func outcome(err error) string {
	var ae smithy.APIError
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, context.Canceled):
		return outcomeCanceled
	case errors.As(err, &ae) && isNoActiveAction(ae):
		return outcomeNoActiveAction
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
		return outcomeNotFound
	}
	return outcomeError
}
