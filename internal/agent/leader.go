package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/jobs"
	"github.com/lifeguardhq/lifeguard/internal/lease"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// Tagger writes the instance tag that mirrors leadership (EC2 CreateTags
// and DeleteTags). It is implemented by internal/awscloud.
type Tagger interface {
	// SetTag writes key=value on instance.
	SetTag(ctx context.Context, instance, key, value string) error
	// DeleteTag deletes key from instance, whatever its value.
	DeleteTag(ctx context.Context, instance, key string) error
}

// LeaderTagReader reads this instance's own tags from the instance metadata
// service (tags/instance/<key>). It is implemented by internal/awscloud's
// Metadata.
type LeaderTagReader interface {
	// InstanceTag returns the tag's value; found is false when the
	// instance has no such tag. It returns an error wrapping
	// ErrNoMetadataTags when IMDS shows no tags at all.
	InstanceTag(ctx context.Context, key string) (value string, found bool, err error)
}

// InstanceTagDescriber reads an instance's tag through the EC2 API
// (DescribeTags filtered by resource-id and key): tag mode's way when the
// instance metadata shows no tags. It is implemented by internal/awscloud's
// InstanceTags.
type InstanceTagDescriber interface {
	// DescribeInstanceTag returns the tag's value on instance; found is
	// false when the instance has no such tag.
	DescribeInstanceTag(ctx context.Context, instance, key string) (value string, found bool, err error)
}

// ErrNoMetadataTags reports that the instance metadata service has no
// tags category: the instance was launched without InstanceMetadataTags
// enabled, so leader.mode tag cannot read its tag.
var ErrNoMetadataTags = errors.New("instance metadata has no tags/instance category: launch the instance with InstanceMetadataTags=enabled (launch template MetadataOptions), or use leader.mode lease")

// LeaderDeps are the leader component's connections. With leader.mode
// lease: the lease table (internal/awscloud's LeaseTable is both Store and
// Roster) and its run ledger, and the tag writer when leader.tag is
// enabled. With leader.mode tag: the tag reader (nil: Deps.Metadata, when
// it is one), the DescribeTags reader for instances without metadata tags,
// and the Roster when leader.table is set (presence items for
// the controller's reaper).
type LeaderDeps struct {
	// Tag reads the leader tag in tag mode.
	TagReader LeaderTagReader
	// TagDescriber reads it with ec2:DescribeTags when TagReader reports
	// ErrNoMetadataTags (nil: tag mode then never leads).
	TagDescriber InstanceTagDescriber
	Store        lease.Store
	Roster       lease.Roster // nil: no membership items
	// Ledger returns the run ledger of a group; required with jobs.
	Ledger func(group string) jobs.Ledger
	// Tags writes leader.tag; required when it is enabled.
	Tags Tagger
}

// HandOffStep names the terminate plan's built-in first step when leader
// election is on: it hands leadership off before the user's steps run.
// AWS and the configuration allow no ':' in step names, so it clashes with
// none.
const HandOffStep = "lifeguard:hand-off-leadership"

const (
	// leaderCommandTimeout bounds on_elected and on_demoted.
	leaderCommandTimeout = time.Minute
	// leaderCallTimeout bounds a tag write and a resignation asked over
	// HTTP.
	leaderCallTimeout = 10 * time.Second
	// leaderRetry is the wait before a failed tag write is tried again.
	leaderRetry = 5 * time.Second
	// maxLeaderWait caps the long poll of GET /leader?wait=.
	maxLeaderWait = 30 * time.Second
)

