package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// releaseTimeout bounds a release, which runs even after Run's context is
// done (STYLE rule 8), and the presence item's removal.
const releaseTimeout = 5 * time.Second

// releaseAttempts is how many times a release whose outcome is unknown is
// tried before the lease is left to expire.
const releaseAttempts = 3

// ErrRunning is returned by Run when the elector already runs.
var ErrRunning = errors.New("lease elector already running")

// Elector campaigns for one group's lease on behalf of one instance. Create
// it with New; Run drives it; Resign, Members and State may be called from
// other goroutines while it runs.
type Elector struct {
	cfg    Config
	store  Store
	roster Roster
	log    *slog.Logger

	resignc  chan chan error
	announce chan struct{} // asks present to announce at once (after Resign)

	mu        sync.Mutex
	state     State
	holdUntil time.Time     // after Resign: announced as not ready before then
	done      chan struct{} // closed when the running Run's loop ends; nil when not running
}

// New returns an elector for cfg (zero timings take their defaults) over
// store. roster may be nil: then no membership item is kept and a
// resignation names no successor. A nil log discards.
func New(cfg Config, store Store, roster Roster, log *slog.Logger) (*Elector, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lease configuration: %w", err)
	}
	if store == nil {
		return nil, errors.New("lease configuration: store: required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(keyGroup, cfg.Group, keyInstance, cfg.Identity)
	return &Elector{cfg: cfg, store: store, roster: roster, log: log, resignc: make(chan chan error), announce: make(chan struct{}, 1)}, nil
}

// State returns what the elector knows now.
func (e *Elector) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

// Members returns the group's live members (see Live), whether or not Run
// runs; nil without a roster.
func (e *Elector) Members(ctx context.Context) ([]Member, error) {
	if e.roster == nil {
		return nil, nil
	}
	ms, err := e.roster.Members(ctx, e.cfg.Group)
	if err != nil {
		return nil, fmt.Errorf("list members of %s: %w", e.cfg.Group, err)
	}
	return Live(ms, time.Now(), e.cfg.PresenceEvery), nil
}

// Resign hands leadership off at once: the work's context is cancelled,
// the work has returned, and the lease is released naming the most
// suitable live member (Successor) before Resign returns. The elector then
// does not campaign for one lease duration, so that another member takes
// over. Resign returns nil when this instance does not lead or Run does
// not run, and the release's error when the release could not be
// confirmed (the work is stopped all the same, and the lease then expires
// on its own).
func (e *Elector) Resign(ctx context.Context) error {
	e.mu.Lock()
	done := e.done
	e.mu.Unlock()
	if done == nil {
		return nil
	}
	reply := make(chan error, 1)
	select {
	case e.resignc <- reply:
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run campaigns until ctx is done: it reads the record, acquires the lease
// when Decide says so, runs OnStartedLeading while it leads, renews, and
// steps down as Decide says. It keeps this instance's membership item in
// the roster meanwhile. When ctx is done it stops the work, waits for it,
// releases the lease (bounded by releaseTimeout, on a context that outlives
// ctx) and removes the membership item, then returns nil. Store errors are
// logged and retried, never returned. It returns ErrRunning if Run is
// already running.
func (e *Elector) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.done != nil {
		e.mu.Unlock()
		return ErrRunning
	}
	done := make(chan struct{})
	e.done = done
	e.mu.Unlock()

	var wg sync.WaitGroup
	pctx, stopPresence := context.WithCancel(ctx)
	if e.roster != nil {
		wg.Go(func() { e.present(pctx) })
	}
	e.elect(ctx)
	close(done)
	stopPresence()
	wg.Wait()

	e.mu.Lock()
	e.done = nil
	e.mu.Unlock()
	return nil
}

// campaign is the election loop's own state.
type campaign struct {
	obs     Observation
	work    *work
	writes  map[string]time.Time // versions of our writes not yet confirmed → when sent
	pending *attempt             // an acquisition whose outcome is unknown
	hold    time.Time            // after Resign: not eligible before then
	checked time.Time            // when the store last answered
	lastErr string               // the last error logged, to log each failure once
	told    bool                 // the observers have had a first state
}

// work is the running leader-only work.
type work struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// attempt is a write and when it was sent.
type attempt struct {
	claim Claim
	token uint64 // the token the record has if the write applied
	sent  time.Time
}

func (e *Elector) elect(ctx context.Context) {
	c := &campaign{}
	c.obs.Self = e.cfg.Identity
	e.publish(c)
	for {
		if ctx.Err() != nil {
			e.finish(ctx, c)
			return
		}
		now := time.Now()
		c.obs.Eligible = !now.Before(c.hold) && e.eligibility().Eligible()
		d := Decide(now, c.obs, e.cfg)
		switch d.Action {
		case Poll:
			e.poll(ctx, c)
		case Acquire:
			e.acquire(ctx, c, d.Reason)
		case Renew:
			e.renew(ctx, c, d.GiveUp)
		case Release:
			_ = e.handOff(ctx, c, d.Reason)
		case StepDown:
			e.stepDown(ctx, c, d)
		case Wait:
			t := time.NewTimer(d.Wake.Sub(now))
			select {
			case <-ctx.Done():
			case <-t.C:
			case reply := <-e.resignc:
				reply <- e.resign(ctx, c)
			}
			t.Stop()
		}
		e.publish(c)
	}
}

func (e *Elector) eligibility() Eligibility {
	if e.cfg.Eligibility == nil {
		return Eligibility{State: InService, Ready: true}
	}
	return e.cfg.Eligibility()
}

// callTimeout bounds each store call of the loop.
func (e *Elector) callTimeout() time.Duration { return e.cfg.RenewEvery }

// poll reads the record.
func (e *Elector) poll(ctx context.Context, c *campaign) {
	c.obs.ReadAt = time.Now()
	cctx, cancel := context.WithTimeout(ctx, e.callTimeout())
	rec, err := e.store.Get(cctx, e.cfg.Group)
	cancel()
	if err != nil {
		e.failed(ctx, c, "read lease record", err)
		return
	}
	e.ok(c)
	e.see(c, rec)
	if p := c.pending; p != nil && ours(rec, e.cfg.Identity, p.token, p.claim.Version) {
		e.lead(ctx, c, rec, p.sent, "unconfirmed acquisition found applied")
	}
}

// see records rec as the record last seen.
func (e *Elector) see(c *campaign, rec Record) {
	now := time.Now()
	c.checked = now
	if !c.obs.Known || rec.Version != c.obs.Record.Version {
		c.obs.SeenAt = now
	}
	c.obs.Known = true
	c.obs.Record = rec
}

// ours reports whether rec is held, unreleased, by holder with token at
// version (any version when version is empty).
func ours(rec Record, holder string, token uint64, version string) bool {
	return rec.Exists() && !rec.Released && rec.Holder == holder && rec.Token == token &&
		(version == "" || rec.Version == version)
}

// acquire tries to take the lease from the record last seen.
func (e *Elector) acquire(ctx context.Context, c *campaign, reason string) {
	now := time.Now()
	a := &attempt{
		claim: Claim{Holder: e.cfg.Identity, Prev: c.obs.Record.Version, Version: newVersion(), Lease: e.cfg.Lease, LeaseEnd: now.Add(e.cfg.Lease).Round(0)},
		token: c.obs.Record.Token + 1,
		sent:  now,
	}
	c.obs.AttemptedAt = now
	cctx, cancel := context.WithTimeout(ctx, e.callTimeout())
	rec, err := e.store.Acquire(cctx, e.cfg.Group, a.claim)
	cancel()
	switch {
	case err == nil:
		e.ok(c)
		e.lead(ctx, c, rec, a.sent, reason)
	case errors.Is(err, ErrConflict):
		e.ok(c)
		e.settleAcquire(ctx, c, a, rec, reason)
	default:
		e.failed(ctx, c, "acquire lease", err)
		if ctx.Err() != nil {
			return
		}
		// The write may have been applied: resolve by reading.
		cur, gerr := e.reread(ctx, time.Time{})
		if gerr != nil {
			c.pending = a
			return
		}
		e.settleAcquire(ctx, c, a, cur, reason)
	}
}

// settleAcquire takes cur, the record after an acquisition whose answer
// was not a success, as the outcome of a: ours if it shows our version.
// An earlier acquisition whose outcome was unknown may show up too.
func (e *Elector) settleAcquire(ctx context.Context, c *campaign, a *attempt, cur Record, reason string) {
	if ours(cur, e.cfg.Identity, a.token, a.claim.Version) {
		e.lead(ctx, c, cur, a.sent, reason+" (confirmed by re-read)")
		return
	}
	if p := c.pending; p != nil && ours(cur, e.cfg.Identity, p.token, p.claim.Version) {
		e.lead(ctx, c, cur, p.sent, "unconfirmed acquisition found applied")
		return
	}
	e.see(c, cur)
}

// reread reads the record to resolve a write whose outcome is unknown,
// bounded by the call timeout and by deadline when set.
func (e *Elector) reread(ctx context.Context, deadline time.Time) (Record, error) {
	end := time.Now().Add(e.callTimeout())
	if !deadline.IsZero() && deadline.Before(end) {
		end = deadline
	}
	cctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	return e.store.Get(cctx, e.cfg.Group)
}

// lead starts leadership of rec, acquired by a write sent at sent.
func (e *Elector) lead(ctx context.Context, c *campaign, rec Record, sent time.Time, reason string) {
	c.pending = nil
	c.writes = map[string]time.Time{}
	e.see(c, rec)
	c.obs.Leading = true
	c.obs.RenewedAt = sent
	giveUp := sent.Add(e.cfg.Lease - e.cfg.Margin)
	if elapsed(time.Now(), sent) >= e.cfg.Lease-e.cfg.Margin {
		// Confirmed too late to act on: Decide steps down at once.
		e.log.Warn("lease acquired too late to lead", keyToken, rec.Token, keyReason, reason)
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &work{cancel: cancel, done: make(chan struct{})}
	c.work = w
	l := Leadership{Token: rec.Token, Deadline: giveUp.Round(0)}
	e.log.Info("leadership acquired", keyToken, rec.Token, keyReason, reason, keyDeadline, l.Deadline)
	go func() {
		defer close(w.done)
		e.cfg.OnStartedLeading(wctx, l)
	}()
}

// renew extends our lease.
func (e *Elector) renew(ctx context.Context, c *campaign, giveUp time.Time) {
	now := time.Now()
	cl := Claim{
		Holder: e.cfg.Identity, Prev: c.obs.Record.Version, Version: newVersion(), Token: c.obs.Record.Token,
		Lease: e.cfg.Lease, LeaseEnd: now.Add(e.cfg.Lease).Round(0),
	}
	c.obs.AttemptedAt = now
	c.writes[cl.Version] = now
	cctx, cancel := context.WithDeadline(ctx, earlier(now.Add(e.callTimeout()), giveUp))
	rec, err := e.store.Renew(cctx, e.cfg.Group, cl)
	cancel()
	switch {
	case err == nil:
		e.ok(c)
		e.confirm(c, rec)
	case errors.Is(err, ErrConflict):
		e.ok(c)
		e.settleRenew(ctx, c, rec)
	default:
		e.failed(ctx, c, "renew lease", err)
		if ctx.Err() != nil {
			return
		}
		cur, gerr := e.reread(ctx, giveUp)
		if gerr != nil {
			return // still ours until we give up; the next renewal resolves it
		}
		e.settleRenew(ctx, c, cur)
	}
}

// confirm records rec, written by one of our renewals.
func (e *Elector) confirm(c *campaign, rec Record) {
	if sent, ok := c.writes[rec.Version]; ok && sent.After(c.obs.RenewedAt) {
		c.obs.RenewedAt = sent
	}
	clear(c.writes) // writes based on older versions can no longer apply
	e.see(c, rec)
}

// settleRenew takes cur, the record after a renewal whose answer was not a
// success. Owner and token matching means the lease is still ours: if cur
// is one of our writes, its send time renews the lease. Anything else
// means the lease is lost.
func (e *Elector) settleRenew(ctx context.Context, c *campaign, cur Record) {
	if !ours(cur, e.cfg.Identity, c.obs.Record.Token, "") {
		e.lose(c, cur)
		return
	}
	if _, ok := c.writes[cur.Version]; ok {
		e.confirm(c, cur)
		return
	}
	e.see(c, cur) // ours, written by a write we no longer track: the lease is not extended
}

// lose ends leadership taken by someone else (or ended by the store): the
// work is stopped; there is nothing to release.
func (e *Elector) lose(c *campaign, cur Record) {
	e.log.Warn("leadership lost", keyToken, c.obs.Record.Token, keyHolder, cur.Holder)
	e.stopWork(c)
	c.obs.Leading = false
	clear(c.writes)
	e.see(c, cur)
}

// stopWork cancels the work and waits for it to return, then tells the
// observers.
func (e *Elector) stopWork(c *campaign) {
	if c.work == nil {
		return
	}
	c.work.cancel()
	<-c.work.done
	c.work = nil
	e.publish(c)
}

// stepDown stops leading at the give-up time, then tries to release the
// lease so that followers need not wait for it to expire.
func (e *Elector) stepDown(ctx context.Context, c *campaign, d Decision) {
	e.log.Warn("leadership given up", keyToken, c.obs.Record.Token, keyReason, d.Reason, keyDeadline, d.GiveUp.Round(0))
	e.stopWork(c)
	if err := e.release(ctx, c, ""); err != nil {
		e.log.Info("lease left to expire", keyErr, err)
	}
}

// resign handles a Resign call in the loop.
func (e *Elector) resign(ctx context.Context, c *campaign) error {
	c.hold = time.Now().Add(e.cfg.Lease)
	// Members must not name this instance as the next holder while it sits
	// out: announce it as not ready at once, before the release.
	e.mu.Lock()
	e.holdUntil = c.hold
	e.mu.Unlock()
	select {
	case e.announce <- struct{}{}:
	default:
	}
	if !c.obs.Leading {
		return nil
	}
	return e.handOff(ctx, c, "resigned")
}

// handOff stops the work and releases the lease, naming a successor.
func (e *Elector) handOff(ctx context.Context, c *campaign, reason string) error {
	next := ""
	if e.roster != nil {
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.callTimeout())
		ms, err := e.Members(mctx)
		cancel()
		if err != nil {
			e.log.Warn("no successor named", keyErr, err)
		}
		next = Successor(ms, e.cfg.Identity)
	}
	e.log.Info("handing leadership off", keyToken, c.obs.Record.Token, keyReason, reason, keyNext, next)
	e.stopWork(c)
	err := e.release(ctx, c, next)
	if err != nil {
		e.log.Warn("lease release unconfirmed; it expires on its own", keyErr, err)
	}
	return err
}

// release gives our lease up; the work has stopped. It runs on a context
// that outlives ctx, bounded by releaseTimeout, and leaves the campaign a
// follower whatever the outcome.
func (e *Elector) release(ctx context.Context, c *campaign, next string) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	defer func() {
		c.obs.Leading = false
		c.obs.ReadAt = time.Time{} // read again at once
		clear(c.writes)
	}()
	token := c.obs.Record.Token
	var err error
	for range releaseAttempts {
		now := time.Now()
		cl := Claim{Holder: e.cfg.Identity, Prev: c.obs.Record.Version, Version: newVersion(), Token: token, Next: next, LeaseEnd: now.Round(0)}
		c.obs.AttemptedAt = now
		var rec Record
		rec, err = e.store.Release(rctx, e.cfg.Group, cl)
		if err == nil {
			e.log.Info("lease released", keyToken, token, keyNext, next)
			e.see(c, rec)
			return nil
		}
		if errors.Is(err, ErrConflict) {
			if rec.Version == cl.Version { // an earlier attempt of this call applied
				e.see(c, rec)
				return nil
			}
			if !ours(rec, e.cfg.Identity, token, "") {
				e.see(c, rec) // not ours any more: nothing to release
				return nil
			}
			e.see(c, rec) // ours at another version: release that one
			continue
		}
		if rctx.Err() != nil {
			break
		}
		cur, gerr := e.store.Get(rctx, e.cfg.Group)
		if gerr != nil {
			continue
		}
		e.see(c, cur)
		if cur.Version == cl.Version || !ours(cur, e.cfg.Identity, token, "") {
			return nil
		}
	}
	return fmt.Errorf("release lease of %s (token %d): %w", e.cfg.Group, token, err)
}

// finish ends the campaign when Run's context is done.
func (e *Elector) finish(ctx context.Context, c *campaign) {
	if c.obs.Leading {
		_ = e.handOff(ctx, c, "stopping")
	}
	e.publish(c)
}

// present keeps this instance's membership item until ctx is done, then
// removes it.
func (e *Elector) present(ctx context.Context) {
	var lastErr string
	for {
		el := e.eligibility()
		e.mu.Lock()
		holding := time.Now().Before(e.holdUntil)
		e.mu.Unlock()
		m := Member{Instance: e.cfg.Identity, State: el.State, Ready: el.Ready && !holding, Renewed: time.Now().Round(0)}
		cctx, cancel := context.WithTimeout(ctx, e.callTimeout())
		err := e.roster.Announce(cctx, e.cfg.Group, m)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && err.Error() != lastErr:
			e.log.Warn("announce membership", keyErr, err)
			lastErr = err.Error()
		case err == nil:
			lastErr = ""
		}
		wait := e.cfg.PresenceEvery
		if holding {
			// Announce ready again as soon as the hold-off ends.
			e.mu.Lock()
			wait = min(wait, time.Until(e.holdUntil)+time.Millisecond)
			e.mu.Unlock()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
			if err := e.roster.Leave(lctx, e.cfg.Group, e.cfg.Identity); err != nil {
				e.log.Warn("leave membership", keyErr, err)
			}
			cancel()
			return
		case <-t.C:
		case <-e.announce:
			t.Stop()
		}
	}
}

