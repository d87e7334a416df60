package systest_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lease"
)

// BenchmarkLeader measures leader election with the default timings
// (lease 10 s, renew every 2 s, followers poll every 1 s) on the wall
// clock: three real lease.Electors over the real awscloud.LeaseTable and
// SDK against an in-memory sandbox (no network: the figures leave out
// DynamoDB's latency, a few milliseconds per call). It reports, over
// 5 kills and 10 hand-offs (about four minutes):
//
//   - failover-p50-s, failover-p99-s: from the SIGKILL of the leader (its
//     process gone, nothing released) to the next leader's job starting;
//
//   - handoff-p50-ms, handoff-p99-ms: from the leader's resignation to the
//     next leader's job starting;
//
//   - leader-calls/h, follower-calls/h: lease table requests per
//     instance-hour (presence included), counted at the instance's side
//     over a quiet minute; leader-usd/month and follower-usd/month price
//     them on demand in us-east-1 ($0.625 per million write request units,
//     $0.125 per million read request units; every item is under 1 KB, so
//     each write is 1 WRU and each consistent read or query page 1 RRU).
//
//     go test -run='^$' -bench=Leader -benchtime=1x ./internal/systest/
func BenchmarkLeader(b *testing.B) {
	for b.Loop() {
		c := newLeaseCluster(b, lease.Config{})
		for range 3 {
			c.start(c.newID())
		}
		first, ok := c.waitJob(0, time.Minute)
		if !ok {
			b.Fatal("no leader within a minute")
		}
		ctx := context.Background()

		// Calls per instance-hour, with one leader and two followers.
		time.Sleep(5 * time.Second) // past the start: presence and polls at their pace
		before := map[string]map[string]int{}
		for _, n := range c.live() {
			n.net.mu.Lock()
			before[n.id] = maps.Clone(n.net.calls)
			n.net.mu.Unlock()
		}
		const window = 60 * time.Second
		time.Sleep(window)
		var leaderR, leaderW, folR, folW float64
		followers := 0
		for _, n := range c.live() {
			n.net.mu.Lock()
			reads := float64(n.net.calls["GetItem"] + n.net.calls["Query"] - before[n.id]["GetItem"] - before[n.id]["Query"])
			writes := float64(n.net.calls["UpdateItem"] + n.net.calls["PutItem"] + n.net.calls["DeleteItem"] -
				before[n.id]["UpdateItem"] - before[n.id]["PutItem"] - before[n.id]["DeleteItem"])
			b.Logf("%s (leading %t) in %v: %v (before: %v)", n.id, n.leading(), window, n.net.calls, before[n.id])
			n.net.mu.Unlock()
			perHour := float64(time.Hour / window)
			if n.id == first.node {
				leaderR, leaderW = reads*perHour, writes*perHour
			} else {
				folR += reads * perHour
				folW += writes * perHour
				followers++
			}
		}
		folR, folW = folR/float64(followers), folW/float64(followers)
		month := 730.0 // hours
		cost := func(r, w float64) float64 { return month * (r*0.125 + w*0.625) / 1e6 }
		b.ReportMetric(leaderR+leaderW, "leader-calls/h")
		b.ReportMetric(folR+folW, "follower-calls/h")
		b.ReportMetric(cost(leaderR, leaderW), "leader-usd/month")
		b.ReportMetric(cost(folR, folW), "follower-usd/month")
		b.Logf("per instance-hour: leader %.0f reads + %.0f writes, follower %.0f reads + %.0f writes", leaderR, leaderW, folR, folW)

		// Crash fail-over.
		var failovers []time.Duration
		last := first
		for range 5 {
			l := c.leader()
			if l == nil || l.id != last.node {
				b.Fatalf("leader %v is not the last job's node %s", l, last.node)
			}
			killed := time.Now()
			c.kill(l.id)
			next, ok := c.waitJob(last.token, time.Minute)
			if !ok {
				b.Fatal("no new leader within a minute of the kill")
			}
			failovers = append(failovers, next.start.Sub(killed))
			c.start(l.id)
			last = next
			time.Sleep(3 * time.Second) // the restarted instance back as a follower
		}

		// Graceful hand-off.
		var handoffs []time.Duration
		for range 10 {
			l := c.leader()
			if l == nil {
				b.Fatal("no leader")
			}
			asked := time.Now()
			if err := l.el.Resign(ctx); err != nil {
				b.Fatal(err)
			}
			next, ok := c.waitJob(last.token, time.Minute)
			if !ok {
				b.Fatal("no new leader within a minute of the resignation")
			}
			handoffs = append(handoffs, next.start.Sub(asked))
			last = next
			// A resigned instance sits out one lease (in production it is
			// terminating); with three instances, resigning again sooner
			// than half a lease would leave no eligible member to name.
			time.Sleep(6 * time.Second)
		}
		_, _, _, _, overlaps := c.checkInvariants(b)
		b.Logf("fail-overs %v; hand-offs %v; %d overlaps", failovers, handoffs, overlaps)
		b.ReportMetric(pct(failovers, 50).Seconds(), "failover-p50-s")
		b.ReportMetric(pct(failovers, 99).Seconds(), "failover-p99-s")
		b.ReportMetric(float64(pct(handoffs, 50).Milliseconds()), "handoff-p50-ms")
		b.ReportMetric(float64(pct(handoffs, 99).Milliseconds()), "handoff-p99-ms")
	}
}

// pct returns the p-th percentile of ds (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	i := (p*len(s)+99)/100 - 1
	return s[max(i, 0)]
}
