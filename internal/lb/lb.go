// Package lb registers an instance with its load balancers and waits for
// what AWS reports: healthy after a registration, drained after a
// deregistration. It speaks to ELBv2 target groups and classic load
// balancers through Registrar, a small interface implemented by
// internal/awscloud; the waits are bounded and poll at an interval.
package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is the kind of a load balancer target.
type Kind string

// The kinds of targets.
const (
	KindTargetGroup Kind = "target-group" // an ELBv2 target group, by ARN, with a port
	KindClassic     Kind = "classic"      // a classic load balancer, by name
)

// Target is one place the instance is registered: a target group (Name is
// its ARN, Port the instance's port, 0 for the target group's own) or a
// classic load balancer (Name is its name, Port is 0).
type Target struct {
	Kind Kind
	Name string
	Port int
}

// String names t in logs and errors: the target group's name part of its
// ARN with ":port" when set, or "elb/NAME".
func (t Target) String() string {
	if t.Kind == KindClassic {
		return "elb/" + t.Name
	}
	s := t.Name
	if i := strings.LastIndex(s, ":targetgroup/"); i >= 0 {
		s = s[i+1:]
	}
	if t.Port != 0 {
		s += ":" + strconv.Itoa(t.Port)
	}
	return s
}

// State is a target's health as ELBv2 reports it; a classic load
// balancer's InService is StateHealthy, its OutOfService StateUnhealthy,
// an instance it does not list StateUnused.
type State string

// The target states (DescribeTargetHealth's TargetHealth.State).
const (
	StateInitial     State = "initial"
	StateHealthy     State = "healthy"
	StateUnhealthy   State = "unhealthy"
	StateUnused      State = "unused"
	StateDraining    State = "draining"
	StateUnavailable State = "unavailable"
)

// Health is one target's health: its state, AWS's reason code (such as
// Elb.RegistrationInProgress or Target.FailedHealthChecks; "" when none)
// and description.
type Health struct {
	State       State
	Reason      string
	Description string
}

// Registrar registers the instance with the targets of one kind and reads
// their health. It is implemented by internal/awscloud (ELBv2 and classic
// ELB). Registering a registered instance and deregistering one that is
// not registered are not errors. A target that does not exist is an error
// wrapping ErrNotFound; a target AWS refuses for this instance (not in the
// target group's VPC, not running) wraps ErrInvalidTarget.
type Registrar interface {
	Register(ctx context.Context, instance string, t Target) error
	Deregister(ctx context.Context, instance string, t Target) error
	Health(ctx context.Context, instance string, t Target) (Health, error)
}

// Errors the Registrar maps AWS's to.
var (
	// ErrNotFound: the target group or load balancer does not exist
	// (TargetGroupNotFound, LoadBalancerNotFound, AccessPointNotFound).
	ErrNotFound = errors.New("load balancer or target group not found")
	// ErrInvalidTarget: AWS refuses the instance as a target
	// (InvalidTarget, InvalidInstance).
	ErrInvalidTarget = errors.New("instance is not a valid target")
	// ErrTimeout: a wait ended at its bound (see *WaitError).
	ErrTimeout = errors.New("timed out")
)

// TargetHealth is one target's last health read, or the error reading it.
type TargetHealth struct {
	Target Target
	Health Health
	Err    error
}

// WaitError is the error of a wait that reached its timeout: what it waited
// for and the last health read of every target. It wraps ErrTimeout.
type WaitError struct {
	Want    string // "healthy" or "drained"
	Timeout time.Duration
	Last    []TargetHealth
}

func (e *WaitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "not %s within %v:", e.Want, e.Timeout)
	for _, th := range e.Last {
		fmt.Fprintf(&b, " %s %s", th.Target, describe(th))
	}
	return b.String()
}

func (e *WaitError) Unwrap() error { return ErrTimeout }

// describe writes a target's last read as "state (reason)" or "error: …".
func describe(th TargetHealth) string {
	if th.Err != nil {
		return "error: " + th.Err.Error()
	}
	if th.Health.Reason != "" {
		return string(th.Health.State) + " (" + th.Health.Reason + ")"
	}
	return string(th.Health.State)
}

// DefaultInterval is the time between two health reads when
// Traffic.Interval is 0.
const DefaultInterval = 5 * time.Second

// Traffic registers one instance with targets of both kinds and waits on
// their health. Registrars holds the Registrar of each kind used; a target
// of a kind it lacks is an error. Log may be nil. Traffic holds no state of
// its own: its methods may be called concurrently and again after an
// interruption (every one is idempotent).
type Traffic struct {
	Registrars map[Kind]Registrar
	Interval   time.Duration
	Log        *slog.Logger
	// Observe, when set, is given every read of the waits, as it is made
	// (for a status page); it must not block.
	Observe func([]TargetHealth)
}

func (tr *Traffic) registrar(t Target) (Registrar, error) {
	r := tr.Registrars[t.Kind]
	if r == nil {
		return nil, fmt.Errorf("%s: no registrar for %s targets", t, t.Kind)
	}
	return r, nil
}

func (tr *Traffic) log() *slog.Logger {
	if tr.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return tr.Log
}

func (tr *Traffic) interval() time.Duration {
	if tr.Interval <= 0 {
		return DefaultInterval
	}
	return tr.Interval
}

