package jobs

import (
	"context"
	"errors"
	"time"
)

// ErrFenced is returned (wrapped) by Ledger.Claim when a run of the job was
// already claimed with a higher fencing token: the claimer has been
// deposed, whether it knows it yet or not, and must not run the job.
var ErrFenced = errors.New("a newer leader has claimed runs of this job")

// Record is one scheduled run as kept in a Ledger.
type Record struct {
	// Job is the job's name; Slot the time the run was scheduled for.
	Job  string
	Slot time.Time
	// Token and Instance are the fencing token and the identity of the
	// leader that claimed the run.
	Token    uint64
	Instance string
	// Claimed is when the run was claimed (the claimer's clock).
	Claimed time.Time
	// Ended and Outcome are set by Finish; both are zero while the run is
	// going on, or when its runner vanished before finishing it.
	Ended   time.Time
	Outcome string
}

// Finished reports whether the run's end was recorded.
func (r Record) Finished() bool { return r.Outcome != "" }

// Ledger keeps one record per (job, slot), shared by every instance that
// may lead: it is how a slot starts exactly once across fail-overs.
// Implementations are safe for concurrent use.
type Ledger interface {
	// Claim records that instance, leading with token, starts job's run for
	// slot, if no run of job was recorded for slot; it reports whether it
	// did. A claim repeated with the same token and instance reports true
	// again (an ambiguous retry resolves to success), so a caller claims a
	// slot once per leadership. Claim fails with ErrFenced, recording
	// nothing, when a claim of a run of job was made with a higher token:
	// every claim, won or not, fences off later claims of the job with a
	// lower token.
	//
	// When claimed is true, the slot is the caller's even if err is not
	// nil: err then reports a failure of the ledger's own bookkeeping (such
	// as the list Recent reads) after the claim took effect.
	Claim(ctx context.Context, job string, slot time.Time, token uint64, instance string) (claimed bool, err error)
	// Finish records how the run of job for slot ended. The run must have
	// been claimed.
	Finish(ctx context.Context, job string, slot time.Time, outcome string, ended time.Time) error
	// Recent returns up to n (n > 0) of job's most recent runs by slot,
	// newest first. An implementation may keep a bounded history (at least
	// the last 50 runs).
	Recent(ctx context.Context, job string, n int) ([]Record, error)
}
