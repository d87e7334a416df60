package jobs_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/jobs"
	"github.com/lifeguardhq/lifeguard/internal/jobs/jobstest"
)

func leaderOnly(argv ...string) jobs.LeaderOnly {
	return jobs.LeaderOnly{
		Argv: argv, Env: testEnv, Token: 42,
		Deadline: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), Grace: 5 * time.Second,
	}
}

// pidPipe returns a pipe whose write end a command gets as its standard
// output, and a function that reads the next PID written to it.
func pidPipe(t *testing.T) (*os.File, func() int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	lines := bufio.NewScanner(r)
	return w, func() int {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("no PID from the command: %v", lines.Err())
		}
		pid, err := strconv.Atoi(strings.TrimSpace(lines.Text()))
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
}

func TestRunLeaderOnly(t *testing.T) {
	t.Run("the command gets the token and the deadline and its exit status is returned", func(t *testing.T) {
		var out bytes.Buffer
		s := leaderOnly(sh(`echo "$LIFEGUARD_FENCING_TOKEN $LIFEGUARD_LEASE_DEADLINE $EXTRA"; exit 3`)...)
		s.Env = append(s.Env, "EXTRA=kept", jobs.EnvFencingToken+"=1") // the real token wins
		s.Stdout = &out
		res, err := jobs.RunLeaderOnly(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := out.String(), "42 2030-01-02T03:04:05Z kept\n"; got != want {
			t.Errorf("output %q; want %q", got, want)
		}
		if res.ExitCode != 3 || res.Signal != "" || res.Stopped != jobs.NotStopped || res.String() != "exit 3" {
			t.Errorf("result %+v (%s); want exit 3", res, res)
		}
		if res.Started.IsZero() || res.Ended.Before(res.Started) {
			t.Errorf("started %s, ended %s", res.Started, res.Ended)
		}
	})

	t.Run("losing leadership stops the group, a grandchild ignoring SIGTERM included, before returning", func(t *testing.T) {
		w, nextPID := pidPipe(t)
		// The grandchild ignores SIGTERM: only the group's SIGKILL, once the
		// command has died of SIGTERM, ends it.
		s := leaderOnly(sh(`sh -c 'trap "" TERM; echo $$; exec sleep 1000' & wait`)...)
		s.Stdout = w
		ctx, cancel := context.WithCancel(t.Context())
		type ran struct {
			res jobs.RunResult
			err error
		}
		done := make(chan ran, 1)
		go func() {
			res, err := jobs.RunLeaderOnly(ctx, s)
			done <- ran{res, err}
		}()
		grandchild := nextPID()
		if gone(grandchild) {
			t.Fatal("grandchild gone before leadership was lost")
		}
		cancel()
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		if !gone(grandchild) {
			t.Errorf("grandchild %d still runs after RunLeaderOnly returned", grandchild)
		}
		if r.res.Stopped != jobs.StoppedLeadership || r.res.Signal != "SIGTERM" || r.res.String() != "stopped (leadership lost): signal SIGTERM" {
			t.Errorf("result %+v (%s); want stopped (leadership lost) by SIGTERM", r.res, r.res)
		}
		if d := r.res.Ended.Sub(r.res.Started); d >= s.Grace {
			t.Errorf("stopping took %s; SIGTERM should have ended the command within its grace %s", d, s.Grace)
		}
	})

	t.Run("a command ignoring SIGTERM is killed after the grace", func(t *testing.T) {
		w, nextPID := pidPipe(t)
		s := leaderOnly(sh(`trap "" TERM; echo $$; while :; do sleep 0.05; done`)...)
		s.Stdout, s.Grace = w, 300*time.Millisecond
		ctx, cancel := context.WithCancel(t.Context())
		var res jobs.RunResult
		var err error
		var wg sync.WaitGroup
		wg.Go(func() { res, err = jobs.RunLeaderOnly(ctx, s) })
		pid := nextPID()
		stopped := time.Now()
		cancel()
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(stopped); took < s.Grace {
			t.Errorf("returned %s after the loss; want at least the grace %s", took, s.Grace)
		}
		if res.Signal != "SIGKILL" || res.Stopped != jobs.StoppedLeadership || !gone(pid) {
			t.Errorf("result %+v, command gone: %v; want killed by SIGKILL", res, gone(pid))
		}
	})

	t.Run("the timeout stops the command", func(t *testing.T) {
		s := leaderOnly("sleep", "1000")
		s.Timeout = 100 * time.Millisecond
		res, err := jobs.RunLeaderOnly(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		if !res.TimedOut || res.Stopped != jobs.StoppedTimeout || res.Signal != "SIGTERM" {
			t.Errorf("result %+v; want timed out, stopped by SIGTERM", res)
		}
	})

	t.Run("nothing starts once leadership has ended", func(t *testing.T) {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := jobs.RunLeaderOnly(ctx, leaderOnly("touch", dir+"/ran"))
		if !errors.Is(err, jobs.ErrNotLeading) {
			t.Errorf("err = %v; want ErrNotLeading", err)
		}
		if _, err := os.Stat(dir + "/ran"); err == nil {
			t.Error("the command ran")
		}
	})

	t.Run("bad specs are refused, naming the field", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			change func(s *jobs.LeaderOnly)
			want   string
		}{
			{"no command", func(s *jobs.LeaderOnly) { s.Argv = nil }, "command: empty"},
			{"no token", func(s *jobs.LeaderOnly) { s.Token = 0 }, "fencing token:"},
			{"no deadline", func(s *jobs.LeaderOnly) { s.Deadline = time.Time{} }, "lease deadline:"},
			{"no grace", func(s *jobs.LeaderOnly) { s.Grace = 0 }, "grace:"},
			{"negative timeout", func(s *jobs.LeaderOnly) { s.Timeout = -1 }, "timeout:"},
			{"bad environment", func(s *jobs.LeaderOnly) { s.Env = []string{"=x"} }, "environment entry"},
			{"missing program", func(s *jobs.LeaderOnly) { s.Argv = []string{"no-such-program-here"} }, exec.ErrNotFound.Error()},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := leaderOnly("true")
				tc.change(&s)
				_, err := jobs.RunLeaderOnly(t.Context(), s)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("err = %v; want one with %q", err, tc.want)
				}
			})
		}
	})
}

