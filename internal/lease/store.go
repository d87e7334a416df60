package lease

import (
	"context"
	"errors"
	"time"
)

// ErrConflict is returned (wrapped) by a Store write whose condition did
// not hold: the record was not at the version the write was based on, or
// not held by the writer. The write had no effect. Callers branch on it
// with errors.Is.
var ErrConflict = errors.New("lease record changed")

// Record is a group's lease record as stored.
type Record struct {
	// Holder is the identity (instance id) of the last holder; it is kept
	// when the lease is released.
	Holder string
	// Token is the fencing token: 1 for the first holder, one more for
	// every new holder, never reset.
	Token uint64
	// Lease is how long the holder's lease lasts after each of its writes,
	// as judged by an observer's own clock.
	Lease time.Duration
	// Version changes on every write; the empty string means there is no
	// record.
	Version string
	// Released is set when the holder gave the lease up: the lease is
	// expired and may be acquired at once.
	Released bool
	// Next is the member a releasing holder named as its successor; it may
	// be empty.
	Next string
	// LeaseEnd is the writer's wall-clock time at which the lease ends,
	// for humans only: no decision reads it, as it comes from another
	// host's clock.
	LeaseEnd time.Time
}

// Exists reports whether r is a stored record (a read that found none
// returns the zero Record).
func (r Record) Exists() bool { return r.Version != "" }

// Claim is the input of a conditional write: who writes, on which version
// of the record it is based, and what it writes.
type Claim struct {
	// Holder is the writer's identity.
	Holder string
	// Prev is the version the write is based on; the write applies only if
	// the record is still at Prev. Empty means there must be no record.
	Prev string
	// Version is the record's new version, chosen by the writer and unique
	// (so that the writer can recognise its own write on a re-read).
	Version string
	// Token is the holder's fencing token (Renew, Release); Acquire ignores
	// it and stores the previous token plus one.
	Token uint64
	// Lease is the lease duration to store (Acquire, Renew).
	Lease time.Duration
	// LeaseEnd is the informational end of the lease to store.
	LeaseEnd time.Time
	// Next names the successor (Release only).
	Next string
}

// Store keeps one lease record per group and changes it only by
// conditional writes. Every write returns the record as written; when its
// condition fails it returns an error wrapping ErrConflict together with
// the record as it is (the zero Record when there is none), so that the
// caller needs no second read. A write that fails otherwise (a timeout, a
// lost answer) may or may not have been applied; the caller resolves it by
// reading the record and recognising its own Version. Implementations are
// safe for concurrent use.
type Store interface {
	// Get returns the group's record (a consistent read), or the zero
	// Record when there is none.
	Get(ctx context.Context, group string) (Record, error)
	// Acquire makes c.Holder the holder if the record is at c.Prev (or
	// absent when c.Prev is empty): it stores the previous token plus one
	// (1 for a new record), the lease, c.Version and c.LeaseEnd, and clears
	// Released and Next.
	Acquire(ctx context.Context, group string, c Claim) (Record, error)
	// Renew extends the lease if the record is at c.Prev, held by c.Holder
	// with c.Token and not released: it stores c.Version, c.Lease and
	// c.LeaseEnd.
	Renew(ctx context.Context, group string, c Claim) (Record, error)
	// Release gives the lease up under the same condition as Renew: it
	// stores c.Version, Released, c.Next and c.LeaseEnd, and keeps the
	// holder and the token.
	Release(ctx context.Context, group string, c Claim) (Record, error)
}

// Member is one agent's presence item.
type Member struct {
	// Instance is the member's identity (instance id).
	Instance string
	// State is its lifecycle state, such as InService.
	State string
	// Ready reports whether its readiness probes passed.
	Ready bool
	// Renewed is the member's wall-clock time at its last announcement.
	Renewed time.Time
}

// Roster keeps the members of each group: one small item per agent, next
// to the group's lease record. Implementations are safe for concurrent
// use.
type Roster interface {
	// Announce writes m as the group's item for m.Instance, replacing the
	// previous one.
	Announce(ctx context.Context, group string, m Member) error
	// Leave deletes the item of instance; deleting a missing item is not an
	// error.
	Leave(ctx context.Context, group, instance string) error
	// Members returns every item of the group (live or not), in no
	// particular order.
	Members(ctx context.Context, group string) ([]Member, error)
}
