// Package leasetest holds an in-memory lease.Store and lease.Roster with
// fault injection, shared by the tests of lease and of the packages built
// on it, and the conformance tests (RunStoreTests, RunRosterTests) that
// every implementation of those interfaces must pass.
package leasetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lease"
)

// ErrLostAnswer is returned by a write that a Fault with Lost applied: the
// write took effect but its answer never arrived, as when a request times
// out after the server processed it.
var ErrLostAnswer = errors.New("leasetest: answer lost after the write was applied")

// ErrUnreachable is a ready-made Fault.Err: the store cannot be reached.
var ErrUnreachable = errors.New("leasetest: store unreachable")

// Op names a Store or Roster method.
type Op string

// Ops.
const (
	OpGet      Op = "get"
	OpAcquire  Op = "acquire"
	OpRenew    Op = "renew"
	OpRelease  Op = "release"
	OpAnnounce Op = "announce"
	OpLeave    Op = "leave"
	OpMembers  Op = "members"
)

// Fault makes matching calls misbehave. A call matches when its client and
// operation match; the first matching fault with calls left applies.
type Fault struct {
	// Client limits the fault to calls through Client(name); empty
	// matches every call.
	Client string
	// Ops limits the fault to these operations; empty matches all.
	Ops []Op
	// Delay is added before the call takes effect; a context done during
	// the delay ends the call with its error and no effect.
	Delay time.Duration
	// Err makes the call fail with Err, without effect.
	Err error
	// Conflict makes a write fail with lease.ErrConflict, without effect,
	// returning the current record.
	Conflict bool
	// Lost makes a write take effect and then fail with ErrLostAnswer.
	Lost bool
	// Skip is how many matching calls go unaffected before the fault
	// applies.
	Skip int
	// Count is how many calls the fault affects; 0 means every call until
	// the fault is removed.
	Count int
}

// Call is one call to the fake, as recorded.
type Call struct {
	Client string
	Op     Op
	Group  string
	At     time.Time
	Err    error
}

// Store is an in-memory lease.Store and lease.Roster. Its zero value is
// ready to use; it is safe for concurrent use. Its own methods are calls
// of the client named ""; Client gives views for named clients, so that
// faults can target one elector among several sharing the store.
type Store struct {
	mu      sync.Mutex
	records map[string]lease.Record
	history map[string][]lease.Record
	members map[string]map[string]lease.Member
	faults  []*fault
	calls   []Call
}

type fault struct {
	Fault
	skip int // matching calls still to let through
	left int // calls left when Count > 0
}

var (
	_ lease.Store  = (*Store)(nil)
	_ lease.Roster = (*Store)(nil)
	_ lease.Store  = (*Client)(nil)
	_ lease.Roster = (*Client)(nil)
)

// Inject adds f and returns a function that removes it.
func (s *Store) Inject(f Fault) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ff := &fault{Fault: f, skip: f.Skip, left: f.Count}
	s.faults = append(s.faults, ff)
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.faults = slices.DeleteFunc(s.faults, func(x *fault) bool { return x == ff })
	}
}

// Client returns a view of s whose calls are attributed to name.
func (s *Store) Client(name string) *Client { return &Client{s: s, name: name} }

// Peek returns the group's record without a call being recorded.
func (s *Store) Peek(group string) lease.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records[group]
}

// History returns every record written for the group, in order.
func (s *Store) History(group string) []lease.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.history[group])
}

// Calls returns the calls made so far, in order.
func (s *Store) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Get implements lease.Store.
func (s *Store) Get(ctx context.Context, group string) (lease.Record, error) {
	return s.get(ctx, "", group)
}

// Acquire implements lease.Store.
func (s *Store) Acquire(ctx context.Context, group string, c lease.Claim) (lease.Record, error) {
	return s.write(ctx, "", OpAcquire, group, c)
}

