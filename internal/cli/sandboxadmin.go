package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
)

// adminCall sends one admin API request and decodes a JSON answer into out.
func adminCall(ctx context.Context, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reach the sandbox at %s (is `lifeguard sandbox` running? set --endpoint): %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("sandbox: %s", e.Error)
		}
		return fmt.Errorf("sandbox: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func newFaultCmd(stdout io.Writer) *cobra.Command {
	var endpoint string
	cmd := &cobra.Command{
		Use:   "fault",
		Short: "Inject faults into a running sandbox: cut an instance off, add latency, throttle, fail, or interrupt a spot instance",
	}
	cmd.PersistentFlags().StringVar(&endpoint, "endpoint", "", "the sandbox's endpoint (default $AWS_ENDPOINT_URL, else http://127.0.0.1:4566)")

	var f sandbox.Fault
	var latency time.Duration
	var setOut outputFlag
	set := &cobra.Command{
		Use:   "set",
		Short: "Set the fault for one instance (--instance) or for every caller; it replaces that target's previous fault",
		Example: `  lifeguard sandbox fault set --throttle 0.1 --latency 200ms
  lifeguard sandbox fault set --instance i-0123456789abcdef0 --cut`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.Latency = sandbox.Duration(latency)
			if err := f.Validate(); err != nil {
				return flagError(err)
			}
			return printFaults(cmd.Context(), stdout, setOut.json(), http.MethodPost, adminEndpoint(endpoint)+"/_sandbox/faults", f)
		},
	}
	setOut.register(set)
	fl := set.Flags()
	fl.StringVar(&f.Instance, "instance", "", "limit the fault to the calls this instance makes")
	fl.BoolVar(&f.Cut, "cut", false, "drop every call (the caller sees the connection close)")
	fl.DurationVar(&latency, "latency", 0, "delay every call by this much")
	fl.Float64Var(&f.Throttle, "throttle", 0, "share of calls (0-1) answered with a throttling error")
	fl.StringVar(&f.ThrottleCode, "throttle-code", "", "throttling code: Throttling, ThrottlingException or RequestLimitExceeded (default: the service's own)")
	fl.Float64Var(&f.Errors, "errors", 0, "share of calls (0-1) answered with a server error")
	fl.IntVar(&f.ErrorStatus, "error-status", 0, "server error status: 500, 502, 503 or 504 (default 503)")

	var notice time.Duration
	spot := &cobra.Command{
		Use:   "spot INSTANCE-ID",
		Short: "Post a spot interruption notice: IMDS shows it now, and the instance is reclaimed at the notice time",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if notice < 0 {
				return usageError(fmt.Errorf("--notice: %s is negative; give the time until the reclaim, such as 2m", notice))
			}
			body := map[string]any{"instance": args[0], "spot": notice.String()}
			if err := adminCall(cmd.Context(), http.MethodPost, adminEndpoint(endpoint)+"/_sandbox/faults", body, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "spot interruption posted for %s; reclaimed in %s\n", args[0], notice)
			return nil
		},
	}
	spot.Flags().DurationVar(&notice, "notice", 2*time.Minute, "time between the notice and the reclaim (AWS gives two minutes)")

	var clearInstance string
	var clearOut, listOut outputFlag
	clr := &cobra.Command{
		Use:   "clear",
		Short: "Clear one instance's fault (--instance) or every fault",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url := adminEndpoint(endpoint) + "/_sandbox/faults"
			if clearInstance != "" {
				url += "?instance=" + clearInstance
			}
			return printFaults(cmd.Context(), stdout, clearOut.json(), http.MethodDelete, url, nil)
		},
	}
	clearOut.register(clr)
	clr.Flags().StringVar(&clearInstance, "instance", "", "the instance whose fault to clear")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the active faults",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printFaults(cmd.Context(), stdout, listOut.json(), http.MethodGet, adminEndpoint(endpoint)+"/_sandbox/faults", nil)
		},
	}
	listOut.register(list)
	cmd.AddCommand(set, spot, clr, list)
	return cmd
}

// flagError turns a sandbox field error ("error_status: …") into a usage
// error naming the flag ("--error-status: …").
func flagError(err error) error {
	msg := err.Error()
	if field, rest, ok := strings.Cut(msg, ": "); ok && !strings.Contains(field, " ") {
		msg = "--" + strings.ReplaceAll(field, "_", "-") + ": " + rest
	}
	return usageError(errors.New(msg))
}

