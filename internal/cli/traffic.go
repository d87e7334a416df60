package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lb"
)

// ExitNotReady is the exit code of `lifeguard traffic` when a wait ends at
// its timeout (register --wait: not healthy; deregister --wait: not
// drained) or, for status, when a target is not healthy.
const ExitNotReady = 3

// trafficDeps are the agent's load balancer adapters.
func trafficDeps(sess awscloud.Session) agent.TrafficDeps {
	return agent.TrafficDeps{
		Registrars:  map[lb.Kind]lb.Registrar{lb.KindTargetGroup: sess.ELBv2(), lb.KindClassic: sess.ELB()},
		Attachments: sess.AutoScaling(),
		Tags:        sess.InstanceTags(),
	}
}

// trafficFlags are what every `lifeguard traffic` command shares: which
// instance, which targets (flags, else the agent's traffic section).
type trafficFlags struct {
	config        string
	instance      string
	targetGroups  []string
	loadBalancers []string
}

func (f *trafficFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.config, "config", defaultAgentConfig, "the agent's configuration, read for its traffic section when no --target-group or --load-balancer is given (default $LIFEGUARD_CONFIG, else "+defaultAgentConfig+")")
	cmd.Flags().StringVar(&f.instance, "instance", "", "the instance id (default: this instance's, from instance metadata)")
	cmd.Flags().StringArrayVar(&f.targetGroups, "target-group", nil, "a target group ARN, with =PORT for a port other than the target group's (repeatable)")
	cmd.Flags().StringArrayVar(&f.loadBalancers, "load-balancer", nil, "a classic load balancer's name (repeatable)")
}

// trafficRun is one command's resolved inputs.
type trafficRun struct {
	cfg      config.Traffic
	sess     awscloud.Session
	tr       *lb.Traffic
	instance string
	targets  []lb.Target
}

// resolve reads the flags (a bad one is a usage error), the agent's
// configuration when no target is given, the instance id and the targets.
func (f *trafficFlags) resolve(cmd *cobra.Command, log io.Writer) (*trafficRun, error) {
	var tc config.Traffic
	if len(f.targetGroups) > 0 || len(f.loadBalancers) > 0 {
		tc = config.DefaultAgent().Traffic
		for _, v := range f.targetGroups {
			tgs, err := config.ParseTargetGroupsTag(v)
			if err != nil || len(tgs) != 1 {
				return nil, usageError(fmt.Errorf("--target-group %q: give one target group ARN, optionally with =PORT", v))
			}
			tc.TargetGroups = append(tc.TargetGroups, tgs[0])
		}
		for _, v := range f.loadBalancers {
			if err := config.CheckLoadBalancerName(v); err != nil {
				return nil, usageError(fmt.Errorf("--load-balancer: %w", err))
			}
			tc.LoadBalancers = append(tc.LoadBalancers, v)
		}
	} else {
		path := agentConfigPath(cmd, f.config)
		cfg, err := config.LoadAgent(path)
		if err != nil {
			if path == defaultAgentConfig && !cmd.Flags().Changed("config") && errors.Is(err, os.ErrNotExist) {
				return nil, usageError(fmt.Errorf("no agent configuration at %s: give --target-group or --load-balancer, or --config", path))
			}
			return nil, configError(err)
		}
		if !cfg.Traffic.On() {
			return nil, usageError(fmt.Errorf("%s has no traffic section: give --target-group or --load-balancer", path))
		}
		tc = cfg.Traffic
	}
	ctx := cmd.Context()
	sess, err := awscloud.NewSession(ctx)
	if err != nil {
		return nil, err
	}
	id := f.instance
	if id == "" {
		if id, err = sess.Metadata().InstanceID(ctx); err != nil {
			return nil, fmt.Errorf("this instance's id from instance metadata (or give --instance): %w", err)
		}
	}
	deps := trafficDeps(sess)
	targets, err := agent.TrafficTargets(ctx, tc, deps.Tags, id)
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		return nil, errors.New("no target group or load balancer: the instance's traffic tags are empty")
	}
	logger := newTrafficLogger(log)
	return &trafficRun{cfg: tc, sess: sess, instance: id, targets: targets,
		tr: &lb.Traffic{Registrars: deps.Registrars, Interval: time.Duration(tc.PollInterval), Log: logger}}, nil
}

// waitResult maps a wait's error to the command's: ErrTimeout exits 3.
func waitResult(err error) error {
	if errors.Is(err, lb.ErrTimeout) {
		return &ExitError{Code: ExitNotReady, Err: err}
	}
	return err
}

func newTrafficCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "traffic",
		Short: "Register this instance with its load balancers, deregister it, or show its health in them",
		Long: `For deploy scripts: take the instance out of its load balancers, restart the
app, and put it back once healthy, without terminating it:

  lifeguard traffic deregister --wait && systemctl restart app && lifeguard traffic register --wait

The targets are the agent's traffic section (--config; with from_tags, the
instance's tags), or --target-group and --load-balancer. Every target is
acted on, whichever owns it (traffic.mode applies to launches and
terminations, not here). See docs/traffic.md.

Exit codes: 0 done (register --wait: healthy everywhere; deregister --wait:
drained everywhere; status: healthy everywhere); 1 failure; 2 usage;
3 not healthy (or not drained) within --timeout, or status found a target
not healthy; 78 invalid configuration.`,
	}
	cmd.AddCommand(newTrafficRegisterCmd(stdout, stderr), newTrafficDeregisterCmd(stdout, stderr), newTrafficStatusCmd(stdout))
	return cmd
}

