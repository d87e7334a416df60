package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lb"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// The built-in steps of the traffic section.
const (
	// RegisterStep is the launch plan's readiness check after the probes:
	// register with the load balancers the instance registers itself, and
	// wait until healthy in each.
	RegisterStep = "lifeguard:register-and-wait-healthy"
	// DeregisterStep is the terminate plan's step after the leadership
	// hand-off and before the user's steps: deregister (or, where the group
	// deregisters, let it) and wait until drained.
	DeregisterStep = "lifeguard:deregister-and-wait-drained"
)

const (
	// deregisterBound bounds the deregistration calls, which run on a
	// context detached from the step's: once asked, they go out even when
	// the agent stops.
	deregisterBound = 30 * time.Second
	// trafficStepMargin is added to a wait's bound to make its step's
	// timeout, room for the calls around the wait.
	trafficStepMargin = time.Minute
)

// Attachments reads the load balancers an Auto Scaling group attaches
// itself. It is implemented by internal/awscloud (DescribeAutoScalingGroups).
type Attachments interface {
	Attachments(ctx context.Context, group string) (lb.Attachments, error)
}

// TrafficTags reads an instance's tags with the EC2 API. It is implemented
// by internal/awscloud (DescribeTags).
type TrafficTags interface {
	// Tags returns the instance's tags among keys; a key it lacks is absent.
	Tags(ctx context.Context, instance string, keys ...string) (map[string]string, error)
}

// TrafficDeps are what the traffic section needs: a Registrar for each
// kind of target used (both with traffic.from_tags), Attachments with
// traffic.mode auto, Tags with traffic.from_tags.
type TrafficDeps struct {
	Registrars  map[lb.Kind]lb.Registrar
	Attachments Attachments
	Tags        TrafficTags
}

// errTrafficConfig marks what retrying will not mend: a tag that does not
// parse, a target group or load balancer that does not exist, an instance
// AWS refuses as a target.
var errTrafficConfig = errors.New("traffic configuration")

// traffic is the agent's traffic section: the two built-in steps and what
// they share (the targets, resolved once).
type traffic struct {
	cfg  config.Traffic
	deps TrafficDeps
	lb   *lb.Traffic
	log  *slog.Logger

	mu      sync.Mutex
	targets []lb.Target // resolved; nil until resolve succeeds
	done    bool
	last    []TargetDoc // the waits' last read, for /status
}

// TargetDoc is one load balancer target in /status (traffic): its health
// as the agent's last wait read it.
type TargetDoc struct {
	Kind   string    `json:"kind"` // target-group or classic
	Name   string    `json:"name"` // the target group's ARN or the load balancer's name
	Port   int       `json:"port,omitempty"`
	State  string    `json:"state,omitempty"` // AWS's: initial, healthy, unhealthy, unused, draining, unavailable
	Reason string    `json:"reason,omitempty"`
	Error  string    `json:"error,omitempty"`
	Read   time.Time `json:"read"`
}

// observe keeps the waits' last read (lb.Traffic.Observe).
func (t *traffic) observe(read []lb.TargetHealth) {
	now := time.Now()
	docs := make([]TargetDoc, len(read))
	for i, th := range read {
		docs[i] = TargetDoc{Kind: string(th.Target.Kind), Name: th.Target.Name, Port: th.Target.Port,
			State: string(th.Health.State), Reason: th.Health.Reason, Read: now}
		if th.Err != nil {
			docs[i].State, docs[i].Error = "", th.Err.Error()
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = docs
}

// status returns the waits' last read; empty before the first.
func (t *traffic) status() []TargetDoc {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]TargetDoc{}, t.last...)
}

