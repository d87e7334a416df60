package bench

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
)

// Leader measures leader election by lease, with the default timings
// (lease 10 s, renewed every 2 s, followers reading every 1 s), between
// the agents of one group in the sandbox's DynamoDB:
//
//   - crash fail-over: from the kill -9 of the lease holder's agent (its
//     process gone, nothing released) to another agent leading;
//   - hand-off gap: when the leader's instance is terminated, from its
//     agent having released the lease (before its terminate steps) to
//     another agent leading;
//   - the AWS calls per instance-hour of the leader and of a follower,
//     counted by the sandbox over a quiet window.
//
// Both ends are the agents' own log times ("leading", "leadership handed
// off"), or the kill's, on this machine's clock.
var Leader = Scenario{
	Name:  "leader",
	About: "lease leadership: crash fail-over (kill -9) and graceful hand-off gap, default timings",
	Run:   runLeader,
}

// leaderShape is how many kills and hand-offs a run takes.
func leaderShape(env Env) (kills, handoffs int) {
	if env.Quick {
		return 1, 1
	}
	return 2, 3
}

var (
	leadingLine = regexp.MustCompile(`(?m)^time=(\S+) level=INFO msg=leading .*token=(\d+)`)
	handedLine  = regexp.MustCompile(`(?m)^time=(\S+) level=INFO msg="leadership handed off"`)
)

func runLeader(ctx context.Context, env Env) ([]Row, error) {
	kills, handoffs := leaderShape(env)
	n := kills + handoffs + 1
	sb, err := startSandbox(ctx, env)
	if err != nil {
		return nil, err
	}
	defer sb.close()
	if err := awscloud.NewLeaseTable(sb.cfg, "leases").Create(ctx); err != nil {
		return nil, fmt.Errorf("create the lease table: %w", err)
	}
	yaml := `leader:
  mode: lease
  table: leases
terminate:
  steps:
    - name: after-hand-off
      command: ["true"]
      timeout: 30s
paths:
  journal_dir: $PWD/journal
status:
  listen: 127.0.0.1:0`
	if err := sb.launchConfig(ctx, "leader-lc", agentUserData(env.Binary, yaml, "")); err != nil {
		return nil, err
	}
	if _, err := sb.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("leader"), LaunchConfigurationName: aws.String("leader-lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(int32(n)), DesiredCapacity: aws.Int32(int32(n)), AvailabilityZones: []string{"us-east-1a"},
		LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{{
			LifecycleHookName: aws.String(drainHook), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"),
			HeartbeatTimeout: aws.Int32(60), DefaultResult: aws.String("ABANDON"),
		}},
	}); err != nil {
		return nil, err
	}
	env.Progress("starting %d agents", n)
	ids, err := sb.waitAgents(ctx, n, map[string]string{"leader": "imds"})
	if err != nil {
		return nil, err
	}
	live := map[string]string{} // instance → its directory
	for _, id := range ids["leader"] {
		live[id] = sb.instanceDir(id)
	}

	cur, err := waitLeading(ctx, live, 0)
	if err != nil {
		return nil, err
	}
	// The calls of a leader and its followers, over a quiet window.
	window := 10 * time.Second
	if env.Quick {
		window = 3 * time.Second
	}
	env.Progress("%s leads; counting calls for %v", cur.id, window)
	calls0, err := sb.calls(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := sleep(ctx, window); err != nil {
		return nil, err
	}
	calls1, err := sb.calls(ctx)
	if err != nil {
		return nil, err
	}
	perHour := float64(time.Hour) / float64(time.Since(start))
	var leaderCalls, followerCalls float64
	followers := len(live) - 1
	for id := range live {
		c := float64(calls1[id].API-calls0[id].API) * perHour
		if id == cur.id {
			leaderCalls = c
		} else {
			followerCalls += c / float64(followers)
		}
	}

	var failovers, gaps []time.Duration
	for i := range kills {
		env.Progress("kill -9 %d/%d of the leader's agent (%s)", i+1, kills, cur.id)
		pid, err := agentPID(live[cur.id])
		if err != nil {
			return nil, err
		}
		killed := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return nil, err
		}
		delete(live, cur.id)
		next, err := waitLeading(ctx, live, cur.token)
		if err != nil {
			return nil, fmt.Errorf("after the kill -9 of %s's agent: %w", cur.id, err)
		}
		failovers = append(failovers, next.at.Sub(killed))
		cur = next
	}
	for i := range handoffs {
		env.Progress("terminating the leader %d/%d (%s)", i+1, handoffs, cur.id)
		if _, err := sb.asg.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
			InstanceId: aws.String(cur.id), ShouldDecrementDesiredCapacity: aws.Bool(true),
		}); err != nil {
			return nil, err
		}
		m, err := waitConsole(ctx, live[cur.id], handedLine)
		if err != nil {
			return nil, err
		}
		released, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			return nil, fmt.Errorf("%s's log time %q: %w", cur.id, m[1], err)
		}
		delete(live, cur.id)
		next, err := waitLeading(ctx, live, cur.token)
		if err != nil {
			return nil, fmt.Errorf("after %s handed off: %w", cur.id, err)
		}
		gaps = append(gaps, next.at.Sub(released))
		cur = next
	}

	// The goals are what docs/agent.md promises: after a crash, another
	// instance leads within the lease plus about one poll; after a
	// hand-off, within about one poll.
	fd := fmt.Sprintf("%d kills (%s), lease 10 s + poll 1 s (defaults)", kills, samples(failovers, time.Second, "s"))
	hd := fmt.Sprintf("%d terminations of the leader (%s), poll 1 s (default)", handoffs, samples(gaps, time.Millisecond, "ms"))
	cd := fmt.Sprintf("%v window ×%.0f, counted by the sandbox at the instance's API port", window, perHour)
	return []Row{
		{Figure: "AWS calls per instance-hour, leader", Value: leaderCalls, Unit: "calls", Detail: cd},
		{Figure: "AWS calls per instance-hour, follower", Value: followerCalls, Unit: "calls", Detail: fmt.Sprintf("mean of %d; ", followers) + cd},
		{Figure: "crash fail-over (kill -9 → next leader), p50", Value: percentile(failovers, 50).Seconds(), Unit: "s", Detail: fd, Goal: Limit(11), AtMost: true},
		{Figure: "crash fail-over (kill -9 → next leader), max", Value: percentile(failovers, 100).Seconds(), Unit: "s", Detail: fd, Goal: Limit(11), AtMost: true},
		{Figure: "hand-off gap (released → next leader), p50", Value: ms(percentile(gaps, 50)), Unit: "ms", Detail: hd, Goal: Limit(1000), AtMost: true},
		{Figure: "hand-off gap (released → next leader), max", Value: ms(percentile(gaps, 100)), Unit: "ms", Detail: hd, Goal: Limit(1000), AtMost: true},
	}, nil
}