// Renew implements lease.Store.
func (s *Store) Renew(ctx context.Context, group string, c lease.Claim) (lease.Record, error) {
	return s.write(ctx, "", OpRenew, group, c)
}

// Release implements lease.Store.
func (s *Store) Release(ctx context.Context, group string, c lease.Claim) (lease.Record, error) {
	return s.write(ctx, "", OpRelease, group, c)
}

// Announce implements lease.Roster.
func (s *Store) Announce(ctx context.Context, group string, m lease.Member) error {
	return s.announce(ctx, "", group, m)
}

// Leave implements lease.Roster.
func (s *Store) Leave(ctx context.Context, group, instance string) error {
	return s.leave(ctx, "", group, instance)
}

// Members implements lease.Roster.
func (s *Store) Members(ctx context.Context, group string) ([]lease.Member, error) {
	return s.list(ctx, "", group)
}

// Client is a named view of a Store (see Store.Client).
type Client struct {
	s    *Store
	name string
}

// Get implements lease.Store.
func (c *Client) Get(ctx context.Context, group string) (lease.Record, error) {
	return c.s.get(ctx, c.name, group)
}

// Acquire implements lease.Store.
func (c *Client) Acquire(ctx context.Context, group string, cl lease.Claim) (lease.Record, error) {
	return c.s.write(ctx, c.name, OpAcquire, group, cl)
}

// Renew implements lease.Store.
func (c *Client) Renew(ctx context.Context, group string, cl lease.Claim) (lease.Record, error) {
	return c.s.write(ctx, c.name, OpRenew, group, cl)
}

// Release implements lease.Store.
func (c *Client) Release(ctx context.Context, group string, cl lease.Claim) (lease.Record, error) {
	return c.s.write(ctx, c.name, OpRelease, group, cl)
}

// Announce implements lease.Roster.
func (c *Client) Announce(ctx context.Context, group string, m lease.Member) error {
	return c.s.announce(ctx, c.name, group, m)
}

// Leave implements lease.Roster.
func (c *Client) Leave(ctx context.Context, group, instance string) error {
	return c.s.leave(ctx, c.name, group, instance)
}

// Members implements lease.Roster.
func (c *Client) Members(ctx context.Context, group string) ([]lease.Member, error) {
	return c.s.list(ctx, c.name, group)
}

// begin finds the fault for a call, waits out its delay, and says whether
// the call goes ahead (err == nil).
func (s *Store) begin(ctx context.Context, client string, op Op) (Fault, error) {
	s.mu.Lock()
	var f Fault
	for _, ff := range s.faults {
		if (ff.Client == "" || ff.Client == client) && (len(ff.Ops) == 0 || slices.Contains(ff.Ops, op)) && (ff.Count == 0 || ff.left > 0) {
			if ff.skip > 0 {
				ff.skip--
				continue
			}
			if ff.Count > 0 {
				ff.left--
			}
			f = ff.Fault
			break
		}
	}
	s.mu.Unlock()
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return f, ctx.Err()
		case <-t.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return f, err
	}
	if f.Err != nil {
		return f, f.Err
	}
	return f, nil
}

// record notes a call; s.mu is held.
func (s *Store) recordLocked(client string, op Op, group string, err error) {
	s.calls = append(s.calls, Call{Client: client, Op: op, Group: group, At: time.Now(), Err: err})
}

func (s *Store) get(ctx context.Context, client, group string) (lease.Record, error) {
	_, err := s.begin(ctx, client, OpGet)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordLocked(client, OpGet, group, err)
	if err != nil {
		return lease.Record{}, err
	}
	return s.records[group], nil
}