// notifyLedger tells, after each Finish, that one took place.
type notifyLedger struct {
	*jobstest.Ledger
	finished chan struct{}
}

func (n notifyLedger) Finish(ctx context.Context, job string, slot time.Time, outcome string, ended time.Time) error {
	err := n.Ledger.Finish(ctx, job, slot, outcome, ended)
	n.finished <- struct{}{}
	return err
}

// TestScheduleProcesses runs a scheduled job as real processes, in real
// time, for two slots.
func TestScheduleProcesses(t *testing.T) {
	dir := t.TempDir()
	ledger := notifyLedger{&jobstest.Ledger{}, make(chan struct{}, 16)}
	s, err := jobs.NewScheduler(jobs.SchedulerConfig{
		Jobs: []jobs.ScheduledJob{{
			Name: "stamp", Schedule: "* * * * * *", Env: []string{"OUT=" + dir + "/runs"},
			Command: sh(`echo "$LIFEGUARD_JOB $LIFEGUARD_SCHEDULED_TIME $LIFEGUARD_FENCING_TOKEN" >> "$OUT"`),
		}},
		Ledger: ledger, Instance: "i-a", Grace: time.Second, Env: testEnv,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Run(ctx, jobs.Leadership{Token: 9, Deadline: time.Now().Add(time.Minute)}); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	for range 2 {
		select {
		case <-ledger.finished:
		case <-time.After(waitLimit):
			t.Fatal("no run finished")
		}
	}
	cancel()
	wg.Wait()
	recs := ledger.Records("stamp")
	out, err := os.ReadFile(dir + "/runs")
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, r := range recs {
		if r.Outcome != "exit 0" || r.Token != 9 || r.Instance != "i-a" {
			t.Errorf("record %+v; want exit 0 by i-a with token 9", r)
		}
		want.WriteString("stamp " + r.Slot.Format(time.RFC3339) + " 9\n")
	}
	if len(recs) < 2 || string(out) != want.String() {
		t.Errorf("runs recorded by the command:\n%s\nin the ledger:\n%s", out, want.String())
	}
}