// Register registers instance with every target, stopping at the first
// error.
func (tr *Traffic) Register(ctx context.Context, instance string, targets []Target) error {
	for _, t := range targets {
		r, err := tr.registrar(t)
		if err != nil {
			return err
		}
		if err := r.Register(ctx, instance, t); err != nil {
			return fmt.Errorf("register %s with %s: %w", instance, t, err)
		}
		tr.log().Info("target registered", "target", t.String())
	}
	return nil
}

// Deregister deregisters instance from every target. A target that no
// longer exists, or that refuses the instance, has nothing to drain: it is
// logged and skipped. Other errors are returned together, after every
// target was tried.
func (tr *Traffic) Deregister(ctx context.Context, instance string, targets []Target) error {
	var errs []error
	for _, t := range targets {
		r, err := tr.registrar(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = r.Deregister(ctx, instance, t)
		switch {
		case err == nil:
			tr.log().Info("target deregistered", "target", t.String())
		case errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidTarget):
			tr.log().Warn("target not deregistered: nothing to drain", "target", t.String(), "err", err)
		default:
			errs = append(errs, fmt.Errorf("deregister %s from %s: %w", instance, t, err))
		}
	}
	return errors.Join(errs...)
}

// Health reads every target's health once.
func (tr *Traffic) Health(ctx context.Context, instance string, targets []Target) []TargetHealth {
	out := make([]TargetHealth, len(targets))
	for i, t := range targets {
		out[i].Target = t
		r, err := tr.registrar(t)
		if err != nil {
			out[i].Err = err
			continue
		}
		out[i].Health, out[i].Err = r.Health(ctx, instance, t)
	}
	return out
}

// Healthy reports whether th is healthy.
func Healthy(th TargetHealth) bool { return th.Err == nil && th.Health.State == StateHealthy }

// Drained reports whether th has nothing left to drain: unused (no longer
// registered), or its target group or load balancer is gone.
func Drained(th TargetHealth) bool {
	if th.Err != nil {
		return errors.Is(th.Err, ErrNotFound)
	}
	return th.Health.State == StateUnused
}

// WaitHealthy reads the targets' health every Interval until every one is
// healthy in the same read (nil). It returns a *WaitError (ErrTimeout)
// when timeout passes first, at once an error wrapping ErrNotFound when a
// target does not exist, and ctx's error when ctx ends. A failed read is
// retried at the next interval.
func (tr *Traffic) WaitHealthy(ctx context.Context, instance string, targets []Target, timeout time.Duration) error {
	return tr.wait(ctx, instance, targets, timeout, "healthy", Healthy, func(th TargetHealth) error {
		if errors.Is(th.Err, ErrNotFound) {
			return fmt.Errorf("%s: %w", th.Target, th.Err)
		}
		return nil
	})
}

// WaitDrained reads the targets' health every Interval until every one is
// drained (Drained) in the same read (nil). It returns a *WaitError
// (ErrTimeout) when timeout passes first and ctx's error when ctx ends. A
// failed read is retried at the next interval.
func (tr *Traffic) WaitDrained(ctx context.Context, instance string, targets []Target, timeout time.Duration) error {
	return tr.wait(ctx, instance, targets, timeout, "drained", Drained, func(TargetHealth) error { return nil })
}

// wait is WaitHealthy and WaitDrained: read, judge each target with done,
// stop at once on fatal's error.
func (tr *Traffic) wait(ctx context.Context, instance string, targets []Target, timeout time.Duration, want string, done func(TargetHealth) bool, fatal func(TargetHealth) error) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	last := make([]string, len(targets))
	var read []TargetHealth
	for {
		read = tr.Health(wctx, instance, targets)
		if err := ctx.Err(); err != nil {
			return err
		}
		if wctx.Err() != nil {
			return &WaitError{Want: want, Timeout: timeout, Last: read}
		}
		if tr.Observe != nil {
			tr.Observe(read)
		}
		all := true
		for i, th := range read {
			if err := fatal(th); err != nil {
				return err
			}
			if d := describe(th); d != last[i] {
				tr.log().Info("target health", "target", th.Target.String(), "state", d)
				last[i] = d
			}
			all = all && done(th)
		}
		if all {
			tr.log().Info("targets "+want, "targets", len(targets), "took", time.Since(start).String())
			return nil
		}
		t := time.NewTimer(tr.interval())
		select {
		case <-wctx.Done():
			t.Stop()
			if err := ctx.Err(); err != nil {
				return err
			}
			return &WaitError{Want: want, Timeout: timeout, Last: read}
		case <-t.C:
		}
	}
}

// Attachments are the load balancers an Auto Scaling group attaches
// itself (DescribeAutoScalingGroups TargetGroupARNs and
// LoadBalancerNames): the group registers its instances with them after
// Pending:Proceed and deregisters them before Terminating:Wait.
type Attachments struct {
	TargetGroupARNs   []string
	LoadBalancerNames []string
}

// Attached reports whether the group attaches t.
func (a Attachments) Attached(t Target) bool {
	names := a.TargetGroupARNs
	if t.Kind == KindClassic {
		names = a.LoadBalancerNames
	}
	return slices.Contains(names, t.Name)
}