func newTrafficRegisterCmd(stdout, stderr io.Writer) *cobra.Command {
	var f trafficFlags
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:     "register",
		Short:   "Register the instance with its target groups and load balancers; with --wait, wait until healthy (exit 3 past --timeout)",
		Example: "  lifeguard traffic register --wait\n  lifeguard traffic register --target-group arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef=8080 --wait --timeout 2m",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := f.resolve(cmd, stderr)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := r.tr.Register(ctx, r.instance, r.targets); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "registered %s with %s\n", r.instance, targetList(r.targets))
			if !wait {
				return nil
			}
			if err := r.tr.WaitHealthy(ctx, r.instance, r.targets, waitBound(timeout, r.cfg.WaitHealthyTimeout)); err != nil {
				return waitResult(err)
			}
			fmt.Fprintf(stdout, "healthy in %s\n", targetList(r.targets))
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until healthy in every target")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "bound of --wait (default: traffic.wait_healthy_timeout, 5m)")
	return cmd
}

func newTrafficDeregisterCmd(stdout, stderr io.Writer) *cobra.Command {
	var f trafficFlags
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:     "deregister",
		Short:   "Deregister the instance from its target groups and load balancers; with --wait, wait until drained (exit 3 past --timeout)",
		Example: "  lifeguard traffic deregister --wait",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := f.resolve(cmd, stderr)
			if err != nil {
				return err
			}
			// Once asked, the deregistration goes out even on an interrupt.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), deregisterBound)
			err = r.tr.Deregister(dctx, r.instance, r.targets)
			cancel()
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deregistered %s from %s\n", r.instance, targetList(r.targets))
			if !wait {
				return nil
			}
			if err := r.tr.WaitDrained(cmd.Context(), r.instance, r.targets, waitBound(timeout, r.cfg.WaitDrainedTimeout)); err != nil {
				return waitResult(err)
			}
			fmt.Fprintf(stdout, "drained from %s\n", targetList(r.targets))
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until drained from every target")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "bound of --wait (default: traffic.wait_drained_timeout, 6m)")
	return cmd
}

// deregisterBound bounds the deregistration calls of `traffic deregister`.
const deregisterBound = 30 * time.Second

// TargetStatus is one target's health in `lifeguard traffic status -o json`.
type TargetStatus struct {
	Kind        string `json:"kind"` // target-group or classic
	Name        string `json:"name"` // the target group's ARN or the load balancer's name
	Port        int    `json:"port,omitempty"`
	State       string `json:"state,omitempty"` // AWS's: initial, healthy, unhealthy, unused, draining, unavailable
	Reason      string `json:"reason,omitempty"`
	Description string `json:"description,omitempty"`
	Error       string `json:"error,omitempty"`
}

// TrafficStatus is `lifeguard traffic status -o json`.
type TrafficStatus struct {
	InstanceID string         `json:"instance_id"`
	Healthy    bool           `json:"healthy"` // every target healthy
	Targets    []TargetStatus `json:"targets"`
}

func newTrafficStatusCmd(stdout io.Writer) *cobra.Command {
	var f trafficFlags
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the instance's health in each target group and load balancer (exit 3 when one is not healthy)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := f.resolve(cmd, io.Discard)
			if err != nil {
				return err
			}
			st := TrafficStatus{InstanceID: r.instance, Healthy: true, Targets: []TargetStatus{}}
			var errs []error
			for _, th := range r.tr.Health(cmd.Context(), r.instance, r.targets) {
				ts := TargetStatus{Kind: string(th.Target.Kind), Name: th.Target.Name, Port: th.Target.Port,
					State: string(th.Health.State), Reason: th.Health.Reason, Description: th.Health.Description}
				if th.Err != nil {
					ts.State, ts.Error = "", th.Err.Error()
					errs = append(errs, th.Err)
				}
				st.Healthy = st.Healthy && lb.Healthy(th)
				st.Targets = append(st.Targets, ts)
			}
			if out.json() {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(st); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TARGET\tSTATE\tREASON")
				for i, ts := range st.Targets {
					state := ts.State
					if ts.Error != "" {
						state = "error: " + ts.Error
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.targets[i], state, ts.Reason)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			switch {
			case len(errs) > 0:
				return &ExitError{Code: ExitFailure, Err: fmt.Errorf("read target health: %w", errors.Join(errs...))}
			case !st.Healthy:
				return &ExitError{Code: ExitNotReady}
			}
			return nil
		},
	}
	f.register(cmd)
	out.register(cmd)
	return cmd
}

func targetList(ts []lb.Target) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ", ")
}

func waitBound(d time.Duration, def config.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return time.Duration(def)
}

// newTrafficLogger writes the waits' progress (target health changes) to
// w as text, for the person or script watching.
func newTrafficLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}
