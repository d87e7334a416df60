package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/lifeguardhq/lifeguard/internal/config"
)

// Notice measures how fast the agent acts on a scale-in, with each
// source at its defaults, in one sandbox with real limits: two groups
// (one per source) take turns scaling in one instance, after a random
// pause (seeded: the same run each time) so that the samples fall at
// every phase of the agents' poll cycles.
var Notice = Scenario{
	Name:  "notice",
	About: "scale-in → first step and step exit → action completed, for sources sqs and imds",
	Run:   runNotice,
}

// noticeTurns is how many scale-ins each source takes.
func noticeTurns(env Env) int {
	if env.Quick {
		return 3
	}
	return 12
}

func runNotice(ctx context.Context, env Env) ([]Row, error) {
	turns := noticeTurns(env)
	sb, err := startSandbox(ctx, env)
	if err != nil {
		return nil, err
	}
	defer sb.close()
	ids, err := sb.agentGroups(ctx, env, "notice-", turns)
	if err != nil {
		return nil, err
	}

	// Without a random phase, each scale-in would follow the last
	// completion (itself just after an agent's poll) by a fixed delay,
	// and the agents, started together, poll in step: the samples would
	// all land at one point of the poll cycle. The pause spans the cycle:
	// the default IMDS poll interval for imds, a second for sqs (whose
	// long poll returns as soon as a message arrives).
	span := map[string]time.Duration{"sqs": time.Second, "imds": time.Duration(config.DefaultAgent().IMDS.PollInterval)}
	rng := rand.New(rand.NewPCG(1, 13))
	toStep := map[string][]time.Duration{}
	toDone := map[string][]time.Duration{}
	for i := range turns {
		for _, src := range sources {
			group := "notice-" + src
			env.Progress("scale-in %d/%d, source %s", i+1, turns, src)
			if err := sleep(ctx, time.Duration(rng.Int64N(int64(span[src])))); err != nil {
				return nil, err
			}
			step, done, err := sb.scaleInOne(ctx, group, turns-i-1, ids[group])
			if err != nil {
				return nil, fmt.Errorf("source %s, scale-in %d: %w", src, i+1, err)
			}
			toStep[src] = append(toStep[src], step)
			toDone[src] = append(toDone[src], done)
		}
	}

	var rows []Row
	goals := map[string][2]float64{"sqs": {20, 60}, "imds": {600, 1100}}
	for _, src := range sources {
		detail := fmt.Sprintf("%d scale-ins, seeded pause U[0, %v)", turns, span[src])
		rows = append(rows,
			Row{Figure: "scale-in → first step (" + src + ") p50", Value: ms(percentile(toStep[src], 50)), Unit: "ms", Detail: detail, Goal: Limit(goals[src][0]), AtMost: true},
			Row{Figure: "scale-in → first step (" + src + ") p99", Value: ms(percentile(toStep[src], 99)), Unit: "ms", Detail: detail, Goal: Limit(goals[src][1]), AtMost: true},
		)
	}
	for _, src := range sources {
		rows = append(rows, Row{Figure: "step exit → action completed (" + src + ") p50", Value: ms(percentile(toDone[src], 50)), Unit: "ms",
			Detail: fmt.Sprintf("%d actions", len(toDone[src])), Goal: Limit(5), AtMost: true})
	}
	return rows, nil
}

// scaleInOne sets group's desired capacity to desired (one less than
// now), and returns the real time from SetDesiredCapacity returning to
// the terminate step starting, and from the step's exit to Auto Scaling
// taking the completion. The action must be completed CONTINUE by the
// agent, or the figures mean nothing.
func (s *sandbox) scaleInOne(ctx context.Context, group string, desired int, ids []string) (toStep, toDone time.Duration, err error) {
	t0 := time.Now()
	if _, err := s.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{
		AutoScalingGroupName: aws.String(group), DesiredCapacity: aws.Int32(int32(desired)),
	}); err != nil {
		return 0, 0, err
	}
	e, err := s.ev.waitFor(ctx, group+" Terminating:Wait", stateIs(group, "Terminating:Wait"))
	if err != nil {
		return 0, 0, err
	}
	id := e.Instance
	if !slices.Contains(ids, id) {
		return 0, 0, fmt.Errorf("instance %s is not one of the group's %v", id, ids)
	}
	var started time.Time
	if err := poll(ctx, 30*time.Second, func() bool {
		started, err = readNanos(filepath.Join(s.instanceDir(id), "step-started"))
		return err == nil
	}); err != nil {
		return 0, 0, fmt.Errorf("the step of %s did not start: %w", id, err)
	}
	done, err := s.ev.waitFor(ctx, id+"'s action completed", func(e event) bool { return e.Kind == "action-completed" && e.Instance == id })
	if err != nil {
		return 0, 0, err
	}
	if done.Result != "CONTINUE" || done.Detail != "completed" {
		return 0, 0, fmt.Errorf("the action of %s ended %s (%s), want CONTINUE by the agent", id, done.Result, done.Detail)
	}
	exit, err := readNanos(filepath.Join(s.instanceDir(id), "step-exit"))
	if err != nil {
		return 0, 0, err
	}
	// The sandbox's clock is this machine's: its event time is when Auto
	// Scaling took the completion.
	return started.Sub(t0), done.Time.Sub(exit), nil
}

// readNanos reads a time written by `date +%s%N`.
func readNanos(path string) (time.Time, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, err
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q: %w", path, b, err)
	}
	return time.Unix(0, ns), nil
}
