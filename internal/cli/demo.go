package cli

import (
	"bufio"
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// demoUserData starts a pretend service that needs a few seconds to warm
// up, then runs the agent: it holds the launch until the service is
// ready, and runs a drain and a log shipment before termination.
func demoUserData(bin string) string {
	return `#!/bin/sh
# A service that takes three seconds to warm up.
(sleep 3; echo "service warmed up"; touch ready) &
cat > agent.yaml <<YAML
imds:
  poll_interval: 1s
launch:
  probes:
    - name: service-ready
      command:
        argv: ["test", "-f", "$PWD/ready"]
        timeout: 2s
  consecutive_passes: 2
  interval: 1s
  timeout: 2m
terminate:
  steps:
    - name: drain
      command: ["sh", "-c", "echo draining connections; sleep 3; echo drained"]
      timeout: 1m
    - name: ship-logs
      command: ["sh", "-c", "echo shipping logs; sleep 2; echo shipped"]
      timeout: 1m
paths:
  journal_dir: $PWD/journal
status:
  listen: 127.0.0.1:0
YAML
exec ` + bin + ` agent --config agent.yaml
`
}

func newDemoCmd(stdout, stderr io.Writer) *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch lifeguard hold a launch until ready and a termination until drained, in a local sandbox",
		Long: `lifeguard demo starts the sandbox in this process, creates an Auto Scaling
group of two instances whose user data runs lifeguard agent, scales it out and
in, and prints what happens: the launch held in Pending:Wait until the service
is ready, the terminate plan's steps, heartbeats and completions. It needs
nothing but this binary and leaves no process behind.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), stdout, keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the sandbox running afterwards and print how to reach it")
	return cmd
}

// demo tracks the scenario for the timeline and the summary.
type demo struct {
	out   io.Writer
	start time.Time
	mu    sync.Mutex
	first map[string]map[string]time.Time // instance → state → first seen
	beats map[string]int                  // instance/hook → heartbeats
	ended map[string]string               // instance/hook → result
	// pending holds the timeline's lines until they are old enough to be
	// printed in time order (flush); n orders lines of the same time.
	pending []demoLine
	n       int64
}

// demoLine is a line of the timeline and when it happened.
type demoLine struct {
	at   time.Time
	n    int64
	text string
}

// reorderWindow is how long a line waits before it is printed: the
// sandbox's events and the instances' consoles are read by different
// goroutines, the consoles every consoleSweep, so a line may arrive after
// a later one.
const (
	reorderWindow = 300 * time.Millisecond
	consoleSweep  = 100 * time.Millisecond
)

// add queues a timeline line for what happened at at.
func (d *demo) add(at time.Time, format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	d.pending = append(d.pending, demoLine{at: at, n: d.n, text: fmt.Sprintf(format, args...)})
}

// printf queues a line of the demo's own, happening now.
func (d *demo) printf(format string, args ...any) { d.add(time.Now(), format, args...) }

// flush prints, in time order, the queued lines from before before; every
// line when before is zero.
func (d *demo) flush(before time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	slices.SortFunc(d.pending, func(a, b demoLine) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.n, b.n)
	})
	i := 0
	for ; i < len(d.pending) && (before.IsZero() || d.pending[i].at.Before(before)); i++ {
		l := d.pending[i]
		fmt.Fprintf(d.out, "%6.1fs  %s\n", max(0, l.at.Sub(d.start).Seconds()), l.text)
	}
	d.pending = d.pending[i:]
}

// printer prints the queued lines once they are reorderWindow old, until
// ctx ends.
func (d *demo) printer(ctx context.Context) {
	tick := time.NewTicker(consoleSweep)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			d.flush(time.Now().Add(-reorderWindow))
		}
	}
}

func runDemo(ctx context.Context, out io.Writer, keep bool) error {
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the lifeguard binary to run on instances: %w", err)
	}
	srv, err := sandbox.New(sandbox.Config{Listen: "127.0.0.1:0", RelaxLimits: true, StopGrace: 5 * time.Second})
	if err != nil {
		return err
	}
	endpoint, stop, err := srv.Start()
	if err != nil {
		return err
	}
	defer func() { _ = stop() }()

	d := &demo{out: out, start: time.Now(), first: map[string]map[string]time.Time{}, beats: map[string]int{}, ended: map[string]string{}}
	fmt.Fprintf(out, "lifeguard demo: a sandbox on %s; instances run `lifeguard agent` as their user data\n\n", endpoint)
	var wg sync.WaitGroup
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer func() { stopWatch(); wg.Wait() }()
	wg.Go(func() { d.timeline(watchCtx, srv.World()) })
	wg.Go(func() { d.consoles(watchCtx, srv) })
	wg.Go(func() { d.printer(watchCtx) })

	w := srv.World()
	if err := w.CreateLaunchConfiguration(world.LaunchConfiguration{
		Name: "demo", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro",
		UserData: base64.StdEncoding.EncodeToString([]byte(demoUserData(bin))),
	}); err != nil {
		return err
	}
	zero, two := 0, 2
	if err := w.CreateAutoScalingGroup(world.CreateGroupInput{
		Name: "demo", LaunchConfiguration: "demo", MinSize: &zero, MaxSize: &two, Desired: &zero,
		AvailabilityZones: []string{"us-east-1a", "us-east-1b"},
		Hooks: []world.Hook{
			{Name: "wait-until-ready", Transition: world.TransitionLaunching, HeartbeatTimeout: 30, DefaultResult: world.ResultAbandon},
			{Name: "drain-before-terminate", Transition: world.TransitionTerminating, HeartbeatTimeout: 4, DefaultResult: world.ResultContinue},
		},
	}); err != nil {
		return err
	}
	d.printf("group demo created with a launch hook (heartbeat timeout 30s) and a terminate hook (4s)")
	d.printf("scale out: desired capacity 0 → 2")
	if err := w.SetDesiredCapacity("demo", 2, false); err != nil {
		return err
	}
	if err := waitGroup(ctx, w, func(v world.GroupView) bool { return countState(v, world.StateInService) == 2 }); err != nil {
		return err
	}
	d.printf("both instances in service; scale in: desired capacity 2 → 0")
	if err := w.SetDesiredCapacity("demo", 0, false); err != nil {
		return err
	}
	if err := waitGroup(ctx, w, func(v world.GroupView) bool { return len(v.Members) == 0 }); err != nil {
		return err
	}
	stopWatch()
	wg.Wait()
	d.flush(time.Time{})
	d.summary(keep)
	if keep {
		fmt.Fprintf(out, "\nThe sandbox keeps running (Ctrl-C to stop). Try:\n  export AWS_ENDPOINT_URL=%s AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x\n  aws autoscaling describe-scaling-activities --auto-scaling-group-name demo --endpoint-url %s\n  aws autoscaling set-desired-capacity --auto-scaling-group-name demo --desired-capacity 1 --endpoint-url %s\n  lifeguard sandbox events --endpoint %s\n", endpoint, endpoint, endpoint, endpoint)
		<-ctx.Done()
	}
	return nil
}

func countState(v world.GroupView, state string) int {
	n := 0
	for _, m := range v.Members {
		if m.State == state {
			n++
		}
	}
	return n
}

// waitGroup waits, on the world's events, until the demo group satisfies ok.
func waitGroup(ctx context.Context, w *world.World, ok func(world.GroupView) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var seq int64
	for {
		views, err := w.Groups([]string{"demo"}, nil)
		if err != nil {
			return err
		}
		if len(views) == 1 && ok(views[0]) {
			return nil
		}
		evs, err := w.EventsAfter(ctx, seq)
		if err != nil {
			return fmt.Errorf("the demo did not reach its next state in time: %w", err)
		}
		seq = evs[len(evs)-1].Seq
	}
}

// timeline prints the group's state changes and lifecycle actions.
func (d *demo) timeline(ctx context.Context, w *world.World) {
	var seq int64
	for {
		evs, err := w.EventsAfter(ctx, seq)
		if err != nil {
			return
		}
		for _, e := range evs {
			seq = e.Seq
			short := e.Instance
			switch e.Kind {
			case world.EvInstanceLaunched:
				d.add(e.Time, "%s  launched", short)
			case world.EvInstanceState:
				if e.State == "" {
					continue
				}
				d.mu.Lock()
				if d.first[e.Instance] == nil {
					d.first[e.Instance] = map[string]time.Time{}
				}
				if _, seen := d.first[e.Instance][e.State]; !seen {
					d.first[e.Instance][e.State] = time.Now()
				}
				d.mu.Unlock()
				d.add(e.Time, "%s  → %s", short, e.State)
			case world.EvActionHeartbeat:
				d.mu.Lock()
				d.beats[e.Instance+"/"+e.Hook]++
				d.mu.Unlock()
				d.add(e.Time, "%s  heartbeat for %s", short, e.Hook)
			case world.EvActionCompleted:
				d.mu.Lock()
				d.ended[e.Instance+"/"+e.Hook] = e.Result
				d.mu.Unlock()
				d.add(e.Time, "%s  %s completed with %s (%s)", short, e.Hook, e.Result, e.Detail)
			}
		}
	}
}

// consoles prints the agent's step and probe lines from each instance's
// console output as they appear.
func (d *demo) consoles(ctx context.Context, srv *sandbox.Server) {
	offsets := map[string]int64{}
	sweep := func() {
		for _, in := range srv.Instances() {
			f, err := os.Open(filepath.Join(in.Dir, "console.log"))
			if err != nil {
				continue
			}
			if _, err := f.Seek(offsets[in.ID], io.SeekStart); err == nil {
				r := bufio.NewReader(f)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						break
					}
					offsets[in.ID] += int64(len(line))
					if msg, at, ok := interesting(line); ok {
						d.add(at, "%s  %s", in.ID, msg)
					}
				}
			}
			_ = f.Close()
		}
	}
	tick := time.NewTicker(consoleSweep)
	defer tick.Stop()
	for {
		sweep()
		select {
		case <-ctx.Done():
			sweep() // what the instances printed last
			return
		case <-tick.C:
		}
	}
}

// interesting picks the agent's log lines worth showing, shortens them and
// returns when they were logged (their time attribute; now for the user
// data's own lines).
func interesting(line string) (string, time.Time, bool) {
	line = strings.TrimSpace(line)
	if line == "service warmed up" {
		return "user data: " + line, time.Now(), true
	}
	attr := func(k string) string {
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, k+"="); ok {
				return strings.Trim(v, `"`)
			}
		}
		return ""
	}
	at, err := time.Parse(time.RFC3339Nano, attr("time"))
	if err != nil {
		at = time.Now()
	}
	switch {
	case strings.Contains(line, `msg="step started"`):
		return fmt.Sprintf("agent: step %s started", attr("step")), at, true
	case strings.Contains(line, `msg="step finished"`):
		return fmt.Sprintf("agent: step %s finished (exit %s)", attr("step"), attr("exit_code")), at, true
	}
	return "", time.Time{}, false
}

// summary prints what each instance went through; keep says whether the
// sandbox goes on running afterwards.
func (d *demo) summary(keep bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "\nsummary (%.1fs):\n", time.Since(d.start).Seconds())
	for id, states := range d.first {
		held := states[world.StatePendingProceed].Sub(states[world.StatePendingWait])
		drained := states[world.StateTerminatingProceed].Sub(states[world.StateTerminatingWait])
		fmt.Fprintf(d.out, "  %s  launch held %.1fs until ready → %s; termination held %.1fs for drain and ship-logs, %d heartbeat(s) → %s\n",
			id, held.Seconds(), orDefault(d.ended[id+"/wait-until-ready"], "?"), drained.Seconds(), d.beats[id+"/drain-before-terminate"], orDefault(d.ended[id+"/drain-before-terminate"], "?"))
	}
	if keep {
		fmt.Fprintln(d.out, "every instance's processes are gone")
		return
	}
	fmt.Fprintln(d.out, "every instance's processes are gone; the sandbox stops now")
}