// publish updates the state and tells the observers when it changed (and
// the first time, so that they start from a known state: a marker file
// left by a crashed agent is removed).
func (e *Elector) publish(c *campaign) {
	rec := c.obs.Record
	st := State{Leading: c.work != nil, Token: rec.Token, Checked: c.checked.Round(0)}
	switch {
	case c.obs.Leading:
		st.Holder = e.cfg.Identity
		if st.Leading {
			st.LeaseEnd = c.obs.RenewedAt.Add(e.cfg.Lease - e.cfg.Margin).Round(0)
		}
	case rec.Exists() && !rec.Released:
		st.Holder = rec.Holder
		st.LeaseEnd = c.obs.SeenAt.Add(max(rec.Lease, e.cfg.Lease)).Round(0)
	}
	e.mu.Lock()
	prev := e.state
	e.state = st
	e.mu.Unlock()
	prev.Checked = st.Checked
	if prev == st && c.told {
		return
	}
	c.told = true
	for _, o := range e.cfg.Observers {
		o(st)
	}
}

// ok notes that the store answered.
func (e *Elector) ok(c *campaign) {
	if c.lastErr != "" {
		e.log.Info("lease store answers again")
		c.lastErr = ""
	}
}

// failed logs a failed store call once per distinct error; cancellation
// is not logged.
func (e *Elector) failed(ctx context.Context, c *campaign, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	if msg := what + ": " + err.Error(); msg != c.lastErr {
		e.log.Warn(what+" failed", keyErr, err)
		c.lastErr = msg
	}
}

// newVersion returns a fresh record version.
func newVersion() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
