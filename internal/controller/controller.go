package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lease"
)

// ErrInstanceNotFound is returned by a Tagger when EC2 does not know the
// instance yet (InvalidInstanceID.NotFound): the write is tried again.
var ErrInstanceNotFound = errors.New("instance not known to EC2 yet")

// GroupMember is one instance as Auto Scaling lists it in its group.
type GroupMember struct {
	ID             string
	LifecycleState string
	Health         string
}

// Group is an Auto Scaling group as Auto Scaling describes it.
type Group struct {
	Name    string
	Tags    map[string]string
	Members []GroupMember
}

// Instance is an instance as EC2 describes it.
type Instance struct {
	ID string
	// Running reports that its EC2 state is pending or running.
	Running  bool
	Launched time.Time
	Tags     map[string]string
}

// Fleet reads groups and their instances (DescribeAutoScalingGroups,
// DescribeInstances).
type Fleet interface {
	// Groups returns the named groups, or with no names every group
	// tagged optKey=optValue; groups that do not exist are left out.
	Groups(ctx context.Context, names []string, optKey, optValue string) ([]Group, error)
	// Instances returns the instances EC2 shows with the group's
	// aws:autoscaling:groupName tag, in any state.
	Instances(ctx context.Context, group string) ([]Instance, error)
}

// Tagger writes instance tags (CreateTags, DeleteTags). Both return an
// error wrapping ErrInstanceNotFound when EC2 does not know the instance.
type Tagger interface {
	SetTag(ctx context.Context, instance, key, value string) error
	DeleteTag(ctx context.Context, instance, key string) error
}

// Completer completes the lifecycle actions an instance waits on
// (CompleteLifecycleAction for each hook of its transition, by instance
// id); an action already gone is not an error.
type Completer interface {
	CompleteWaiting(ctx context.Context, group, instance, state, result string) error
}

// Presence returns the presence items the agents of a group keep in the
// lease table (lease.Roster's Members).
type Presence interface {
	Members(ctx context.Context, group string) ([]lease.Member, error)
}

// Group tags that opt a group in and override its settings.
const (
	DefaultOptInKey   = "lifeguard:controller"
	DefaultOptInValue = "enabled"
	// TagLeaderKey, TagLeaderValue and TagFollowerValue on a group
	// override Config.Leader for it.
	TagLeaderKey     = "lifeguard:leader-tag-key"
	TagLeaderValue   = "lifeguard:leader-tag-value"
	TagFollowerValue = "lifeguard:leader-tag-follower-value"
	// TagLeadership set to "off" on a group turns its tag leadership
	// off (the reaper still runs).
	TagLeadership = "lifeguard:leadership"
)

// Defaults of Config.
const (
	DefaultSettle = time.Second
	DefaultRounds = 10
)

// Config configures a Controller.
type Config struct {
	// OptInKey=OptInValue is the group tag that opts a group in (default
	// lifeguard:controller=enabled).
	OptInKey, OptInValue string
	// Leader is the tag leadership settings of groups whose own tags do
	// not override them.
	Leader Settings
	// Reap configures the orphan reaper, which runs when Presence is set.
	Reap ReapSettings
	// Settle is the wait between writing tags and reading them back, and
	// before writing again to an instance EC2 does not know yet.
	Settle time.Duration
	// Rounds bounds the write, re-read and repair rounds of one reconcile.
	Rounds int
	// QueuePrefix is the agents' sqs.queue_prefix, whose queues
	// SweepQueues deletes once their instance is gone (default
	// DefaultQueuePrefix).
	QueuePrefix string
}

// Deps are a Controller's connections. Presence may be nil: the reaper is
// then off.
type Deps struct {
	Fleet     Fleet
	Tags      Tagger
	Completer Completer
	Presence  Presence
	// Queues turns on the sweep of gone instances' queues (SweepQueues).
	Queues Queues
}

// Controller reconciles opted-in groups. Reconciles of one group are
// serialised; of different groups they may run at once. Safe for
// concurrent use.
type Controller struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	mu      sync.Mutex
	locks   map[string]chan struct{} // per group, capacity 1: held while reconciling
	waiting map[string]time.Time     // group/instance/state → first seen waiting
	stats   Stats

	sweeping   chan struct{}        // capacity 1: held while sweeping queues
	goneQueues map[string]time.Time // instance of a listed queue → first seen gone (under mu)
}

// Stats counts what a controller did.
type Stats struct {
	Reconciles int
	TagWrites  int
	Reaped     int
	// QueuesDeleted and SubscriptionsDeleted count what SweepQueues
	// deleted.
	QueuesDeleted        int
	SubscriptionsDeleted int
}