// printFaults calls the faults endpoint and prints the active faults: a
// line each, or {"faults": […]} as JSON.
func printFaults(ctx context.Context, out io.Writer, asJSON bool, method, url string, body any) error {
	var resp struct {
		Faults []sandbox.Fault `json:"faults"`
	}
	if err := adminCall(ctx, method, url, body, &resp); err != nil {
		return err
	}
	if asJSON {
		if resp.Faults == nil {
			resp.Faults = []sandbox.Fault{}
		}
		return printJSON(out, resp)
	}
	if len(resp.Faults) == 0 {
		fmt.Fprintln(out, "no active faults")
		return nil
	}
	for _, f := range resp.Faults {
		target := f.Instance
		if target == "" {
			target = "every caller"
		}
		fmt.Fprintf(out, "%-20s cut=%t latency=%s throttle=%.2f errors=%.2f\n", target, f.Cut, time.Duration(f.Latency), f.Throttle, f.Errors)
	}
	return nil
}

func newClockCmd(stdout io.Writer) *cobra.Command {
	var endpoint string
	cmd := &cobra.Command{Use: "clock", Short: "Read or advance a running sandbox's simulated clock"}
	cmd.PersistentFlags().StringVar(&endpoint, "endpoint", "", "the sandbox's endpoint (default $AWS_ENDPOINT_URL, else http://127.0.0.1:4566)")
	show := func(c sandbox.ClockState, asJSON bool) error {
		if asJSON {
			return printJSON(stdout, c)
		}
		fmt.Fprintf(stdout, "now %s (ahead of the wall clock by %s)\n", c.Now.Format(time.RFC3339), time.Duration(c.Offset))
		return nil
	}
	var advanceOut, showOut outputFlag
	advance := &cobra.Command{
		Use:   "advance DURATION",
		Short: "Push simulated time forward, firing every timeout that falls due",
		Long: `Push simulated time forward, firing every timeout that falls due.

DURATION is positive, such as 90s or 1h. The clock holds about 292 years
ahead of the wall clock in all; an advance that would go past that is
refused and changes nothing.`,
		Example: "  lifeguard sandbox clock advance 1h",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			d, err := time.ParseDuration(args[0])
			if err != nil || d <= 0 {
				return usageError(fmt.Errorf("DURATION: %q is not a positive duration such as 90s or 1h (at most 2562047h)", args[0]))
			}
			var st sandbox.ClockState
			if err := adminCall(c.Context(), http.MethodPost, adminEndpoint(endpoint)+"/_sandbox/clock", map[string]string{"advance": d.String()}, &st); err != nil {
				return err
			}
			return show(st, advanceOut.json())
		},
	}
	advanceOut.register(advance)
	showCmd := &cobra.Command{
		Use:   "show",
		Short: "Print the simulated time",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var st sandbox.ClockState
			if err := adminCall(c.Context(), http.MethodGet, adminEndpoint(endpoint)+"/_sandbox/clock", nil, &st); err != nil {
				return err
			}
			return show(st, showOut.json())
		},
	}
	showOut.register(showCmd)
	cmd.AddCommand(advance, showCmd)
	return cmd
}

// printJSON prints v as indented JSON.
func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newEventsCmd(stdout io.Writer) *cobra.Command {
	var endpoint string
	var follow, data bool
	var after int64
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print a running sandbox's event log as a timeline (or JSON lines)",
		Long: `Print a running sandbox's event log as a timeline (or JSON lines).

By default the log shows lifecycle and control-plane history: groups,
instances, hooks, actions, queues and topics created, faults, clock
advances. --data adds the data-plane traffic (SQS messages, SNS and
EventBridge deliveries), which the sandbox keeps in a bounded stream of its
own and counts per kind (GET /_sandbox/events/stats). A "gap" line says
that events after --after are no longer held.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if after < 0 {
				return usageError(fmt.Errorf("--after: %d is not an event sequence number (0 or more)", after))
			}
			jsonOut := out.json()
			url := adminEndpoint(endpoint) + "/_sandbox/events?after=" + strconv.FormatInt(after, 10)
			if follow {
				url += "&follow=true"
			}
			if data {
				url += "&data=1"
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("reach the sandbox at %s: %w", url, err)
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				if jsonOut {
					fmt.Fprintln(stdout, sc.Text())
					continue
				}
				var e eventlog.Event
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					return fmt.Errorf("decode event: %w", err)
				}
				fmt.Fprintln(stdout, sandbox.FormatEvent(e))
			}
			if cmd.Context().Err() != nil {
				return nil
			}
			return sc.Err()
		},
	}
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "the sandbox's endpoint (default $AWS_ENDPOINT_URL, else http://127.0.0.1:4566)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	out.register(cmd) // -o json prints the events as JSON lines, as the admin API serves them
	cmd.Flags().BoolVar(&data, "data", false, "include data-plane traffic (messages and deliveries)")
	cmd.Flags().Int64Var(&after, "after", 0, "print only events after this sequence number")
	return cmd
}