func (s *Store) write(ctx context.Context, client string, op Op, group string, c lease.Claim) (lease.Record, error) {
	f, err := s.begin(ctx, client, op)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		err = validClaim(op, c)
	}
	if err != nil {
		s.recordLocked(client, op, group, err)
		return lease.Record{}, err
	}
	cur := s.records[group]
	if f.Conflict {
		err = fmt.Errorf("%s lease of %s: injected: %w", op, group, lease.ErrConflict)
		s.recordLocked(client, op, group, err)
		return cur, err
	}
	next, ok := apply(op, cur, c)
	if !ok {
		err = fmt.Errorf("%s lease of %s at version %q: %w", op, group, c.Prev, lease.ErrConflict)
		s.recordLocked(client, op, group, err)
		return cur, err
	}
	if s.records == nil {
		s.records = map[string]lease.Record{}
		s.history = map[string][]lease.Record{}
	}
	s.records[group] = next
	s.history[group] = append(s.history[group], next)
	if f.Lost {
		s.recordLocked(client, op, group, ErrLostAnswer)
		return lease.Record{}, fmt.Errorf("%s lease of %s: %w", op, group, ErrLostAnswer)
	}
	s.recordLocked(client, op, group, nil)
	return next, nil
}

// validClaim rejects claims no correct caller makes, loudly.
func validClaim(op Op, c lease.Claim) error {
	switch {
	case c.Holder == "":
		return fmt.Errorf("leasetest: %s with an empty holder", op)
	case c.Version == "":
		return fmt.Errorf("leasetest: %s with an empty new version", op)
	case c.Version == c.Prev:
		return fmt.Errorf("leasetest: %s with the new version equal to the previous one (%q)", op, c.Prev)
	case op != OpRelease && c.Lease <= 0:
		return fmt.Errorf("leasetest: %s with lease %s", op, c.Lease)
	case op != OpAcquire && c.Token == 0:
		return fmt.Errorf("leasetest: %s with token 0", op)
	}
	return nil
}

// apply returns the record after op, or false when its condition fails.
func apply(op Op, cur lease.Record, c lease.Claim) (lease.Record, bool) {
	if cur.Version != c.Prev {
		return cur, false
	}
	switch op {
	case OpAcquire:
		return lease.Record{Holder: c.Holder, Token: cur.Token + 1, Lease: c.Lease, Version: c.Version, LeaseEnd: c.LeaseEnd}, true
	default: // OpRenew, OpRelease
		if !cur.Exists() || cur.Released || cur.Holder != c.Holder || cur.Token != c.Token {
			return cur, false
		}
		next := cur
		next.Version, next.LeaseEnd = c.Version, c.LeaseEnd
		if op == OpRenew {
			next.Lease = c.Lease
		} else {
			next.Released, next.Next = true, c.Next
		}
		return next, true
	}
}

func (s *Store) announce(ctx context.Context, client, group string, m lease.Member) error {
	f, err := s.begin(ctx, client, OpAnnounce)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && m.Instance == "" {
		err = errors.New("leasetest: announce with an empty instance")
	}
	if err != nil {
		s.recordLocked(client, OpAnnounce, group, err)
		return err
	}
	if s.members == nil {
		s.members = map[string]map[string]lease.Member{}
	}
	if s.members[group] == nil {
		s.members[group] = map[string]lease.Member{}
	}
	s.members[group][m.Instance] = m
	if f.Lost {
		s.recordLocked(client, OpAnnounce, group, ErrLostAnswer)
		return ErrLostAnswer
	}
	s.recordLocked(client, OpAnnounce, group, nil)
	return nil
}

func (s *Store) leave(ctx context.Context, client, group, instance string) error {
	_, err := s.begin(ctx, client, OpLeave)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordLocked(client, OpLeave, group, err)
	if err != nil {
		return err
	}
	delete(s.members[group], instance)
	return nil
}

func (s *Store) list(ctx context.Context, client, group string) ([]lease.Member, error) {
	_, err := s.begin(ctx, client, OpMembers)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordLocked(client, OpMembers, group, err)
	if err != nil {
		return nil, err
	}
	var out []lease.Member
	for _, m := range s.members[group] {
		out = append(out, m)
	}
	return out, nil
}
