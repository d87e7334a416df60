package jobs_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/jobs"
	"github.com/lifeguardhq/lifeguard/internal/jobs/jobstest"
)

// fakeRun is one call of a fakeRunner.
type fakeRun struct {
	instance   string
	job        string
	slot       time.Time
	token      uint64
	deadline   time.Time
	start, end time.Time
	stopped    bool
}

// fakeRunner stands in for RunLeaderOnly in the scheduler's tests: a run
// lasts its job's duration, or until its context is done; then it takes
// stopDelay to stop, as a command given a grace would.
type fakeRunner struct {
	instance  string
	last      map[string]time.Duration // job → how long a run lasts
	stopDelay time.Duration

	mu   *sync.Mutex
	runs *[]fakeRun // shared by the runners of one test
}

func newRunners(last map[string]time.Duration, instances ...string) map[string]*fakeRunner {
	mu, runs := &sync.Mutex{}, &[]fakeRun{}
	out := map[string]*fakeRunner{}
	for _, in := range instances {
		out[in] = &fakeRunner{instance: in, last: last, mu: mu, runs: runs}
	}
	return out
}

func (f *fakeRunner) run(ctx context.Context, s jobs.LeaderOnly) (jobs.RunResult, error) {
	env := map[string]string{}
	for _, kv := range s.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	slot, err := time.Parse(time.RFC3339Nano, env[jobs.EnvScheduledTime])
	if err != nil {
		return jobs.RunResult{}, fmt.Errorf("fake runner: %s: %w", jobs.EnvScheduledTime, err)
	}
	r := fakeRun{instance: f.instance, job: env[jobs.EnvJob], slot: slot, token: s.Token, deadline: s.Deadline, start: time.Now()}
	res := jobs.RunResult{Outcome: jobs.Outcome{Started: r.start}}
	timer := time.NewTimer(f.last[r.job])
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
		time.Sleep(f.stopDelay)
		r.stopped = true
		res.Stopped, res.ExitCode, res.Signal = jobs.StoppedLeadership, -1, "SIGTERM"
	}
	r.end = time.Now()
	res.Ended = r.end
	f.mu.Lock()
	*f.runs = append(*f.runs, r)
	f.mu.Unlock()
	return res, nil
}

func (f *fakeRunner) all() []fakeRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(*f.runs)
	slices.SortFunc(out, func(a, b fakeRun) int { return a.slot.Compare(b.slot) })
	return out
}

// leader runs a scheduler for one leadership in the background; stop ends
// the leadership and returns once Run has returned.
type leader struct {
	cancel context.CancelFunc
	done   chan error
}

func lead(t *testing.T, s *jobs.Scheduler, token uint64) *leader {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	l := &leader{cancel: cancel, done: make(chan error, 1)}
	deadline := time.Now().Add(10 * time.Second)
	go func() { l.done <- s.Run(ctx, jobs.Leadership{Token: token, Deadline: deadline}) }()
	t.Cleanup(func() { l.cancel(); <-l.done })
	return l
}

func (l *leader) stop(t *testing.T) {
	t.Helper()
	l.cancel()
	if err := <-l.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	l.done <- nil // for the cleanup
}

func newScheduler(t *testing.T, ledger jobs.Ledger, r *fakeRunner, js ...jobs.ScheduledJob) *jobs.Scheduler {
	t.Helper()
	s, err := jobs.NewScheduler(jobs.SchedulerConfig{
		Jobs: js, Ledger: ledger, Instance: r.instance, Grace: time.Second, Env: testEnv, Runner: r.run,
	})
	if err != nil {
		t.Fatalf("NewScheduler: %v", err)
	}
	return s
}

// at returns the synctest epoch (2000-01-01T00:00:00Z) plus d.
func at(d time.Duration) time.Time { return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(d) }

// sleepUntil sleeps until the bubble's clock reads t.
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

func slotsOf(runs []fakeRun, instance string) []int {
	var out []int
	for _, r := range runs {
		if instance == "" || r.instance == instance {
			out = append(out, int(r.slot.Sub(at(0))/time.Second))
		}
	}
	return out
}

var tick = jobs.ScheduledJob{Name: "tick", Schedule: "@every 1s", Command: []string{"true"}}

