// Package jobstest holds an in-memory jobs.Ledger, shared by the tests of
// jobs and of the packages built on it, and the conformance tests
// (RunLedgerTests) that every implementation of jobs.Ledger must pass.
package jobstest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/jobs"
)

// Op names a Ledger method.
type Op string

// Ops.
const (
	OpClaim  Op = "claim"
	OpFinish Op = "finish"
	OpRecent Op = "recent"
)

// Call is one call to the fake, as recorded.
type Call struct {
	Op       Op
	Job      string
	Slot     time.Time
	Token    uint64
	Instance string
	Outcome  string
	Claimed  bool
	Err      error
	At       time.Time
}

// Ledger is an in-memory jobs.Ledger. Its zero value is ready to use; it
// is safe for concurrent use.
type Ledger struct {
	// Fail, when not nil, is called before every operation; a non-nil
	// error fails the operation without effect.
	Fail func(op Op, job string, slot time.Time) error

	mu      sync.Mutex
	runs    map[string]map[int64]*jobs.Record // job → slot (Unix ns) → record
	highest map[string]uint64                 // job → highest token that claimed
	calls   []Call
}

var _ jobs.Ledger = (*Ledger)(nil)

// Claim implements jobs.Ledger.
func (l *Ledger) Claim(ctx context.Context, job string, slot time.Time, token uint64, instance string) (bool, error) {
	if err := l.check(ctx, OpClaim, job, slot); err != nil {
		l.record(Call{Op: OpClaim, Job: job, Slot: slot, Token: token, Instance: instance, Err: err})
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := Call{Op: OpClaim, Job: job, Slot: slot, Token: token, Instance: instance, At: time.Now()}
	defer func() { l.calls = append(l.calls, c) }()
	if h := l.highest[job]; token < h {
		c.Err = fmt.Errorf("claim %s at %s with token %d (highest %d): %w", job, slot.UTC().Format(time.RFC3339Nano), token, h, jobs.ErrFenced)
		return false, c.Err
	}
	if l.runs == nil {
		l.runs, l.highest = map[string]map[int64]*jobs.Record{}, map[string]uint64{}
	}
	l.highest[job] = token
	if l.runs[job] == nil {
		l.runs[job] = map[int64]*jobs.Record{}
	}
	if r, ok := l.runs[job][slot.UnixNano()]; ok {
		c.Claimed = r.Token == token && r.Instance == instance
		return c.Claimed, nil
	}
	l.runs[job][slot.UnixNano()] = &jobs.Record{Job: job, Slot: slot.UTC(), Token: token, Instance: instance, Claimed: time.Now().UTC()}
	c.Claimed = true
	return true, nil
}

// Finish implements jobs.Ledger.
func (l *Ledger) Finish(ctx context.Context, job string, slot time.Time, outcome string, ended time.Time) error {
	if err := l.check(ctx, OpFinish, job, slot); err != nil {
		l.record(Call{Op: OpFinish, Job: job, Slot: slot, Outcome: outcome, Err: err})
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := Call{Op: OpFinish, Job: job, Slot: slot, Outcome: outcome, At: time.Now()}
	defer func() { l.calls = append(l.calls, c) }()
	r, ok := l.runs[job][slot.UnixNano()]
	if !ok {
		c.Err = fmt.Errorf("finish %s at %s: no such run was claimed", job, slot.UTC().Format(time.RFC3339Nano))
		return c.Err
	}
	r.Outcome, r.Ended = outcome, ended.UTC()
	return nil
}

// Recent implements jobs.Ledger.
func (l *Ledger) Recent(ctx context.Context, job string, n int) ([]jobs.Record, error) {
	if n <= 0 {
		return nil, fmt.Errorf("recent runs of %s: n is %d; ask for at least 1", job, n)
	}
	if err := l.check(ctx, OpRecent, job, time.Time{}); err != nil {
		return nil, err
	}
	out := l.Records(job)
	slices.Reverse(out)
	return out[:min(n, len(out))], nil
}

// Records returns every run of job, oldest slot first, without a call
// being recorded.
func (l *Ledger) Records(job string) []jobs.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]jobs.Record, 0, len(l.runs[job]))
	for _, r := range l.runs[job] {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b jobs.Record) int { return a.Slot.Compare(b.Slot) })
	return out
}

// Calls returns the calls made so far, in order.
func (l *Ledger) Calls() []Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

func (l *Ledger) check(ctx context.Context, op Op, job string, slot time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if job == "" {
		return errors.New("jobstest: empty job name")
	}
	if l.Fail != nil {
		return l.Fail(op, job, slot)
	}
	return nil
}

func (l *Ledger) record(c Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c.At = cmp.Or(c.At, time.Now())
	l.calls = append(l.calls, c)
}
