package bench

import (
	"context"
	"fmt"
	"slices"
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
	return 5, 3 * time.Minute
}

// idleSettle is how long agents run in service before the window opens:
// past their start-up calls.
const idleSettle = 3 * time.Second

// idleSampleEvery is how often each agent's resident set is read during
// the window.
const idleSampleEvery = 5 * time.Second

// idleSteadyAfter is where, in the window, the steady part begins. The Go
// runtime collects at least every two minutes, and a collection walks
// every goroutine's stack, reading tables of the binary that the kernel
// maps back (and counts in the resident set) 64 KiB at a time: from
// 135 s on, at least one collection has run since the agents settled
// (just before the window opened), so the steady figures are what an
// idle agent holds for good, not what it holds in its first minute.
const idleSteadyAfter = 135 * time.Second

// idleFirst is where, in the window, the "1 min" figures are read: a
// minute after the agents started, what the window used to report.
const idleFirst = time.Minute - idleSettle

// rssSample is one reading of an agent's resident set, at offset from
// the window's start.
type rssSample struct {
	at        time.Duration
	rss, anon float64 // MiB
}

// rssSeries is one agent's readings over the window.
type rssSeries []rssSample

// at returns the first reading taken at or after d, or the last one.
func (s rssSeries) at(d time.Duration) rssSample {
	for _, x := range s {
		if x.at >= d {
			return x
		}
	}
	return s[len(s)-1]
}

// steady returns the median resident set and anonymous memory of the
// readings taken at or after from, and their largest resident set; with
// none that late (a quick run's short window), those of the last reading.
func (s rssSeries) steady(from time.Duration) (rss, anon, peak float64) {
	var r, a []float64
	for _, x := range s {
		if x.at >= from {
			r, a = append(r, x.rss), append(a, x.anon)
		}
	}
	if len(r) == 0 {
		last := s[len(s)-1]
		return last.rss, last.anon, last.rss
	}
	return median(r), median(a), slices.Max(r)
}

// readRSS reads pid's resident set and anonymous memory, in MiB.
func readRSS(pid int, at time.Duration) (rssSample, error) {
	kib, err := vmRSS(pid)
	if err != nil {
		return rssSample{}, err
	}
	akib, err := rssAnon(pid)
	if err != nil {
		return rssSample{}, err
	}
	return rssSample{at: at, rss: kib / 1024, anon: akib / 1024}, nil
}

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
	series := map[string]rssSeries{}
	start := time.Now()
	for {
		at := time.Since(start)
		for id, pid := range pids {
			x, err := readRSS(pid, at)
			if err != nil {
				return nil, fmt.Errorf("agent of %s: %w (it did not stay up)", id, err)
			}
			series[id] = append(series[id], x)
		}
		left := window - time.Since(start)
		if left <= 0 {
			break
		}
		env.Progress("%d agents idle, %v left", len(pids), left.Round(time.Second))
		select {
		case <-time.After(min(left, idleSampleEvery)):
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
	steadyFrom := min(idleSteadyAfter, window)
	steadyDetail := fmt.Sprintf("%d agents, each one's median of its readings every %v from %v into the %v window (after a collection)", agents, idleSampleEvery, steadyFrom, window)
	if window < idleSteadyAfter {
		steadyDetail = fmt.Sprintf("%d agents at the end of a %v window: no collection yet, not steady", agents, window)
	}
	firstDetail := fmt.Sprintf("%d agents, a minute after start (what this row read before the steady rows)", agents)
	if window < idleFirst {
		firstDetail = fmt.Sprintf("%d agents at the end of a %v window: not a minute", agents, window)
	}
	var rows []Row
	for _, src := range sources {
		group := "idle-" + src
		var first, rss, anon, peak []float64
		var cpu, api, md float64
		for _, id := range ids[group] {
			t, err := cpuTime(pids[id])
			if err != nil {
				return nil, fmt.Errorf("agent of %s: %w (it did not stay up)", id, err)
			}
			c0, ok0 := calls0[id]
			c1, ok1 := calls1[id]
			if !ok0 || !ok1 {
				return nil, fmt.Errorf("GET /_sandbox/calls does not count %s", id)
			}
			s := series[id]
			r, a, p := s.steady(steadyFrom)
			first = append(first, s.at(min(idleFirst, window)).rss)
			rss, anon, peak = append(rss, r), append(anon, a), append(peak, p)
			cpu += (t - cpu0[id]).Seconds()
			api += float64(c1.API - c0.API)
			md += float64(c1.IMDS - c0.IMDS)
		}
		n := float64(len(ids[group]))
		rows = append(rows,
			Row{Figure: "idle RSS (" + src + "), 1 min", Value: median(first), Unit: "MiB", Detail: firstDetail},
			Row{Figure: "idle RSS (" + src + "), steady median", Value: median(rss), Unit: "MiB", Detail: steadyDetail, Goal: Limit(16), AtMost: true},
			Row{Figure: "idle RSS (" + src + "), steady peak", Value: slices.Max(peak), Unit: "MiB", Detail: "the largest reading of any agent in the steady part"},
			Row{Figure: "idle RSS anonymous (" + src + "), steady median", Value: median(anon), Unit: "MiB", Detail: "RssAnon: without the binary's pages, which the page cache shares"},
			Row{Figure: "idle CPU (" + src + ") per instance-hour", Value: cpu / n * perHour, Unit: "s", Detail: detail + ", every thread's schedstat run time", Goal: Limit(0.8), AtMost: true},
			Row{Figure: "idle AWS calls (" + src + ") per instance-hour", Value: api / n * perHour, Unit: "calls", Detail: detail},
			Row{Figure: "idle IMDS calls (" + src + ") per instance-hour", Value: md / n * perHour, Unit: "calls", Detail: detail, Goal: Limit(750), AtMost: true},
		)
	}
	return rows, nil
}
