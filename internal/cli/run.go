package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/jobs"
	"github.com/lifeguardhq/lifeguard/internal/proc"
)

// watchPoll is the long-poll bound of `run --leader-only`'s watch of the
// agent: each answer comes within it, or at once when leadership changes,
// so that the agent's silence is noticed within it too.
const watchPoll = time.Second

// runConfig is what `lifeguard run` was asked.
type runConfig struct {
	leaderOnly bool
	wait       bool
	argv       []string
}

func (c runConfig) validate() error {
	var errs []error
	if !c.leaderOnly {
		errs = append(errs, errors.New("--leader-only: required (it is the only mode of lifeguard run)"))
	}
	if len(c.argv) == 0 || c.argv[0] == "" {
		errs = append(errs, errors.New("no command: give it after --, such as lifeguard run --leader-only -- /usr/local/bin/report"))
	}
	return errors.Join(errs...)
}

func newRunCmd(stdout, stderr io.Writer) *cobra.Command {
	var af agentFlags
	var rc runConfig
	cmd := &cobra.Command{
		Use:   "run --leader-only [--wait] -- CMD [ARGS...]",
		Short: "Run a command only on the group's leader, stopped as soon as leadership is lost",
		Long: `lifeguard run --leader-only asks the local agent whether this instance leads
its group. If it does not, it exits 0 without running anything (with --wait it
waits until it leads). If it does, it runs CMD (without a shell) in a process
group of its own, with LIFEGUARD_FENCING_TOKEN and LIFEGUARD_LEASE_DEADLINE in
its environment, and watches the agent: when the agent says leadership ended,
or cannot be reached for longer than the lease margin, or the lease's end comes
without a renewal, the command's group gets SIGTERM, then SIGKILL after
leader.stop_grace. See docs/leader.md.

The exit status is the command's; a command killed by a signal exits 128 + the
signal's number, as in a shell. When the agent cannot tell whether this
instance leads, nothing runs and the exit status is 1.`,
		Example: `  lifeguard run --leader-only -- /usr/local/bin/nightly-report --since yesterday
  */5 * * * * lifeguard run --leader-only -- sh -c 'exec /usr/local/bin/sync >>/var/log/sync.log 2>&1'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			rc.argv = args
			if err := rc.validate(); err != nil {
				return usageError(err)
			}
			addr, _, err := af.address(cmd)
			if err != nil {
				return err
			}
			return runLeaderOnly(cmd.Context(), newAgentClient(addr), rc, stdout, stderr)
		},
	}
	af.register(cmd)
	cmd.Flags().BoolVar(&rc.leaderOnly, "leader-only", false, "run only while this instance leads its group")
	cmd.Flags().BoolVar(&rc.wait, "wait", false, "wait until this instance leads instead of exiting 0")
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// runLeaderOnly runs rc.argv under the leadership the agent reports.
func runLeaderOnly(ctx context.Context, c *agentClient, rc runConfig, stdout, stderr io.Writer) error {
	d, err := c.leader(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot tell whether this instance leads; not running %s: %w", rc.argv[0], err)
	}
	for !d.Leading {
		if !rc.wait {
			fmt.Fprintf(stderr, "lifeguard: %s does not lead (holder %s); not running %s\n", d.Instance, orNone(d.Holder), rc.argv[0])
			return nil
		}
		next, err := c.leader(ctx, url.Values{"wait": {"30s"}, "leading": {"false"}, "token": {strconv.FormatUint(d.Token, 10)}})
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			// The agent may be restarting: keep waiting, at a calm pace.
			t := time.NewTimer(watchPoll)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			continue
		}
		d = next
	}
	lctx, lost := context.WithCancelCause(ctx)
	defer lost(nil)
	watched := make(chan struct{})
	go func() { // waited for below, after the command
		defer close(watched)
		watchLeadership(lctx, c, d, lost)
	}()
	res, err := jobs.RunLeaderOnly(lctx, jobs.LeaderOnly{
		Argv: rc.argv, Stdout: stdout, Stderr: stderr,
		Token: d.Token, Deadline: d.LeaseEnd, Grace: time.Duration(d.StopGrace),
	})
	lost(nil)
	<-watched
	if err != nil {
		return err
	}
	if res.Stopped != jobs.NotStopped {
		fmt.Fprintf(stderr, "lifeguard: %s was stopped: %s (%v)\n", rc.argv[0], res.Stopped, context.Cause(lctx))
	}
	code := res.ExitCode
	if res.Signal != "" {
		code = 128 + signalNumber(res.Signal)
	}
	if code == 0 {
		return nil
	}
	return &ExitError{Code: code}
}

// watchLeadership long-polls the agent while the command runs and cancels
// lost when leadership ends: the agent says it does not lead or the token
// changed, it has not answered for longer than the margin, or the lease's
// end as last reported has come (the agent would have given up by then
// without a renewal).
func watchLeadership(ctx context.Context, c *agentClient, d agent.LeaderDoc, lost context.CancelCauseFunc) {
	token := strconv.FormatUint(d.Token, 10)
	heard, end := time.Now(), d.LeaseEnd
	margin := time.Duration(d.Margin)
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, watchPoll+margin/2)
		next, err := c.leader(pctx, url.Values{"wait": {watchPoll.String()}, "leading": {"true"}, "token": {token}})
		cancel()
		now := time.Now()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && (!next.Leading || next.Token != d.Token):
			lost(fmt.Errorf("leadership ended (holder %s, token %d)", orNone(next.Holder), next.Token))
			return
		case err == nil:
			heard, end = now, next.LeaseEnd
			continue
		case now.Sub(heard) > margin:
			lost(fmt.Errorf("the agent has not answered for %s, longer than the margin: %w", now.Sub(heard).Round(time.Millisecond), err))
			return
		case !end.IsZero() && !now.Before(end):
			lost(fmt.Errorf("the lease's end (%s) came without the agent confirming a renewal: %w", end.Format(time.RFC3339Nano), err))
			return
		}
		t := time.NewTimer(min(watchPoll/4, time.Until(end)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// signalNumber returns the number of the signal named name ("SIGTERM").
func signalNumber(name string) int {
	for s := syscall.Signal(1); s < 65; s++ {
		if proc.SignalName(s) == name {
			return int(s)
		}
	}
	return 0
}
