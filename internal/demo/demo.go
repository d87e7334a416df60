// Package demo is `lifeguard demo`: the whole story of lifeguard told
// against an in-process sandbox. A web group of three instances runs
// `lifeguard agent` and a small web app behind an application load
// balancer's target group, with a launch hook, a terminate hook, lease
// leadership and a leader-only scheduled job; a second group keeps the
// seed's `app:isLeader` tag through the controller running as a Lambda
// function. A script then scales out, scales in the leader, kills an agent
// with SIGKILL, interrupts a spot instance and restarts the group instance
// by instance, while a client sends steady traffic through the load
// balancer. Everything it shows is read from the sandbox and the
// instances' own output: a live timeline, then a summary table.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
)

// Scenarios are the parts --scenario runs alone, in the story's order.
var Scenarios = []string{"lifecycle", "leader", "traffic", "tag"}

// scenarioHelp says what each part shows.
var scenarioHelp = map[string]string{
	"lifecycle": "launches held until ready, a scale-out and a scale-in drained with heartbeats",
	"leader":    "the lease's leader scaled in (a graceful hand-off), then its successor's agent killed with SIGKILL (a fail-over)",
	"traffic":   "a spot interruption and a rolling restart under steady traffic",
	"tag":       "the controller as a Lambda function moving the seed's app:isLeader tag",
}

// ScenarioHelp is one line per scenario, for --help.
func ScenarioHelp() string {
	var b strings.Builder
	for _, s := range Scenarios {
		fmt.Fprintf(&b, "  %-10s %s\n", s, scenarioHelp[s])
	}
	return b.String()
}

// UnknownScenarioError is a --scenario that is not one of Scenarios.
type UnknownScenarioError struct{ Name string }

func (e *UnknownScenarioError) Error() string {
	return fmt.Sprintf("--scenario: unknown scenario %q; use one of %s, or omit --scenario for the whole story", e.Name, strings.Join(Scenarios, ", "))
}

// legend says how to read the timeline.
const legend = `how to read the timeline: seconds since the start, then who speaks.
  i-…      an instance: its Auto Scaling state (→), lifecycle actions and heartbeats,
           its target in the load balancer, and what its agent and app print
  SCRIPT   what the demo does          LEASE    the DynamoDB lease record (leader, fencing token)
  TRAFFIC  the client's requests       TAG      the seed group's app:isLeader tag
  LAMBDA   the controller's function
`

// Options configure a run.
type Options struct {
	// Out receives the timeline and the summary.
	Out io.Writer
	// Bin is the lifeguard binary the instances run (and the Lambda
	// function's bootstrap).
	Bin string
	// Scenario runs one part alone; "" is the whole story.
	Scenario string
	// Keep leaves the sandbox running until ctx ends, and prints how to
	// reach it.
	Keep bool
	// StateDir is the sandbox's state directory; a temporary one when
	// empty.
	StateDir string
}

// CheckScenario returns an *UnknownScenarioError unless name is "" or one
// of Scenarios.
func CheckScenario(name string) error {
	if name == "" || slices.Contains(Scenarios, name) {
		return nil
	}
	return &UnknownScenarioError{Name: name}
}

// plan is what a run builds and does.
type plan struct {
	web, tag bool
	steps    []step
}

func planFor(scenario string) plan {
	switch scenario {
	case "lifecycle":
		return plan{web: true, steps: []step{scaleOut, scaleIn}}
	case "leader":
		return plan{web: true, steps: []step{scaleInLeader, killLeaderAgent}}
	case "traffic":
		return plan{web: true, steps: []step{spotInterruption, rollingRestart}}
	case "tag":
		return plan{tag: true, steps: []step{terminateTagged}}
	}
	return plan{web: true, tag: true, steps: []step{scaleOut, scaleInLeader, killLeaderAgent, spotInterruption, rollingRestart, terminateTagged}}
}

// Run runs the scenario (the whole story when opts.Scenario is "") and
// prints its timeline and summary to opts.Out. It returns once every
// instance and Lambda environment has stopped (with Keep, once ctx ends).
func Run(ctx context.Context, opts Options) error {
	if err := CheckScenario(opts.Scenario); err != nil {
		return err
	}
	p := planFor(opts.Scenario)
	srv, err := sandbox.New(sandbox.Config{
		Listen: "127.0.0.1:0", StateDir: opts.StateDir, RelaxLimits: true,
		StopGrace: 3 * time.Second, FunctionIdle: time.Minute,
	})
	if err != nil {
		return err
	}
	endpoint, stop, err := srv.Start()
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()

	d := newDemo(opts.Out, srv, endpoint, opts.Bin)
	title := "the whole story"
	if opts.Scenario != "" {
		title = "scenario " + opts.Scenario + ": " + scenarioHelp[opts.Scenario]
	}
	fmt.Fprintf(opts.Out, "lifeguard demo, %s\n", title)
	fmt.Fprintf(opts.Out, "a sandbox on %s (in this process); its instances are local processes running their user data\n", endpoint)
	if opts.StateDir != "" {
		fmt.Fprintf(opts.Out, "each instance's directory (console.log, agent.yaml, the agent's journal) is kept under %s\n", filepath.Join(opts.StateDir, "instances"))
	}
	fmt.Fprint(opts.Out, legend)
	fmt.Fprintln(opts.Out)

	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stopWatching := func() {
		stopWatch()
		wg.Wait()
		d.flush(time.Time{})
	}
	defer stopWatching()
	wg.Go(func() { d.events(watchCtx) })
	wg.Go(func() { d.consoles(watchCtx) })
	wg.Go(func() { d.printer(watchCtx) })

	runErr := d.story(ctx, watchCtx, &wg, p)
	if runErr != nil && ctx.Err() != nil {
		runErr = errors.New("interrupted: the sandbox stops, and its instances and Lambda environments with it")
	}
	if d.load != nil {
		d.load.Stop()
	}
	var final finalState
	if runErr == nil {
		final, runErr = d.finalState(ctx, p)
	}
	stopWatching()
	if runErr != nil {
		return runErr
	}
	d.summary(final)
	if opts.Keep {
		d.keepHelp(p)
		<-ctx.Done()
		fmt.Fprintln(opts.Out, "stopping the sandbox: its instances and Lambda environments")
	}
	stopped = true
	if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("stop the sandbox: %w", err)
	}
	fmt.Fprintln(opts.Out, "the sandbox has stopped, and every instance and Lambda environment with it")
	return nil
}