func TestScheduleFailOver(t *testing.T) {
	t.Run("each slot starts once across a fail-over; the latest missed slot runs once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ledger := &jobstest.Ledger{}
			j := tick
			j.Missed, j.MissedWindow = jobs.MissedRunOnce, 5*time.Second
			rs := newRunners(map[string]time.Duration{"tick": 700 * time.Millisecond}, "i-a", "i-b")
			rs["i-a"].stopDelay = 200 * time.Millisecond
			a, b := newScheduler(t, ledger, rs["i-a"], j), newScheduler(t, ledger, rs["i-b"], j)

			la := lead(t, a, 1) // at 0: slot 0 is the latest missed slot
			sleepUntil(at(5500 * time.Millisecond))
			la.stop(t) // slot 5's run is stopped
			if now := time.Now(); !now.Equal(at(5700 * time.Millisecond)) {
				t.Errorf("A's Run returned at %s; want after its run's stop, at 5.7 s", now.Format("05.000"))
			}
			sleepUntil(at(7200 * time.Millisecond))
			lb := lead(t, b, 2) // slot 6 is missed; slot 7, 0.2 s old, runs once
			sleepUntil(at(10500 * time.Millisecond))
			lb.stop(t)

			runs := rs["i-a"].all()
			if got, want := fmt.Sprint(slotsOf(runs, "i-a")), "[0 1 2 3 4 5]"; got != want {
				t.Errorf("A ran slots %s; want %s", got, want)
			}
			if got, want := fmt.Sprint(slotsOf(runs, "i-b")), "[7 8 9 10]"; got != want {
				t.Errorf("B ran slots %s; want %s", got, want)
			}
			for _, r := range runs {
				want := r.slot
				if r.instance == "i-b" && r.slot.Equal(at(7*time.Second)) {
					want = at(7200 * time.Millisecond) // taken over then
				}
				if !r.start.Equal(want) {
					t.Errorf("%s's run of slot %s started at %s; want %s", r.instance, r.slot.Format("05"), r.start.Format("05.000"), want.Format("05.000"))
				}
				if r.token != map[string]uint64{"i-a": 1, "i-b": 2}[r.instance] {
					t.Errorf("%s ran with token %d", r.instance, r.token)
				}
			}
			recs := ledger.Records("tick")
			if len(recs) != 10 {
				t.Fatalf("ledger has %d runs; want 10 (slots 0-5 and 7-10)", len(recs))
			}
			for _, r := range recs {
				want := "exit 0"
				if s := r.Slot; s.Equal(at(5*time.Second)) || s.Equal(at(10*time.Second)) {
					want = "stopped (leadership lost): signal SIGTERM"
				}
				if r.Outcome != want {
					t.Errorf("slot %s: outcome %q; want %q", r.Slot.Format("05"), r.Outcome, want)
				}
			}
		})
	})

	t.Run("a deposed leader that has not noticed claims nothing after the new leader's first claim", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ledger := &jobstest.Ledger{}
			j := tick
			j.Missed, j.MissedWindow = jobs.MissedRunOnce, 5*time.Second
			rs := newRunners(map[string]time.Duration{"tick": 300 * time.Millisecond}, "i-a", "i-b")
			a, b := newScheduler(t, ledger, rs["i-a"], j), newScheduler(t, ledger, rs["i-b"], j)

			la := lead(t, a, 1)
			sleepUntil(at(3200 * time.Millisecond))
			lb := lead(t, b, 2) // A still believes it leads
			sleepUntil(at(6500 * time.Millisecond))
			la.stop(t)
			lb.stop(t)

			runs := rs["i-a"].all()
			if got, want := fmt.Sprint(slotsOf(runs, "")), "[0 1 2 3 4 5 6]"; got != want {
				t.Errorf("slots run %s; want %s, each once", got, want)
			}
			if got, want := fmt.Sprint(slotsOf(runs, "i-a")), "[0 1 2 3]"; got != want {
				t.Errorf("A ran slots %s; want %s (none after B's claim at 3.2 s)", got, want)
			}
			fenced := 0
			for _, c := range ledger.Calls() {
				if c.Op == jobstest.OpClaim && c.Instance == "i-a" && c.Err != nil {
					fenced++
				}
			}
			if fenced != 3 {
				t.Errorf("A's claims refused: %d; want 3 (slots 4, 5, 6)", fenced)
			}
		})
	})

	t.Run("a deposed leader's run in progress is stopped at its first fenced claim", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ledger := &jobstest.Ledger{}
			rs := newRunners(map[string]time.Duration{"tick": 10 * time.Second}, "i-a", "i-b")
			jb := tick
			jb.Missed, jb.MissedWindow = jobs.MissedRunOnce, 5*time.Second
			a, b := newScheduler(t, ledger, rs["i-a"], tick), newScheduler(t, ledger, rs["i-b"], jb)
			la := lead(t, a, 1) // runs slot 1, skips 2 and 3
			sleepUntil(at(3200 * time.Millisecond))
			lb := lead(t, b, 2) // claims slot 3 in vain, but with token 2
			sleepUntil(at(4500 * time.Millisecond))
			var aRun *fakeRun
			for _, r := range rs["i-a"].all() {
				if r.instance == "i-a" {
					aRun = &r
				}
			}
			if aRun == nil || !aRun.stopped || !aRun.end.Equal(at(4*time.Second)) {
				t.Errorf("A's run %+v; want it stopped at 4 s, while A still believes it leads", aRun)
			}
			la.stop(t)
			lb.stop(t)
			recs := ledger.Records("tick")
			if len(recs) == 0 || recs[0].Outcome != "stopped ("+string(jobs.StoppedFenced)+"): signal SIGTERM" {
				t.Errorf("slot 1's record %+v; want stopped (%s)", recs, jobs.StoppedFenced)
			}
			if got, want := fmt.Sprint(slotsOf(rs["i-b"].all(), "i-b")), "[4]"; got != want {
				t.Errorf("B ran slots %s; want %s", got, want)
			}
		})
	})

	t.Run("missed slots are skipped by default and outside the window", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			missed string
			window time.Duration
		}{
			{"policy skip", "", 0},
			{"older than the window", jobs.MissedRunOnce, 100 * time.Millisecond},
		} {
			t.Run(tc.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ledger := &jobstest.Ledger{}
					j := tick
					j.Missed, j.MissedWindow = tc.missed, tc.window
					rs := newRunners(map[string]time.Duration{"tick": 100 * time.Millisecond}, "i-b")
					sleepUntil(at(7200 * time.Millisecond))
					l := lead(t, newScheduler(t, ledger, rs["i-b"], j), 2)
					sleepUntil(at(9500 * time.Millisecond))
					l.stop(t)
					if got, want := fmt.Sprint(slotsOf(rs["i-b"].all(), "")), "[8 9]"; got != want {
						t.Errorf("slots run %s; want %s", got, want)
					}
				})
			})
		}
	})
}

