package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// pendingAction finds this instance's pending lifecycle action: instance
// from IMDS, group and state from Auto Scaling, the hook from --hook or
// the only hook of the pending transition.
type pendingAction struct {
	instance, group, state, target string
	hooks                          []lifecycle.Hook
}

func lookupPending(ctx context.Context) (*awscloud.AutoScaling, pendingAction, error) {
	sess, err := awscloud.NewSession(ctx)
	if err != nil {
		return nil, pendingAction{}, err
	}
	md := sess.Metadata()
	var p pendingAction
	if p.instance, err = md.InstanceID(ctx); err != nil {
		return nil, p, err
	}
	if p.target, err = md.TargetLifecycleState(ctx); err != nil {
		return nil, p, err
	}
	asg := sess.AutoScaling()
	if p.group, p.state, err = asg.InstanceMembership(ctx, p.instance); err != nil {
		return nil, p, err
	}
	if p.hooks, err = asg.LifecycleHooks(ctx, p.group); err != nil {
		return nil, p, err
	}
	return asg, p, nil
}

// transition returns the transition whose wait state the instance is in.
func (p pendingAction) transition() (lifecycle.Transition, bool) {
	switch p.state {
	case "Pending:Wait":
		return lifecycle.TransitionLaunching, true
	case "Terminating:Wait":
		return lifecycle.TransitionTerminating, true
	}
	return "", false
}

// action picks the hook to act on.
func (p pendingAction) action(hook string) (lifecycle.Action, error) {
	tr, ok := p.transition()
	if !ok {
		return lifecycle.Action{}, fmt.Errorf("no lifecycle action is pending for %s: it is %s, not in Pending:Wait or Terminating:Wait", p.instance, p.state)
	}
	var names []string
	var chosen *lifecycle.Hook
	for i, h := range p.hooks {
		if h.Transition != tr {
			continue
		}
		names = append(names, h.Name)
		if hook == "" || h.Name == hook {
			chosen = &p.hooks[i]
		}
	}
	switch {
	case len(names) == 0:
		return lifecycle.Action{}, fmt.Errorf("group %s has no %s hook", p.group, tr)
	case hook != "" && !slices.Contains(names, hook):
		return lifecycle.Action{}, fmt.Errorf("--hook: group %s has no %s hook named %q (it has %s)", p.group, tr, hook, strings.Join(names, ", "))
	case hook == "" && len(names) > 1:
		return lifecycle.Action{}, fmt.Errorf("group %s has several %s hooks (%s): name one with --hook", p.group, tr, strings.Join(names, ", "))
	}
	return lifecycle.Action{InstanceID: p.instance, Group: p.group, Hook: *chosen}, nil
}

func newLifecycleCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lifecycle",
		Short: "Complete, heartbeat or inspect this instance's lifecycle action (for user data and scripts)",
		Long: `Helpers for scripts on an instance. Each finds the instance from IMDS, its
group and state from Auto Scaling, and the hook from --hook or, when the group
has one hook for the pending transition, that hook.`,
	}
	var hook, result string
	complete := &cobra.Command{
		Use:     "complete",
		Short:   "Complete this instance's pending lifecycle action (CONTINUE unless --result ABANDON)",
		Example: "  lifeguard lifecycle complete\n  lifeguard lifecycle complete --result ABANDON --hook ready",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := lifecycle.Result(strings.ToUpper(result))
			if !r.Valid() {
				return usageError(fmt.Errorf("--result: %q is not CONTINUE or ABANDON", result))
			}
			asg, p, err := lookupPending(cmd.Context())
			if err != nil {
				return err
			}
			a, err := p.action(hook)
			if err != nil {
				return err
			}
			if err := asg.Complete(cmd.Context(), a, r); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "completed %s of %s (%s) with %s\n", a.Hook.Name, a.InstanceID, a.Hook.Transition, r)
			return nil
		},
	}
	complete.Flags().StringVar(&hook, "hook", "", "the hook to complete when the transition has several")
	complete.Flags().StringVar(&result, "result", "CONTINUE", "CONTINUE or ABANDON")
	_ = complete.RegisterFlagCompletionFunc("result", cobra.FixedCompletions([]string{string(lifecycle.Continue), string(lifecycle.Abandon)}, cobra.ShellCompDirectiveNoFileComp))

	var hbHook string
	heartbeat := &cobra.Command{
		Use:   "heartbeat",
		Short: "Extend this instance's pending lifecycle action by its hook's heartbeat timeout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asg, p, err := lookupPending(cmd.Context())
			if err != nil {
				return err
			}
			a, err := p.action(hbHook)
			if err != nil {
				return err
			}
			if err := asg.Heartbeat(cmd.Context(), a); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "heartbeat recorded for %s of %s: %s more (never past %s from the start)\n", a.Hook.Name, a.InstanceID, a.Hook.HeartbeatTimeout, a.Hook.GlobalTimeout())
			return nil
		},
	}
	heartbeat.Flags().StringVar(&hbHook, "hook", "", "the hook to heartbeat when the transition has several")

	var out outputFlag
	status := &cobra.Command{
		Use:     "status",
		Short:   "Print this instance's lifecycle state and the hooks of a pending transition",
		Example: "  lifeguard lifecycle status\n  lifeguard lifecycle status -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, p, err := lookupPending(cmd.Context())
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(stdout, p.statusDoc())
			}
			target := p.target
			if target == "" {
				target = "(none yet)"
			}
			fmt.Fprintf(stdout, "instance:        %s\ngroup:           %s\nlifecycle state: %s\ntarget state:    %s\n", p.instance, p.group, p.state, target)
			tr, pending := p.transition()
			if !pending {
				fmt.Fprintln(stdout, "pending action:  none")
				return nil
			}
			for _, h := range p.hooks {
				if h.Transition == tr {
					fmt.Fprintf(stdout, "pending action:  hook %s (%s), heartbeat timeout %s, global timeout %s, default result %s\n", h.Name, tr, h.HeartbeatTimeout, h.GlobalTimeout(), h.DefaultResult)
				}
			}
			return nil
		},
	}
	out.register(status)
	cmd.AddCommand(complete, heartbeat, status)
	return cmd
}

// lifecycleStatus is `lifecycle status -o json`.
type lifecycleStatus struct {
	Instance       string `json:"instance"`
	Group          string `json:"group"`
	LifecycleState string `json:"lifecycle_state"`
	// TargetState is IMDS's target lifecycle state; "" when it has none yet.
	TargetState string `json:"target_state"`
	// Pending lists the hooks of the pending transition; empty when the
	// instance is in neither Pending:Wait nor Terminating:Wait.
	Pending []pendingHook `json:"pending"`
}

type pendingHook struct {
	Hook                    string  `json:"hook"`
	Transition              string  `json:"transition"`
	HeartbeatTimeoutSeconds float64 `json:"heartbeat_timeout_seconds"`
	GlobalTimeoutSeconds    float64 `json:"global_timeout_seconds"`
	DefaultResult           string  `json:"default_result"`
}

func (p pendingAction) statusDoc() lifecycleStatus {
	doc := lifecycleStatus{Instance: p.instance, Group: p.group, LifecycleState: p.state, TargetState: p.target, Pending: []pendingHook{}}
	if tr, ok := p.transition(); ok {
		for _, h := range p.hooks {
			if h.Transition == tr {
				doc.Pending = append(doc.Pending, pendingHook{Hook: h.Name, Transition: string(tr),
					HeartbeatTimeoutSeconds: h.HeartbeatTimeout.Seconds(), GlobalTimeoutSeconds: h.GlobalTimeout().Seconds(),
					DefaultResult: string(h.DefaultResult)})
			}
		}
	}
	return doc
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
