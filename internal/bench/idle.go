package bench

import (
	"context"
	"fmt"
	"time"
)

// Idle measures agents idle InService, with each source at its defaults
// and the status server and /metrics on: resident memory, CPU, and the
// calls each instance makes to its API port (Auto Scaling, SQS, …) and to
// IMDS, counted by the sandbox. Per-hour figures are the window's,
// extrapolated.
var Idle = Scenario{
	Name:  "idle",
	About: "idle agents: RSS, CPU, AWS and IMDS calls per instance-hour (counted by the sandbox)",
	Run:   runIdle,
}

// idleShape is how many agents of each source idle, and for how long.
func idleShape(env Env) (agents int, window time.Duration) {
	if env.Quick {
		return 1, 5 * time.Second
	}
	return 5, 60 * time.Second
}

// idleSettle is how long agents run in service before the window opens:
// past their start-up calls.
const idleSettle = 3 * time.Second

func runIdle(ctx context.Context, env Env) ([]Row, error) {
	agents, window := idleShape(env)
	sb, err := startSandbox(ctx, env)
	if err != nil {
		return nil, err
	}
	defer sb.close()
	ids, err := sb.agentGroups(ctx, env, "idle-", agents)
	if err != nil {
		return nil, err
	}
	pids := map[string]int{}
	for _, list := range ids {
		for _, id := range list {
			if pids[id], err = agentPID(sb.instanceDir(id)); err != nil {
				return nil, err
			}
		}
	}
	select {
	case <-time.After(idleSettle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	calls0, err := sb.calls(ctx)
	if err != nil {
		return nil, err
	}
	cpu0 := map[string]time.Duration{}
	for id, pid := range pids {
		if cpu0[id], err = cpuTime(pid); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	for left := window; left > 0; left = window - time.Since(start) {
		env.Progress("%d agents idle, %v left", len(pids), left.Round(time.Second))
		select {
		case <-time.After(min(left, 5*time.Second)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	elapsed := time.Since(start)
	calls1, err := sb.calls(ctx)
	if err != nil {
		return nil, err
	}

	perHour := float64(time.Hour) / float64(elapsed)
	detail := fmt.Sprintf("%d agents, %v window ×%.0f", agents, window, perHour)
	var rows []Row
	for _, src := range sources {
		group := "idle-" + src
		var rss, anon []float64
		var cpu, api, md float64
		for _, id := range ids[group] {
			t, err := cpuTime(pids[id])
			if err != nil {
				return nil, fmt.Errorf("agent of %s: %w (it did not stay up)", id, err)
			}
			kib, err := vmRSS(pids[id])
			if err != nil {
				return nil, err
			}
			akib, err := rssAnon(pids[id])
			if err != nil {
				return nil, err
			}
			c0, ok0 := calls0[id]
			c1, ok1 := calls1[id]
			if !ok0 || !ok1 {
				return nil, fmt.Errorf("GET /_sandbox/calls does not count %s", id)
			}
			rss = append(rss, kib/1024)
			anon = append(anon, akib/1024)
			cpu += (t - cpu0[id]).Seconds()
			api += float64(c1.API - c0.API)
			md += float64(c1.IMDS - c0.IMDS)
		}
		n := float64(len(ids[group]))
		rows = append(rows,
			Row{Figure: "idle RSS (" + src + "), median", Value: median(rss), Unit: "MiB", Detail: fmt.Sprintf("%d agents, at the window's end", agents), Goal: Limit(16), AtMost: true},
			Row{Figure: "idle RSS anonymous (" + src + "), median", Value: median(anon), Unit: "MiB", Detail: "RssAnon: without the binary's pages, which the page cache shares"},
			Row{Figure: "idle CPU (" + src + ") per instance-hour", Value: cpu / n * perHour, Unit: "s", Detail: detail + ", every thread's schedstat run time", Goal: Limit(0.8), AtMost: true},
			Row{Figure: "idle AWS calls (" + src + ") per instance-hour", Value: api / n * perHour, Unit: "calls", Detail: detail},
			Row{Figure: "idle IMDS calls (" + src + ") per instance-hour", Value: md / n * perHour, Unit: "calls", Detail: detail, Goal: Limit(750), AtMost: true},
		)
	}
	return rows, nil
}