func TestScheduleOverlap(t *testing.T) {
	t.Run("skip leaves the previous run alone and records the skipped slots", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ledger := &jobstest.Ledger{}
			rs := newRunners(map[string]time.Duration{"tick": 2500 * time.Millisecond}, "i-a")
			l := lead(t, newScheduler(t, ledger, rs["i-a"], tick), 1)
			sleepUntil(at(6400 * time.Millisecond))
			l.stop(t)
			runs := rs["i-a"].all()
			if got, want := fmt.Sprint(slotsOf(runs, "")), "[1 4]"; got != want {
				t.Errorf("slots run %s; want %s", got, want)
			}
			if len(runs) == 2 && (runs[0].stopped || !runs[1].stopped) {
				t.Errorf("runs %+v; want the first to end on its own, the second stopped with the leadership", runs)
			}
			var outcomes []string
			for _, r := range ledger.Records("tick") {
				outcomes = append(outcomes, fmt.Sprintf("%s=%s", r.Slot.Format("05"), r.Outcome))
			}
			want := []string{"01=exit 0", "02=" + jobs.OutcomeSkippedOverlap, "03=" + jobs.OutcomeSkippedOverlap,
				"04=stopped (leadership lost): signal SIGTERM", "05=" + jobs.OutcomeSkippedOverlap, "06=" + jobs.OutcomeSkippedOverlap}
			if !slices.Equal(outcomes, want) {
				t.Errorf("ledger:\n%s\nwant:\n%s", strings.Join(outcomes, "\n"), strings.Join(want, "\n"))
			}
		})
	})

	t.Run("stop ends the previous run before the next starts", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ledger := &jobstest.Ledger{}
			j := tick
			j.Overlap = jobs.OverlapStop
			rs := newRunners(map[string]time.Duration{"tick": 2500 * time.Millisecond}, "i-a")
			rs["i-a"].stopDelay = 300 * time.Millisecond
			l := lead(t, newScheduler(t, ledger, rs["i-a"], j), 1)
			sleepUntil(at(3500 * time.Millisecond))
			l.stop(t)
			runs := rs["i-a"].all()
			if got, want := fmt.Sprint(slotsOf(runs, "")), "[1 2 3]"; got != want {
				t.Fatalf("slots run %s; want %s", got, want)
			}
			for i := 1; i < len(runs); i++ {
				if runs[i].start.Before(runs[i-1].end) {
					t.Errorf("slot %d started at %s, before slot %d ended at %s", i+1, runs[i].start.Format("05.000"), i, runs[i-1].end.Format("05.000"))
				}
				if want := runs[i].slot.Add(300 * time.Millisecond); !runs[i].start.Equal(want) {
					t.Errorf("slot %d started at %s; want %s, once the previous run stopped", i+1, runs[i].start.Format("05.000"), want.Format("05.000"))
				}
			}
			var outcomes []string
			for _, r := range ledger.Records("tick") {
				outcomes = append(outcomes, r.Outcome)
			}
			stopped := "stopped (" + string(jobs.StoppedOverlap) + "): signal SIGTERM"
			if want := []string{stopped, stopped, "stopped (leadership lost): signal SIGTERM"}; !slices.Equal(outcomes, want) {
				t.Errorf("outcomes %q; want %q", outcomes, want)
			}
		})
	})
}

