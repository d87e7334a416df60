package agent

import (
	runtimemetrics "runtime/metrics"
	"time"
)

// idleCollectEvery is the longest a settled agent goes between two calls
// of Deps.Settled when Deps.Release is not set. It is under the two
// minutes after which the Go runtime forces a collection of its own, so
// that while the agent idles its collections are the ones Settled runs
// (lifeguard agent's collects and then gives back the pages the
// collection mapped), not ones that leave the pages mapped until the next
// call.
const idleCollectEvery = 110 * time.Second

// gcCyclesMetric counts the garbage collections the process has completed.
const gcCyclesMetric = "/gc/cycles/total:gc-cycles"

// upkeep calls Deps.Settled and Deps.Release while the agent is settled
// (loop.settled). Settled is called once when start-up is over. After
// that, a garbage collection has mapped some of the binary again (it
// walks every goroutine's stack, reading the runtime's tables of the
// binary, which the kernel maps back 64 KiB at a time, and shrinks the
// stacks that the next poll grows again, reading them once more): with
// Release set, it is called on the loop's second turn after the
// collection, past the next poll; without it, Settled is called again on
// the next turn, and at least every idleCollectEvery. Only the lifecycle
// loop's goroutine uses it.
type upkeep struct {
	settle  func() // Deps.Settled
	release func() // Deps.Release
	sample  []runtimemetrics.Sample
	called  bool      // settle has been called
	gcs     uint64    // collections completed when settle or release last returned
	last    time.Time // when settle last returned
	due     bool      // a collection ran since release last returned: call it on the next turn
}

func newUpkeep(settle, release func()) *upkeep {
	return &upkeep{settle: settle, release: release, sample: []runtimemetrics.Sample{{Name: gcCyclesMetric}}}
}

// settled is called on each turn of the loop on which the agent is
// settled; it calls settle or release when one is due.
func (u *upkeep) settled() {
	switch {
	case !u.called:
		u.called = true
		if u.settle != nil {
			u.settle()
		}
	case u.release != nil:
		if u.due {
			u.due = false
			u.release()
		} else {
			u.due = u.collections() != u.gcs
			return
		}
	case u.settle != nil:
		if u.collections() == u.gcs && time.Since(u.last) < idleCollectEvery {
			return
		}
		u.settle()
	default:
		return
	}
	// Collections settle ran itself are counted as seen.
	u.gcs, u.last = u.collections(), time.Now()
}

// collections returns how many garbage collections the process has
// completed.
func (u *upkeep) collections() uint64 {
	runtimemetrics.Read(u.sample)
	if u.sample[0].Value.Kind() != runtimemetrics.KindUint64 {
		return 0 // not kept by this runtime: only the timer applies
	}
	return u.sample[0].Value.Uint64()
}