// leader is the agent's leader election component: an Elector over the
// lease table, the scheduled jobs it runs while leading, and the mirrors
// of leadership (marker file, metrics, tag, commands, GET /leader).
type leader struct {
	a    *Agent
	cfg  config.Leader
	deps LeaderDeps
	log  *slog.Logger

	isLeader    prometheus.Gauge
	token       prometheus.Gauge
	transitions prometheus.Counter

	ready atomic.Bool // the readiness probes passed their last round (true without probes)

	mu       sync.Mutex
	el       *lease.Elector // nil until the instance and its group are known
	instance string
	group    string
	state    lease.State
	observed bool          // the elector has told its first state
	changed  chan struct{} // closed and replaced when Leading, Holder or Token change
	marked   bool          // the marker file exists (as far as we wrote it)

	effects chan struct{} // buffered 1: the tag and commands are due

	// Tag mode only.
	kick     chan struct{} // buffered 1: read the tag now
	tagByAPI bool          // IMDS shows no tags: read with DescribeTags (pollTag's goroutine only)
	resigned atomic.Bool   // the terminate plan started: never lead again
}

// newLeader returns the component for a.cfg.Leader and registers its
// metrics.
func newLeader(a *Agent, deps LeaderDeps) (*leader, error) {
	cfg := a.cfg.Leader
	var errs []error
	if cfg.Mode == config.LeaderByTag {
		// The controller writes the tag; this agent only reads it.
		cfg.Tag.Enabled = false
		if deps.TagReader == nil {
			deps.TagReader, _ = a.md.(LeaderTagReader)
		}
		if deps.TagReader == nil {
			errs = append(errs, errors.New("leader.mode tag needs deps.Leader.TagReader"))
		}
		if cfg.Table == "" {
			deps.Roster = nil
		}
	} else if deps.Store == nil {
		errs = append(errs, errors.New("leader.mode lease needs deps.Leader.Store"))
	}
	if len(cfg.Jobs) > 0 && deps.Ledger == nil {
		errs = append(errs, errors.New("leader.jobs need deps.Leader.Ledger"))
	}
	if cfg.Tag.Enabled && deps.Tags == nil {
		errs = append(errs, errors.New("leader.tag needs deps.Leader.Tags"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	l := &leader{
		a: a, cfg: cfg, deps: deps, log: a.log,
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lifeguard_leader_is_leader",
			Help: "1 while this instance leads its group (its leader-only work runs), else 0.",
		}),
		token: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lifeguard_leader_token",
			Help: "Fencing token of the group's lease as last seen (this instance's own while it leads).",
		}),
		transitions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lifeguard_leader_transitions_total",
			Help: "Times this instance started or stopped leading.",
		}),
		changed: make(chan struct{}),
		effects: make(chan struct{}, 1),
		kick:    make(chan struct{}, 1),
	}
	for _, c := range []prometheus.Collector{l.isLeader, l.token, l.transitions} {
		if err := a.metrics.reg.Register(c); err != nil {
			return nil, fmt.Errorf("register leader metrics: %w", err)
		}
	}
	l.ready.Store(len(a.probes) == 0)
	return l, nil
}

// handOffStep is the terminate plan's first step: resign at once, so that
// another member leads before this instance's own steps run.
func (l *leader) handOffStep() lifecycle.Step {
	return lifecycle.Step{Name: HandOffStep, Builtin: l.handOff, OnFailure: lifecycle.FailContinue}
}

// handOff is HandOffStep's body. It is idempotent: resigning when not
// leading does nothing. An unconfirmed release is an error (the work has
// stopped all the same; the lease then expires on its own).
func (l *leader) handOff(ctx context.Context, act lifecycle.Action) error {
	if l.cfg.Mode == config.LeaderByTag {
		return l.tagHandOff(ctx, act)
	}
	el := l.elector()
	if el == nil {
		l.log.Info("leadership hand-off: no election running", keyReason, string(act.Reason))
		return nil
	}
	was := el.State().Leading
	// Bounded by the lease: past it the lease has expired on every
	// follower's clock anyway, and the user's steps must not wait longer.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(l.cfg.LeaseDuration))
	defer cancel()
	if err := el.Resign(ctx); err != nil {
		return fmt.Errorf("hand off leadership: %w", err)
	}
	if was {
		l.log.Info("leadership handed off", keyReason, string(act.Reason))
	}
	return nil
}