func TestScheduleTimeZones(t *testing.T) {
	for _, tc := range []struct {
		name     string
		schedule string
		zone     string
		want     time.Time
	}{
		// 2000-01-01: Paris is at UTC+1, New York at UTC-5.
		{"CRON_TZ prefix", "CRON_TZ=Europe/Paris 30 2 * * *", "", at(90 * time.Minute)},
		{"time_zone field, seconds field", "15 30 2 * * *", "Europe/Paris", at(90*time.Minute + 15*time.Second)},
		{"UTC by default", "30 2 * * *", "", at(150 * time.Minute)},
		{"descriptor in a zone", "@daily", "America/New_York", at(5 * time.Hour)},
		{"@every counts from the Unix epoch", "@every 7s", "", at(2 * time.Second)}, // 946684800 = 7·135240685 + 5
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ledger := &jobstest.Ledger{}
				rs := newRunners(map[string]time.Duration{"daily": time.Second}, "i-a")
				j := jobs.ScheduledJob{Name: "daily", Schedule: tc.schedule, TimeZone: tc.zone, Command: []string{"true"}}
				l := lead(t, newScheduler(t, ledger, rs["i-a"], j), 1)
				sleepUntil(tc.want.Add(500 * time.Millisecond))
				l.stop(t)
				runs := rs["i-a"].all()
				if len(runs) != 1 || !runs[0].slot.Equal(tc.want) || !runs[0].start.Equal(tc.want) {
					t.Errorf("runs %+v; want one, of slot %s, started then", runs, tc.want)
				}
			})
		})
	}
}

func TestScheduleLedgerTrouble(t *testing.T) {
	t.Run("an unreachable ledger costs the slot, not the scheduler", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ledger := &jobstest.Ledger{Fail: func(op jobstest.Op, _ string, slot time.Time) error {
				if op == jobstest.OpClaim && slot.Equal(at(2*time.Second)) {
					return syscall.ECONNREFUSED
				}
				return nil
			}}
			rs := newRunners(map[string]time.Duration{"tick": 100 * time.Millisecond}, "i-a")
			l := lead(t, newScheduler(t, ledger, rs["i-a"], tick), 1)
			sleepUntil(at(3500 * time.Millisecond))
			l.stop(t)
			if got, want := fmt.Sprint(slotsOf(rs["i-a"].all(), "")), "[1 3]"; got != want {
				t.Errorf("slots run %s; want %s", got, want)
			}
		})
	})

	t.Run("each run gets the lease's current deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rs := newRunners(map[string]time.Duration{"tick": 100 * time.Millisecond}, "i-a")
			s := newScheduler(t, &jobstest.Ledger{}, rs["i-a"], tick)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				done <- s.Run(ctx, jobs.Leadership{Token: 1, Deadline: at(10 * time.Second), LeaseEnd: func() time.Time { return time.Now().Add(8 * time.Second) }})
			}()
			sleepUntil(at(2500 * time.Millisecond))
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for _, r := range rs["i-a"].all() {
				if want := r.slot.Add(8 * time.Second); !r.deadline.Equal(want) {
					t.Errorf("slot %s ran with deadline %s; want %s", r.slot.Format("05"), r.deadline.Format("05"), want.Format("05"))
				}
			}
		})
	})

	t.Run("a second Run at once is refused", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rs := newRunners(nil, "i-a")
			s := newScheduler(t, &jobstest.Ledger{}, rs["i-a"], tick)
			l := lead(t, s, 1)
			synctest.Wait()
			if err := s.Run(t.Context(), jobs.Leadership{Token: 2, Deadline: at(time.Minute)}); err == nil {
				t.Error("second Run: no error")
			}
			l.stop(t)
		})
	})
}