func newTraffic(cfg config.Traffic, deps TrafficDeps, log *slog.Logger) (*traffic, error) {
	var errs []error
	if (len(cfg.TargetGroups) > 0 || cfg.FromTags) && deps.Registrars[lb.KindTargetGroup] == nil {
		errs = append(errs, errors.New("traffic needs deps.Traffic.Registrars[target-group]"))
	}
	if (len(cfg.LoadBalancers) > 0 || cfg.FromTags) && deps.Registrars[lb.KindClassic] == nil {
		errs = append(errs, errors.New("traffic needs deps.Traffic.Registrars[classic]"))
	}
	if cfg.Mode == config.TrafficAuto && deps.Attachments == nil {
		errs = append(errs, errors.New("traffic.mode auto needs deps.Traffic.Attachments"))
	}
	if cfg.FromTags && deps.Tags == nil {
		errs = append(errs, errors.New("traffic.from_tags needs deps.Traffic.Tags"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log = log.With("component", "traffic")
	t := &traffic{cfg: cfg, deps: deps, log: log}
	t.lb = &lb.Traffic{Registrars: deps.Registrars, Interval: time.Duration(cfg.PollInterval), Log: log, Observe: t.observe}
	return t, nil
}

func (t *traffic) registerStep() lifecycle.Step {
	return lifecycle.Step{Name: RegisterStep, Builtin: t.register, OnFailure: lifecycle.FailAbandon,
		Timeout: time.Duration(t.cfg.WaitHealthyTimeout) + trafficStepMargin}
}

func (t *traffic) deregisterStep() lifecycle.Step {
	return lifecycle.Step{Name: DeregisterStep, Builtin: t.deregister, OnFailure: lifecycle.FailContinue,
		Timeout: time.Duration(t.cfg.WaitDrainedTimeout) + trafficStepMargin}
}

// resolve returns TrafficTargets, read once: later calls return the same.
func (t *traffic) resolve(ctx context.Context, instance string) ([]lb.Target, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return t.targets, nil
	}
	out, err := TrafficTargets(ctx, t.cfg, t.deps.Tags, instance)
	if err != nil {
		return nil, err
	}
	t.targets, t.done = out, true
	if len(out) == 0 {
		t.log.Info("no target group or load balancer configured or tagged")
	}
	return out, nil
}

// TrafficTargets returns the targets cfg names and, with cfg.FromTags,
// those the instance's tags name (config.TagTargetGroups,
// config.TagLoadBalancers, read with tags), each once: target groups
// first, in order. A tag that does not parse is an error naming it.
func TrafficTargets(ctx context.Context, cfg config.Traffic, tags TrafficTags, instance string) ([]lb.Target, error) {
	tgs, names := cfg.TargetGroups, cfg.LoadBalancers
	if cfg.FromTags {
		if tags == nil {
			return nil, errors.New("traffic.from_tags needs a tag reader")
		}
		tagged, err := tags.Tags(ctx, instance, config.TagTargetGroups, config.TagLoadBalancers)
		if err != nil {
			return nil, fmt.Errorf("read the instance's traffic tags: %w", err)
		}
		more, err := config.ParseTargetGroupsTag(tagged[config.TagTargetGroups])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errTrafficConfig, err)
		}
		lbs, err := config.ParseLoadBalancersTag(tagged[config.TagLoadBalancers])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errTrafficConfig, err)
		}
		tgs = append(append([]config.TargetGroup{}, tgs...), more...)
		names = append(append([]string{}, names...), lbs...)
	}
	var out []lb.Target
	seen := map[lb.Target]bool{}
	add := func(tt lb.Target) {
		if !seen[tt] {
			seen[tt] = true
			out = append(out, tt)
		}
	}
	for _, tg := range tgs {
		add(lb.Target{Kind: lb.KindTargetGroup, Name: tg.ARN, Port: tg.Port})
	}
	for _, n := range names {
		add(lb.Target{Kind: lb.KindClassic, Name: n})
	}
	return out, nil
}

// split divides targets into those the agent registers itself and those
// the group attaches (traffic.mode, and with auto the group's
// attachments).
func (t *traffic) split(ctx context.Context, group string, targets []lb.Target) (self, owned []lb.Target, err error) {
	switch {
	case len(targets) == 0:
		return nil, nil, nil
	case t.cfg.Mode == config.TrafficSelf:
		return targets, nil, nil
	case t.cfg.Mode == config.TrafficGroup:
		return nil, targets, nil
	case group == "":
		t.log.Warn("the instance's group is not known: the agent registers every target itself")
		return targets, nil, nil
	}
	at, err := t.deps.Attachments.Attachments(ctx, group)
	if err != nil {
		return nil, nil, fmt.Errorf("read the group's load balancers: %w", err)
	}
	for _, tt := range targets {
		if at.Attached(tt) {
			owned = append(owned, tt)
		} else {
			self = append(self, tt)
		}
	}
	return self, owned, nil
}