func (l *leader) elector() *lease.Elector {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.el
}

// run is the component: it waits for the instance and its group, then
// runs the elector (and the readiness probes while probes are configured)
// and applies the tag and the commands, until ctx ends; the elector then
// stops the work, removes the marker and releases the lease before run
// returns.
func (l *leader) run(ctx context.Context) error {
	instance, group, ok := l.waitIdentity(ctx)
	if !ok {
		return nil
	}
	log := l.log.With(keyInstance, instance, keyGroup, group)
	if l.cfg.Mode == config.LeaderByTag {
		return l.runTag(ctx, instance, group, log)
	}
	var sched *jobs.Scheduler
	if len(l.cfg.Jobs) > 0 {
		var err error
		sched, err = jobs.NewScheduler(jobs.SchedulerConfig{
			Jobs: l.cfg.ScheduledJobs(), Ledger: l.deps.Ledger(group), Instance: instance,
			Grace: time.Duration(l.cfg.StopGrace), Output: os.Stderr, Logger: log,
		})
		if err != nil {
			return fmt.Errorf("leader: %w", err)
		}
	}
	lc := l.cfg.LeaseConfig()
	lc.Group, lc.Identity = group, instance
	lc.Eligibility = l.eligibility
	lc.Observers = []func(lease.State){l.observe}
	var el *lease.Elector
	lc.OnStartedLeading = func(ctx context.Context, ld lease.Leadership) {
		log.Info("leading", keyToken, ld.Token)
		if sched == nil {
			<-ctx.Done()
			return
		}
		err := sched.Run(ctx, jobs.Leadership{Token: ld.Token, Deadline: ld.Deadline, LeaseEnd: func() time.Time { return el.State().LeaseEnd }})
		if err != nil {
			log.Error("scheduled jobs not run", keyErr, err)
			<-ctx.Done()
		}
	}
	el, err := lease.New(lc, l.deps.Store, l.deps.Roster, log)
	if err != nil {
		return fmt.Errorf("leader: %w", err)
	}
	l.mu.Lock()
	l.el, l.instance, l.group = el, instance, group
	l.mu.Unlock()

	var wg sync.WaitGroup
	ectx, stop := context.WithCancel(ctx)
	defer func() { stop(); wg.Wait() }()
	if len(l.a.probes) > 0 {
		wg.Go(func() { l.probe(ectx) })
	}
	elected := make(chan struct{})
	wg.Go(func() {
		defer close(elected)
		_ = el.Run(ectx) // store errors are logged and retried; it returns nil
	})
	done := l.applyEffects(ctx, elected)
	// The elector has stopped: not leading, marker removed, lease
	// released. Mirror that in the tag and on_demoted, on a context that
	// outlives ctx.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaderCallTimeout)
	defer cancel()
	l.apply(fctx, false, &done)
	return nil
}

// waitIdentity waits until the lifecycle loop knows the instance id and
// its group.
func (l *leader) waitIdentity(ctx context.Context) (instance, group string, ok bool) {
	t := time.NewTicker(time.Duration(l.a.cfg.IMDS.PollInterval) / 4)
	defer t.Stop()
	for {
		l.a.mu.Lock()
		instance, group = l.a.snap.Instance, l.a.snap.Group
		l.a.mu.Unlock()
		if instance != "" && group != "" {
			return instance, group, true
		}
		select {
		case <-ctx.Done():
			return "", "", false
		case <-t.C:
		}
	}
}

// eligibility is the Elector's Eligibility: the lifecycle state the agent
// observed (any terminate plan started, a drain asked, counts as
// terminating) and whether the readiness probes still pass.
func (l *leader) eligibility() lease.Eligibility {
	l.a.mu.Lock()
	state := l.a.snap.LifecycleState
	if l.a.snap.Terminating || l.a.snap.Draining {
		state = stateTerminating
	}
	l.a.mu.Unlock()
	return lease.Eligibility{State: state, Ready: l.ready.Load()}
}