func TestScheduledJobValidate(t *testing.T) {
	good := jobs.ScheduledJob{Name: "report", Schedule: "*/5 * * * *", Command: []string{"/bin/true"}}
	for _, tc := range []struct {
		name   string
		change func(j *jobs.ScheduledJob)
		want   string // in the error; empty: valid
	}{
		{"valid", func(*jobs.ScheduledJob) {}, ""},
		{"seconds field", func(j *jobs.ScheduledJob) { j.Schedule = "*/10 * * * * *" }, ""},
		{"descriptor", func(j *jobs.ScheduledJob) { j.Schedule = "@hourly" }, ""},
		{"every", func(j *jobs.ScheduledJob) { j.Schedule = "@every 1m30s" }, ""},
		{"all policies", func(j *jobs.ScheduledJob) {
			j.Overlap, j.Missed, j.MissedWindow, j.Timeout = jobs.OverlapStop, jobs.MissedRunOnce, time.Minute, time.Hour
		}, ""},
		{"zone", func(j *jobs.ScheduledJob) { j.TimeZone = "Asia/Tokyo" }, ""},
		{"empty name", func(j *jobs.ScheduledJob) { j.Name = "" }, "name:"},
		{"name with a separator", func(j *jobs.ScheduledJob) { j.Name = "a#b" }, "name:"},
		{"empty schedule", func(j *jobs.ScheduledJob) { j.Schedule = "" }, "schedule: empty"},
		{"bad schedule", func(j *jobs.ScheduledJob) { j.Schedule = "61 * * * *" }, "schedule:"},
		{"seven fields", func(j *jobs.ScheduledJob) { j.Schedule = "0 0 0 * * * *" }, "schedule:"},
		{"never fires", func(j *jobs.ScheduledJob) { j.Schedule = "0 0 30 2 *" }, "never fires"},
		{"sub-second every", func(j *jobs.ScheduledJob) { j.Schedule = "@every 500ms" }, "whole seconds"},
		{"unknown zone", func(j *jobs.ScheduledJob) { j.TimeZone = "Mars/Olympus" }, "time_zone:"},
		{"local zone", func(j *jobs.ScheduledJob) { j.TimeZone = "Local" }, "time_zone:"},
		{"unknown CRON_TZ", func(j *jobs.ScheduledJob) { j.Schedule = "CRON_TZ=Mars/Olympus * * * * *" }, "unknown time zone"},
		{"zone twice", func(j *jobs.ScheduledJob) { j.Schedule, j.TimeZone = "CRON_TZ=UTC * * * * *", "UTC" }, "keep one"},
		{"no command", func(j *jobs.ScheduledJob) { j.Command = nil }, "command: empty"},
		{"bad env", func(j *jobs.ScheduledJob) { j.Env = []string{"NOEQUALS"} }, "env:"},
		{"negative timeout", func(j *jobs.ScheduledJob) { j.Timeout = -time.Second }, "timeout:"},
		{"bad overlap", func(j *jobs.ScheduledJob) { j.Overlap = "queue" }, "overlap:"},
		{"bad missed", func(j *jobs.ScheduledJob) { j.Missed = "all" }, "missed:"},
		{"run_once without window", func(j *jobs.ScheduledJob) { j.Missed = jobs.MissedRunOnce }, "missed_window:"},
		{"window without run_once", func(j *jobs.ScheduledJob) { j.MissedWindow = time.Minute }, "missed_window:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := good
			tc.change(&j)
			err := j.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate = %v; want an error with %q", err, tc.want)
			}
		})
	}

	t.Run("scheduler config", func(t *testing.T) {
		err := jobs.SchedulerConfig{Jobs: []jobs.ScheduledJob{good, good, {Name: "x"}}}.Validate()
		for _, want := range []string{"ledger: required", "instance: required", "grace:", `jobs[1]: name: "report" is also the name of jobs[0]`, `jobs[2]: job "x": schedule: empty`} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Validate = %v; want an error with %q", err, want)
			}
		}
	})
}