// leading is an agent that logged "leading" with a token.
type leading struct {
	id    string
	token uint64
	at    time.Time
}

// waitLeading waits for one of the live agents to log that it leads with
// a token above after, and returns it.
func waitLeading(ctx context.Context, live map[string]string, after uint64) (leading, error) {
	var found leading
	var perr error
	err := poll(ctx, waitBound, func() bool {
		for _, id := range slices.Sorted(maps.Keys(live)) {
			b, _ := os.ReadFile(filepath.Join(live[id], "console.log"))
			for _, m := range leadingLine.FindAllStringSubmatch(string(b), -1) {
				tok, err := strconv.ParseUint(m[2], 10, 64)
				if err != nil || tok <= after {
					continue
				}
				at, err := time.Parse(time.RFC3339Nano, m[1])
				if err != nil {
					perr = fmt.Errorf("%s's log time %q: %w", id, m[1], err)
					return true
				}
				found = leading{id: id, token: tok, at: at}
				return true
			}
		}
		return false
	})
	if perr != nil {
		return leading{}, perr
	}
	if err != nil {
		return leading{}, fmt.Errorf("no agent of %v leads with a token above %d: %w", slices.Sorted(maps.Keys(live)), after, err)
	}
	return found, nil
}

// samples lists durations in unit, for a row's detail.
func samples(ds []time.Duration, unit time.Duration, name string) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, number(float64(d)/float64(unit)))
	}
	return strings.Join(parts, ", ") + " " + name
}