// probe runs a round of the readiness probes every launch.interval, so
// that an instance whose probes fail stops being eligible.
func (l *leader) probe(ctx context.Context) {
	t := time.NewTicker(time.Duration(l.a.cfg.Launch.Interval))
	defer t.Stop()
	for {
		pass := true
		for _, r := range l.a.round(ctx) {
			pass = pass && r.result == resultPass
		}
		if ctx.Err() != nil {
			return
		}
		if l.ready.Swap(pass) != pass {
			l.log.Info("readiness for leadership changed", keyResult, pass)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// observe is the Elector's observer, called from its loop: it keeps the
// marker file and the metrics in step at once (the marker is gone before
// the lease is released) and hands the tag and the commands to run's
// goroutine.
func (l *leader) observe(st lease.State) {
	l.mu.Lock()
	prev, first := l.state, !l.observed
	l.state, l.observed = st, true
	if first || prev.Leading != st.Leading || prev.Holder != st.Holder || prev.Token != st.Token {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	l.mu.Unlock()
	if first || prev.Leading != st.Leading {
		l.mark(st)
	}
	if st.Leading {
		l.isLeader.Set(1)
	} else {
		l.isLeader.Set(0)
	}
	l.token.Set(float64(st.Token))
	if !first && prev.Leading != st.Leading {
		l.transitions.Inc()
		if !st.Leading {
			l.log.Info("no longer leading", keyToken, prev.Token, "holder", st.Holder)
		}
	}
	select {
	case l.effects <- struct{}{}:
	default:
	}
}

// mark creates (atomically: write, then rename) or removes the marker
// file.
func (l *leader) mark(st lease.State) {
	path := l.cfg.MarkerFile
	if path == "" {
		return
	}
	if !st.Leading {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Error("leader marker not removed", keyDir, path, keyErr, err)
		}
		return
	}
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		tmp := path + ".tmp"
		if err = os.WriteFile(tmp, []byte("token="+strconv.FormatUint(st.Token, 10)+"\n"), 0o644); err == nil {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		l.log.Error("leader marker not written", keyDir, path, keyErr, err)
	}
}

// applied is what the tag and commands last reflected.
type applied struct {
	known   bool
	leading bool
	tagged  bool // the tag reflects leading
}

// applyEffects applies the tag and the commands for each change of
// leadership until ctx ends and the elector has stopped (elected closed),
// and returns what they last reflected.
func (l *leader) applyEffects(ctx context.Context, elected <-chan struct{}) applied {
	var done applied
	retry := time.NewTimer(0)
	<-retry.C
	for {
		select {
		case <-elected:
			return done
		case <-l.effects:
		case <-retry.C:
		}
		if ctx.Err() != nil {
			continue // the elector is stopping; run applies the last state
		}
		if !l.apply(ctx, l.current().Leading, &done) {
			retry.Reset(leaderRetry)
		}
	}
}

// apply brings the commands and the tag in line with leading; it reports
// false when the tag write failed (to be tried again).
func (l *leader) apply(ctx context.Context, leading bool, done *applied) bool {
	if done.known && done.leading == leading && done.tagged {
		return true
	}
	if done.known && done.leading != leading || !done.known && leading {
		argv := l.cfg.OnDemoted
		if leading {
			argv = l.cfg.OnElected
		}
		if len(argv) > 0 {
			l.command(ctx, argv, leading)
		}
	}
	done.known, done.leading, done.tagged = true, leading, false
	if !l.cfg.Tag.Enabled {
		done.tagged = true
		return true
	}
	instance := l.current().instance
	tctx, cancel := context.WithTimeout(ctx, leaderCallTimeout)
	defer cancel()
	var err error
	switch t := l.cfg.Tag; {
	case leading:
		err = l.deps.Tags.SetTag(tctx, instance, t.Key, t.Value)
	case t.FollowerValue != "":
		err = l.deps.Tags.SetTag(tctx, instance, t.Key, t.FollowerValue)
	default:
		err = l.deps.Tags.DeleteTag(tctx, instance, t.Key)
	}
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("leader tag not written", keyErr, err, keyRetryIn, leaderRetry)
		}
		return false
	}
	done.tagged = true
	return true
}

// command runs on_elected or on_demoted in a process group of its own,
// bounded by leaderCommandTimeout, and logs how it ended.
func (l *leader) command(ctx context.Context, argv []string, leading bool) {
	cur := l.current()
	cctx, cancel := context.WithTimeout(ctx, leaderCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(),
		"LIFEGUARD_INSTANCE_ID="+cur.instance, "LIFEGUARD_GROUP="+cur.group,
		"LIFEGUARD_LEADER="+strconv.FormatBool(leading), jobs.EnvFencingToken+"="+strconv.FormatUint(cur.Token, 10))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	what := "on_demoted"
	if leading {
		what = "on_elected"
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
	}
	tail := out.Bytes()
	if len(tail) > stepOutputTail {
		tail = tail[len(tail)-stepOutputTail:]
	}
	l.log.Log(ctx, level, "leader command ended", keyStep, what, keyErr, err, keyOutput, string(tail))
}

// leaderState is the elector's last state with the instance and group.
type leaderState struct {
	lease.State
	instance, group string
	running         bool
	changed         <-chan struct{}
}

// current returns the state; Checked (which observers are not told of)
// comes from the elector itself.
func (l *leader) current() leaderState {
	l.mu.Lock()
	st := leaderState{State: l.state, instance: l.instance, group: l.group, running: l.el != nil, changed: l.changed}
	el := l.el
	l.mu.Unlock()
	if el != nil {
		if now := el.State(); now.Leading == st.Leading && now.Token == st.Token {
			st.Checked = now.Checked
		}
	}
	return st
}

// LeaderDoc is the JSON document of GET /leader.
type LeaderDoc struct {
	// Mode is leader.mode.
	Mode     string `json:"mode"`
	Instance string `json:"instance,omitempty"`
	Group    string `json:"group,omitempty"`
	// Leading reports that this instance leads: its leader-only work runs.
	Leading bool `json:"leading"`
	// Known reports that the lease store answered within the last lease
	// duration: without it, Leading false means "unknown".
	Known  bool   `json:"known"`
	Holder string `json:"holder"`
	Token  uint64 `json:"token"`
	// LeaseEnd is, when Leading, when this instance gives up unless it
	// renews; otherwise when the lease last seen expires by this
	// instance's observation.
	LeaseEnd time.Time `json:"lease_end,omitzero"`
	// Checked is when the lease store last answered.
	Checked time.Time `json:"checked,omitzero"`
	// StopGrace and Margin are leader.stop_grace and 2 × renew_interval,
	// for `lifeguard run --leader-only`.
	StopGrace config.Duration `json:"stop_grace"`
	Margin    config.Duration `json:"margin"`
	Error     string          `json:"error,omitempty"`
}

func (l *leader) doc(st leaderState) LeaderDoc {
	known := time.Duration(l.cfg.LeaseDuration)
	if l.cfg.Mode == config.LeaderByTag {
		known = tagKnownPolls * time.Duration(l.cfg.PollInterval)
	}
	return LeaderDoc{
		Mode: string(l.cfg.Mode), Instance: st.instance, Group: st.group,
		Leading: st.Leading, Holder: st.Holder, Token: st.Token, LeaseEnd: st.LeaseEnd, Checked: st.Checked,
		Known:     !st.Checked.IsZero() && time.Since(st.Checked) < known,
		StopGrace: l.cfg.StopGrace, Margin: config.Duration(l.cfg.Margin()),
	}
}

// serveLeader is GET /leader. With ?wait=D (at most 30 s) it answers as
// soon as Leading or Token differ from ?leading= and ?token= (the
// state the caller last saw), or after D.
func (a *Agent) serveLeader(w http.ResponseWriter, r *http.Request) {
	l := a.leader
	if l == nil {
		writeJSON(w, http.StatusNotFound, LeaderDoc{Mode: string(config.LeaderOff), Error: "leader election is off (leader.mode: off)"})
		return
	}
	st := l.current()
	q := r.URL.Query()
	if wait, err := time.ParseDuration(q.Get("wait")); err == nil && wait > 0 {
		leading, token := q.Get("leading") == "true", q.Get("token")
		t := time.NewTimer(min(wait, maxLeaderWait))
		defer t.Stop()
		for st.Leading == leading && strconv.FormatUint(st.Token, 10) == token {
			select {
			case <-st.changed:
				st = l.current()
				continue
			case <-t.C:
			case <-r.Context().Done():
			}
			break
		}
	}
	writeJSON(w, http.StatusOK, l.doc(st))
}

// serveResign is POST /leader/resign: hand leadership off at once (see
// lease.Elector.Resign). It answers the state after the resignation; 503
// when the release could not be confirmed.
func (a *Agent) serveResign(w http.ResponseWriter, r *http.Request) {
	l := a.leader
	if l == nil {
		writeJSON(w, http.StatusNotFound, LeaderDoc{Mode: string(config.LeaderOff), Error: "leader election is off (leader.mode: off)"})
		return
	}
	if l.cfg.Mode == config.LeaderByTag {
		writeJSON(w, http.StatusConflict, LeaderDoc{Mode: string(l.cfg.Mode), Error: "leader.mode tag: the controller moves the leader tag; remove this instance from service (or make it unhealthy) to move leadership"})
		return
	}
	el := l.elector()
	if el == nil {
		writeJSON(w, http.StatusServiceUnavailable, LeaderDoc{Mode: string(l.cfg.Mode), Error: "leader election has not started: the instance or its group is not known yet"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), leaderCallTimeout)
	defer cancel()
	err := el.Resign(ctx)
	doc := l.doc(l.current())
	if err != nil {
		doc.Error = err.Error()
		writeJSON(w, http.StatusServiceUnavailable, doc)
		return
	}
	l.log.Info("leadership resigned on request")
	writeJSON(w, http.StatusOK, doc)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // a write error means the client went away
}

// tagKnownPolls is how many poll intervals a tag read stays current in
// tag mode: after that without an answer from IMDS, the state is unknown
// and a leader stops leading.
const tagKnownPolls = 3

// runTag is the component in tag mode: the controller writes the leader
// tag, and this instance leads while IMDS shows its own tag with the
// leader's value and its termination has not started. It keeps the same
// mirrors as lease mode (marker file, metrics, on_elected and on_demoted,
// GET /leader), with token 0: a tag has no fencing token. With
// leader.table it announces the agent's presence, for the controller's
// reaper.
func (l *leader) runTag(ctx context.Context, instance, group string, log *slog.Logger) error {
	l.mu.Lock()
	l.instance, l.group = instance, group
	l.mu.Unlock()
	var wg sync.WaitGroup
	ectx, stop := context.WithCancel(ctx)
	defer func() { stop(); wg.Wait() }()
	if l.deps.Roster != nil {
		wg.Go(func() { l.announce(ectx, instance, group, log) })
	}
	polled := make(chan struct{})
	wg.Go(func() {
		defer close(polled)
		l.pollTag(ectx, instance, log)
	})
	done := l.applyEffects(ctx, polled)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaderCallTimeout)
	defer cancel()
	l.apply(fctx, false, &done)
	if l.deps.Roster != nil {
		if err := l.deps.Roster.Leave(fctx, group, instance); err != nil {
			log.Warn("presence not withdrawn", keyErr, err)
		}
	}
	return nil
}

// pollTag reads the tag every leader.poll_interval (and when kicked) until
// ctx ends, then reports not leading.
func (l *leader) pollTag(ctx context.Context, instance string, log *slog.Logger) {
	t := time.NewTicker(time.Duration(l.cfg.PollInterval))
	defer t.Stop()
	var lastErr string
	for {
		st := l.readTag(ctx, instance, log, &lastErr)
		if ctx.Err() != nil {
			break
		}
		l.observe(st)
		select {
		case <-ctx.Done():
		case <-t.C:
			continue
		case <-l.kick:
			continue
		}
		break
	}
	l.observe(lease.State{Checked: l.current().Checked})
}

// readTag returns the state the tag shows now. A failed read keeps the
// last state until it is tagKnownPolls intervals old; a leader then stops
// leading.
func (l *leader) readTag(ctx context.Context, instance string, log *slog.Logger, lastErr *string) lease.State {
	rctx, cancel := context.WithTimeout(ctx, leaderCallTimeout)
	defer cancel()
	v, found, err := l.tagValue(rctx, instance, log)
	prev := l.current().State
	if err != nil {
		if ctx.Err() == nil && err.Error() != *lastErr {
			log.Error("leader tag not read", keyErr, err)
		}
		*lastErr = err.Error()
		if prev.Leading && time.Since(prev.Checked) >= tagKnownPolls*time.Duration(l.cfg.PollInterval) {
			return lease.State{Checked: prev.Checked}
		}
		return prev
	}
	*lastErr = ""
	leading := found && v == l.cfg.Tag.Value && !l.resigned.Load() && l.eligibility().State != stateTerminating &&
		!strings.HasPrefix(l.eligibility().State, "Terminating")
	st := lease.State{Leading: leading, Checked: time.Now()}
	if leading {
		st.Holder = instance
	}
	return st
}

// tagValue reads the leader tag from IMDS, or, once IMDS has shown no
// tags at all and a describer is set, with DescribeTags from then on (at
// the same interval).
func (l *leader) tagValue(ctx context.Context, instance string, log *slog.Logger) (string, bool, error) {
	if !l.tagByAPI {
		v, found, err := l.deps.TagReader.InstanceTag(ctx, l.cfg.Tag.Key)
		if !errors.Is(err, ErrNoMetadataTags) || l.deps.TagDescriber == nil {
			return v, found, err
		}
		l.tagByAPI = true
		log.Info("instance metadata shows no tags: reading the leader tag with ec2:DescribeTags",
			"every", time.Duration(l.cfg.PollInterval).String())
	}
	return l.deps.TagDescriber.DescribeInstanceTag(ctx, instance, l.cfg.Tag.Key)
}

// announce writes the agent's presence item every
// lease.DefaultPresenceEvery until ctx ends.
func (l *leader) announce(ctx context.Context, instance, group string, log *slog.Logger) {
	t := time.NewTicker(lease.DefaultPresenceEvery)
	defer t.Stop()
	failing := false
	for {
		e := l.eligibility()
		actx, cancel := context.WithTimeout(ctx, leaderCallTimeout)
		err := l.deps.Roster.Announce(actx, group, lease.Member{Instance: instance, State: e.State, Ready: e.Ready, Renewed: time.Now()})
		cancel()
		if err != nil && ctx.Err() == nil && !failing {
			log.Warn("presence not announced", keyErr, err)
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tagHandOff is the hand-off step in tag mode: this instance stops leading
// at once and for good (the controller moves the tag as soon as it sees
// the termination).
func (l *leader) tagHandOff(ctx context.Context, act lifecycle.Action) error {
	l.resigned.Store(true)
	select {
	case l.kick <- struct{}{}:
	default:
	}
	for {
		st := l.current()
		if !st.Leading {
			return nil
		}
		select {
		case <-st.changed:
		case <-ctx.Done():
			return fmt.Errorf("hand off leadership: %w", ctx.Err())
		}
	}
}
