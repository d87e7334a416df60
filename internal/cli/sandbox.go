package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
)

// sandboxFlags are `lifeguard sandbox`'s flags.
type sandboxFlags struct {
	listen      string
	allowRemote bool
	stateDir    string
	relax       bool
	region      string
	account     string
	seed        uint64
	quiet       bool
	stopGrace   time.Duration
	logLevel    string
	noProcesses bool
	fnIdle      time.Duration
}

func (f sandboxFlags) config(log *slog.Logger) (sandbox.Config, error) {
	cfg := sandbox.Config{
		Listen: f.listen, AllowNonLoopback: f.allowRemote, StateDir: f.stateDir, RelaxLimits: f.relax, Region: f.region, Account: f.account,
		Seed: f.seed, StopGrace: f.stopGrace, Logger: log, NoProcesses: f.noProcesses, FunctionIdle: f.fnIdle,
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError(fmt.Errorf("--%w", err))
	}
	return cfg, nil
}

func newSandboxCmd(stdout, stderr io.Writer) *cobra.Command {
	var f sandboxFlags
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a local AWS endpoint that simulates Auto Scaling groups with real lifecycle semantics",
		Long: `lifeguard sandbox serves, on one port (loopback by default), the AWS APIs
of Auto Scaling, EC2, SQS, SNS, EventBridge, DynamoDB, Lambda and Elastic
Load Balancing (ELBv2 and classic) over their real wire protocols, with a
real load balancer data plane, and simulates Auto Scaling groups whose
instances are local processes running their user data, each with its own
IMDS (IMDSv2) and API port. Point the AWS SDK at it with AWS_ENDPOINT_URL,
or the AWS CLI with --endpoint-url.

It prints every state change as a timeline; GET /_sandbox/events streams the
same events as JSON lines. Subcommands drive the admin API of a running
sandbox: fault (inject faults and spot interruptions), clock (advance time),
events (read the log), logs (what a Lambda function printed).

--state-dir must be empty or new: instance ids repeat across runs with the
same seed, so each run needs directories of its own. The directory is kept
after the sandbox exits.

--listen takes a loopback address unless --allow-non-loopback is given:
whoever reaches the API can run code on this host as your user.

The sandbox departs from AWS in ways listed under "Deviations from AWS" in
docs/sandbox.md (instances are local processes, requests are not
authenticated, and so on); read them before trusting a result.

` + exitCodesHelp,
		Example: `  lifeguard sandbox --relax-limits
  export AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 \\
         AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x
  aws autoscaling describe-auto-scaling-groups --endpoint-url $AWS_ENDPOINT_URL`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(stderr, f.logLevel)
			if err != nil {
				return usageError(err)
			}
			cfg, err := f.config(log)
			if err != nil {
				return err
			}
			return runSandbox(cmd.Context(), cfg, f.quiet, stdout)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", sandbox.DefaultListen, "address of the AWS API endpoint (a loopback address unless --allow-non-loopback)")
	fl.BoolVar(&f.allowRemote, "allow-non-loopback", false, "accept a --listen address other hosts can reach (they can run code here)")
	fl.StringVar(&f.stateDir, "state-dir", "", "empty or new directory for the instances' directories, kept on exit (default: a temporary one)")
	fl.BoolVar(&f.relax, "relax-limits", false, "lower every AWS time minimum (HeartbeatTimeout, cooldowns, back-offs) to 1 s")
	fl.StringVar(&f.region, "region", "us-east-1", "the simulated region")
	fl.StringVar(&f.account, "account", "123456789012", "the simulated account id")
	fl.Uint64Var(&f.seed, "seed", 0, "seed for random choices and fault sampling (same seed, same run)")
	fl.BoolVar(&f.quiet, "quiet", false, "do not print the timeline")
	fl.DurationVar(&f.stopGrace, "stop-grace", 10*time.Second, "time a terminating instance's processes get between SIGTERM and SIGKILL")
	fl.StringVar(&f.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	fl.BoolVar(&f.noProcesses, "no-processes", false, "run no user data (instances get IMDS and API ports only)")
	fl.DurationVar(&f.fnIdle, "function-idle", 5*time.Minute, "stop a Lambda execution environment idle this long")
	cmd.AddCommand(newFaultCmd(stdout), newClockCmd(stdout), newEventsCmd(stdout), newSandboxLogsCmd(stdout))
	return cmd
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), nil
}

func runSandbox(ctx context.Context, cfg sandbox.Config, quiet bool, out io.Writer) error {
	srv, err := sandbox.New(cfg)
	if err != nil {
		return err
	}
	endpoint, err := srv.Listen()
	if err != nil {
		srv.Close()
		return err
	}
	region := orDefault(cfg.Region, "us-east-1")
	fmt.Fprintf(out, "lifeguard sandbox listening on %s (region %s, account %s, state in %s)\n", endpoint, region, orDefault(cfg.Account, "123456789012"), srv.StateDir())
	if !loopbackURL("http://" + cfg.Listen) {
		others := srv.Addresses()
		if loopbackURL(endpoint) {
			others = others[1:]
		}
		where := strings.Join(others, ", ")
		if where == "" {
			where = "this host's addresses (only loopback has one now)"
		}
		fmt.Fprintf(out, "  reachable from other hosts at %s: whoever reaches it can run code on this host as this user\n", where)
	}
	fmt.Fprintf(out, "  export AWS_ENDPOINT_URL=%s AWS_REGION=%[2]s AWS_DEFAULT_REGION=%[2]s AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox\n", endpoint, region)
	fmt.Fprintf(out, "  aws autoscaling describe-auto-scaling-groups --endpoint-url %s\n", endpoint)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if !quiet {
			printTimeline(ctx, srv, out)
		}
	}()
	err = srv.Run(ctx)
	cancel()
	<-done
	fmt.Fprintln(out, "lifeguard sandbox stopped; every instance was terminated")
	return err
}

// printTimeline prints the control stream's events until ctx ends.
func printTimeline(ctx context.Context, srv *sandbox.Server, out io.Writer) {
	var after int64
	for {
		evs, err := srv.Events().Wait(ctx, after, eventlog.Control)
		if err != nil {
			return
		}
		for _, e := range evs {
			fmt.Fprintln(out, sandbox.FormatEvent(e))
			after = e.Seq
		}
	}
}

// loopbackURL reports whether an endpoint URL's host is a loopback address.
func loopbackURL(u string) bool {
	host := strings.TrimPrefix(u, "http://")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	return host == "localhost" || (err == nil && ip.IsLoopback())
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// adminEndpoint is where sandbox subcommands find a running sandbox.
func adminEndpoint(flag string) string {
	if flag != "" {
		return strings.TrimRight(flag, "/")
	}
	if v := os.Getenv("AWS_ENDPOINT_URL"); v != "" {
		return strings.TrimRight(v, "/")
	}
	return "http://" + sandbox.DefaultListen
}
