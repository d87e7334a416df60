package agent

import (
	runtimemetrics "runtime/metrics"
	"time"
)

// idleCollectEvery is the longest a settled agent goes between two calls
// of Deps.Settled. It is under the two minutes after which the Go runtime
// forces a collection of its own, so that while the agent idles its
// collections are the ones Settled runs (lifeguard agent's collects and
// then gives back the pages the collection mapped), not ones that leave
// the pages mapped until the next call.
const idleCollectEvery = 110 * time.Second

// gcCyclesMetric counts the garbage collections the process has completed.
const gcCyclesMetric = "/gc/cycles/total:gc-cycles"

// upkeep calls Deps.Settled while the agent is settled (loop.settled):
// once when start-up is over, then whenever a garbage collection has run
// since the last call (a collection walks every goroutine's stack, reading
// the runtime's tables of the binary, which the kernel maps back 64 KiB
// at a time), and at least every idleCollectEvery. Only the lifecycle
// loop's goroutine uses it.
type upkeep struct {
	fn     func() // Deps.Settled; nil: nothing to do
	sample []runtimemetrics.Sample
	gcs    uint64    // collections completed when fn last returned
	last   time.Time // when fn last returned; zero: never called
}

func newUpkeep(fn func()) *upkeep {
	return &upkeep{fn: fn, sample: []runtimemetrics.Sample{{Name: gcCyclesMetric}}}
}

// settled is called on each turn of the loop on which the agent is
// settled; it calls fn when it is due.
func (u *upkeep) settled() {
	if u.fn == nil {
		return
	}
	if !u.last.IsZero() && u.collections() == u.gcs && time.Since(u.last) < idleCollectEvery {
		return
	}
	u.fn()
	// Collections fn ran itself are counted as seen.
	u.gcs, u.last = u.collections(), time.Now()
}

// collections returns how many garbage collections the process has
// completed.
func (u *upkeep) collections() uint64 {
	runtimemetrics.Read(u.sample)
	if u.sample[0].Value.Kind() != runtimemetrics.KindUint64 {
		return 0 // not kept by this runtime: the timer alone applies
	}
	return u.sample[0].Value.Uint64()
}