// New returns a controller; it checks cfg and deps.
func New(cfg Config, deps Deps, log *slog.Logger) (*Controller, error) {
	if cfg.OptInKey == "" {
		cfg.OptInKey = DefaultOptInKey
	}
	if cfg.OptInValue == "" {
		cfg.OptInValue = DefaultOptInValue
	}
	cfg.Leader = cfg.Leader.WithDefaults()
	cfg.Reap = cfg.Reap.WithDefaults()
	if cfg.QueuePrefix == "" {
		cfg.QueuePrefix = DefaultQueuePrefix
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = DefaultRounds
	}
	var errs []error
	if err := cfg.Leader.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, r := range []struct{ name, v string }{{"launch result", cfg.Reap.Launch}, {"terminate result", cfg.Reap.Terminate}} {
		if r.v != ResultAbandon && r.v != ResultContinue {
			errs = append(errs, fmt.Errorf("reaper %s %q: use CONTINUE or ABANDON", r.name, r.v))
		}
	}
	if deps.Fleet == nil || deps.Tags == nil {
		errs = append(errs, errors.New("controller needs deps.Fleet and deps.Tags"))
	}
	if deps.Presence != nil && deps.Completer == nil {
		errs = append(errs, errors.New("the reaper (deps.Presence) needs deps.Completer"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Controller{cfg: cfg, deps: deps, log: log, locks: map[string]chan struct{}{}, waiting: map[string]time.Time{},
		sweeping: make(chan struct{}, 1), goneQueues: map[string]time.Time{}}, nil
}

// Stats returns the counts so far.
func (c *Controller) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Handle reconciles the groups an event asks for (see ParseEvent). It
// returns the event's parse error or the reconciles' errors joined, so
// that a Lambda invocation fails and is retried.
func (c *Controller) Handle(ctx context.Context, raw []byte) error {
	t, err := ParseEvent(raw)
	if err != nil && len(t.Groups) == 0 && !t.All {
		return err
	}
	return errors.Join(err, c.Trigger(ctx, t))
}

// Trigger reconciles the trigger's groups one after the other; one for
// every group (a scheduled event) also sweeps the queues of gone
// instances.
func (c *Controller) Trigger(ctx context.Context, t Trigger) (err error) {
	groups, err := c.resolve(ctx, t)
	if err != nil {
		return err
	}
	var errs []error
	if t.All {
		defer func() { err = errors.Join(err, c.SweepQueues(ctx)) }()
	}
	for _, g := range groups {
		if err := c.Reconcile(ctx, g); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// resolve returns the names of the trigger's groups (every opted-in group
// for All).
func (c *Controller) resolve(ctx context.Context, t Trigger) ([]string, error) {
	if !t.All {
		return t.Groups, nil
	}
	gs, err := c.deps.Fleet.Groups(ctx, nil, c.cfg.OptInKey, c.cfg.OptInValue)
	if err != nil {
		return nil, fmt.Errorf("list opted-in groups: %w", err)
	}
	names := t.Groups
	for _, g := range gs {
		if !slices.Contains(names, g.Name) {
			names = append(names, g.Name)
		}
	}
	return names, nil
}

// lock returns the group's lock: a channel of capacity 1, so that a
// reconcile waiting for it also ends with its context.
func (c *Controller) lock(group string) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.locks[group]
	if !ok {
		l = make(chan struct{}, 1)
		c.locks[group] = l
	}
	return l
}

// settings returns the group's tag leadership settings, or ok false when
// the group opted out of it.
func (c *Controller) settings(g Group) (Settings, bool) {
	s := c.cfg.Leader
	if v, ok := g.Tags[TagLeaderKey]; ok && v != "" {
		s.Key = v
	}
	if v, ok := g.Tags[TagLeaderValue]; ok && v != "" {
		s.Value = v
	}
	if v, ok := g.Tags[TagFollowerValue]; ok {
		s.FollowerValue = v
	}
	return s, g.Tags[TagLeadership] != "off"
}

// snapshot reads the group and its instances; ok is false when the group
// does not exist or has not opted in.
func (c *Controller) snapshot(ctx context.Context, name string) (Group, []Member, bool, error) {
	gs, err := c.deps.Fleet.Groups(ctx, []string{name}, "", "")
	if err != nil {
		return Group{}, nil, false, fmt.Errorf("describe group %s: %w", name, err)
	}
	if len(gs) == 0 || gs[0].Tags[c.cfg.OptInKey] != c.cfg.OptInValue {
		return Group{}, nil, false, nil
	}
	g := gs[0]
	s, _ := c.settings(g)
	insts, err := c.deps.Fleet.Instances(ctx, name)
	if err != nil {
		return Group{}, nil, false, fmt.Errorf("describe instances of %s: %w", name, err)
	}
	return g, Join(s.WithDefaults().Key, g.Members, insts), true, nil
}

// Join returns the members of a group from Auto Scaling's and EC2's
// views, sorted by id: every instance either lists (EC2's stray
// instances that still carry the group's tag included).
func Join(key string, gms []GroupMember, insts []Instance) []Member {
	byID := map[string]*Member{}
	for _, gm := range gms {
		byID[gm.ID] = &Member{ID: gm.ID, LifecycleState: gm.LifecycleState, Health: gm.Health}
	}
	for _, in := range insts {
		m, ok := byID[in.ID]
		if !ok {
			m = &Member{ID: in.ID}
			byID[in.ID] = m
		}
		m.Known, m.Running, m.Launched = true, in.Running, in.Launched
		m.Tag, m.HasTag = in.Tags[key]
	}
	var out []Member
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		out = append(out, *byID[id])
	}
	return out
}

// Reconcile brings one group's leader tag to exactly one leader, writing,
// re-reading and repairing until Decide has nothing left to do (at most
// Rounds rounds), and then runs the reaper. Reconciles of one group are
// serialised. A group that does not exist or has not opted in is left
// alone.
func (c *Controller) Reconcile(ctx context.Context, group string) error {
	l := c.lock(group)
	select {
	case l <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l }()
	c.mu.Lock()
	c.stats.Reconciles++
	c.mu.Unlock()
	log := c.log.With("group", group)
	var g Group
	var lastErr error
	settled := false
	for round := range c.cfg.Rounds {
		if round > 0 {
			if err := sleep(ctx, c.cfg.Settle); err != nil {
				return err
			}
		}
		var ms []Member
		var ok bool
		var err error
		g, ms, ok, err = c.snapshot(ctx, group)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		s, on := c.settings(g)
		if !on {
			settled = true
			break
		}
		p := Decide(s, ms)
		if p.Empty() {
			settled = true
			break
		}
		log.Info("leader tag converging", "leader", p.Leader, "reason", p.Reason, "writes", len(p.Writes()), "round", round)
		lastErr = c.apply(ctx, s.WithDefaults(), p)
		if lastErr != nil && ctx.Err() != nil {
			return lastErr
		}
	}
	var errs []error
	if !settled {
		errs = append(errs, fmt.Errorf("leader tag of %s not settled after %d rounds: %w", group, c.cfg.Rounds, lastErr))
	}
	if c.deps.Presence != nil {
		errs = append(errs, c.reap(ctx, g))
	}
	return errors.Join(errs...)
}

// apply writes the plan: every First write, and Then only when all of
// First succeeded (a failed election must not be followed by the removal
// of the last leader's tag).
func (c *Controller) apply(ctx context.Context, s Settings, p Plan) error {
	for _, ws := range [][]Write{p.First, p.Then} {
		var errs []error
		for _, w := range ws {
			var err error
			if w.Delete {
				err = c.deps.Tags.DeleteTag(ctx, w.Instance, s.Key)
			} else {
				err = c.deps.Tags.SetTag(ctx, w.Instance, s.Key, w.Value)
			}
			c.mu.Lock()
			c.stats.TagWrites++
			c.mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// reap completes the actions of the group's waiting instances whose agent
// is dead (see Reap).
func (c *Controller) reap(ctx context.Context, g Group) error {
	if g.Name == "" {
		return nil
	}
	now := time.Now()
	var ws []Waiting
	c.mu.Lock()
	seen := map[string]bool{}
	for _, m := range g.Members {
		if m.LifecycleState != StatePendingWait && m.LifecycleState != StateTerminatingWait {
			continue
		}
		k := g.Name + "/" + m.ID + "/" + m.LifecycleState
		seen[k] = true
		since, ok := c.waiting[k]
		if !ok {
			since = now
			c.waiting[k] = now
		}
		ws = append(ws, Waiting{Instance: m.ID, State: m.LifecycleState, Since: since})
	}
	for k := range c.waiting {
		if len(k) > len(g.Name) && k[:len(g.Name)+1] == g.Name+"/" && !seen[k] {
			delete(c.waiting, k)
		}
	}
	c.mu.Unlock()
	if len(ws) == 0 {
		return nil
	}
	pms, err := c.deps.Presence.Members(ctx, g.Name)
	if err != nil {
		return fmt.Errorf("read presence of %s: %w", g.Name, err)
	}
	for i := range ws {
		for _, pm := range pms {
			if pm.Instance == ws[i].Instance && pm.Renewed.After(ws[i].Renewed) {
				ws[i].Renewed = pm.Renewed
			}
		}
	}
	var errs []error
	for _, r := range Reap(c.cfg.Reap, now, ws) {
		if err := c.deps.Completer.CompleteWaiting(ctx, g.Name, r.Instance, r.State, r.Result); err != nil {
			errs = append(errs, fmt.Errorf("complete orphaned action of %s: %w", r.Instance, err))
			continue
		}
		c.mu.Lock()
		c.stats.Reaped++
		c.mu.Unlock()
		c.log.Warn("orphaned lifecycle action completed", "group", g.Name, "instance", r.Instance, "state", r.State, "result", r.Result)
	}
	return errors.Join(errs...)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
