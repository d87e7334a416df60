package systest_test

import (
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/bench"
)

// BenchmarkLeader is bench.Leader: agents of one group electing a leader
// by lease in the sandbox's DynamoDB with the default timings (lease
// 10 s, renew every 2 s, followers read every 1 s). It reports the crash
// fail-over, from the kill -9 of the lease holder's agent to another
// agent leading, and the hand-off gap, from a terminating leader's
// release to another agent leading.
//
//	go test -run='^$' -bench=Leader -benchtime=1x ./internal/systest/
func BenchmarkLeader(b *testing.B) { benchScenario(b, bench.Leader) }