// fatal reports whether err will not mend by retrying.
func fatal(err error) bool {
	return errors.Is(err, errTrafficConfig) || errors.Is(err, lb.ErrNotFound) || errors.Is(err, lb.ErrInvalidTarget)
}

// retry runs fn until it succeeds, fails for good (fatal), ctx ends, or
// the next attempt would start after deadline, waiting
// traffic.poll_interval between attempts.
func (t *traffic) retry(ctx context.Context, deadline time.Time, what string, fn func() error) error {
	interval := time.Duration(t.cfg.PollInterval)
	for {
		err := fn()
		if err == nil || fatal(err) || ctx.Err() != nil || !time.Now().Add(interval).Before(deadline) {
			return err
		}
		t.log.Warn(what+" failed; trying again", keyErr, err, keyRetryIn, interval.String())
		tm := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		case <-tm.C:
		}
	}
}

// register is RegisterStep's body: register with the targets the agent
// owns and wait until each is healthy, within traffic.wait_healthy_timeout.
// The group registers with its own after the launch (Pending:Proceed), so
// they are not waited for here. It is idempotent: registering again is
// harmless.
func (t *traffic) register(ctx context.Context, act lifecycle.Action) error {
	timeout := time.Duration(t.cfg.WaitHealthyTimeout)
	deadline := time.Now().Add(timeout)
	var self, owned []lb.Target
	err := t.retry(ctx, deadline, "traffic registration", func() error {
		targets, err := t.resolve(ctx, act.InstanceID)
		if err != nil {
			return err
		}
		if self, owned, err = t.split(ctx, act.Group, targets); err != nil {
			return err
		}
		return t.lb.Register(ctx, act.InstanceID, self)
	})
	if err != nil {
		return fmt.Errorf("traffic registration: %w", err)
	}
	if len(owned) > 0 {
		t.log.Info("the group registers the instance with its own load balancers after the launch", "targets", len(owned))
	}
	if len(self) == 0 {
		return nil
	}
	if err := t.lb.WaitHealthy(ctx, act.InstanceID, self, time.Until(deadline)); err != nil {
		return fmt.Errorf("traffic registration: %w", err)
	}
	return nil
}

// deregister is DeregisterStep's body: deregister from the targets the
// agent owns and wait until every target is drained, within
// traffic.wait_drained_timeout. The group deregisters the instance from its
// own before Terminating:Wait when it terminates the instance (reason
// lifecycle-hook), so those are only waited for; on a spot interruption or
// a SIGTERM drain the group will not, and the agent deregisters from them
// too. A failure to read the group's attachments deregisters from every
// target: the instance is leaving either way. It is idempotent.
func (t *traffic) deregister(ctx context.Context, act lifecycle.Action) error {
	timeout := time.Duration(t.cfg.WaitDrainedTimeout)
	deadline := time.Now().Add(timeout)
	var targets []lb.Target
	err := t.retry(ctx, deadline, "reading the traffic targets", func() error {
		var err error
		targets, err = t.resolve(ctx, act.InstanceID)
		return err
	})
	if err != nil {
		return fmt.Errorf("traffic deregistration: %w", err)
	}
	if len(targets) == 0 {
		return nil
	}
	self, owned, err := t.split(ctx, act.Group, targets)
	if err != nil {
		t.log.Warn("deregistering from every target", keyErr, err)
		self, owned = targets, nil
	}
	if act.Reason != lifecycle.ReasonLifecycleHook && len(owned) > 0 {
		t.log.Info("the group will not deregister the instance: deregistering from its load balancers too", keyReason, string(act.Reason))
		self, owned = append(self, owned...), nil
	}
	if len(owned) > 0 {
		t.log.Info("waiting for the group's own deregistration", "targets", len(owned))
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deregisterBound)
	err = t.retry(dctx, deadline, "traffic deregistration", func() error { return t.lb.Deregister(dctx, act.InstanceID, self) })
	cancel()
	if err != nil {
		return fmt.Errorf("traffic deregistration: %w", err)
	}
	if err := t.lb.WaitDrained(ctx, act.InstanceID, targets, time.Until(deadline)); err != nil {
		return fmt.Errorf("traffic deregistration: %w", err)
	}
	return nil
}
