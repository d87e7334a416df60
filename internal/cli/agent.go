package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/jobs"
	"github.com/lifeguardhq/lifeguard/internal/proc"
)

// agentConfigPath returns the agent's configuration file: --config (the
// flag of cmd, whose value is flag) when given, else $LIFEGUARD_CONFIG when
// set, else defaultAgentConfig.
func agentConfigPath(cmd *cobra.Command, flag string) string {
	if cmd.Flags().Changed("config") {
		return flag
	}
	if env := os.Getenv("LIFEGUARD_CONFIG"); env != "" {
		return env
	}
	return defaultAgentConfig
}

// logFlags are the agent's --log-level and --log-format: set, they
// override the configuration's log section.
type logFlags struct{ level, format string }

var (
	logLevels  = []string{string(config.LogDebug), string(config.LogInfo), string(config.LogWarn), string(config.LogError)}
	logFormats = []string{string(config.LogText), string(config.LogJSON)}
)

func (f *logFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.level, "log-level", "", "override log.level: "+strings.Join(logLevels, ", "))
	cmd.Flags().StringVar(&f.format, "log-format", "", "override log.format: "+strings.Join(logFormats, " or "))
	_ = cmd.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions(logLevels, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions(logFormats, cobra.ShellCompDirectiveNoFileComp))
}

// validate checks the flags as given (a usage error).
func (f *logFlags) validate() error {
	if f.level != "" && !slices.Contains(logLevels, f.level) {
		return usageError(fmt.Errorf("--log-level: %q is not one of %s", f.level, strings.Join(logLevels, ", ")))
	}
	if f.format != "" && !slices.Contains(logFormats, f.format) {
		return usageError(fmt.Errorf("--log-format: %q is not one of %s", f.format, strings.Join(logFormats, ", ")))
	}
	return nil
}

// apply overrides c with the flags that were set.
func (f *logFlags) apply(c *config.Log) {
	if f.level != "" {
		c.Level = config.LogLevel(f.level)
	}
	if f.format != "" {
		c.Format = config.LogFormat(f.format)
	}
}

func newAgentCmd(stdout, stderr io.Writer) *cobra.Command {
	var path string
	var check bool
	var logs logFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Hold this instance's launch and termination until it is ready or done (runs on every instance)",
		Long: `lifeguard agent runs on each instance of an Auto Scaling group. On launch it
holds the instance in Pending:Wait until its readiness probes pass, then
completes the lifecycle action with CONTINUE (ABANDON when it can never become
ready). On termination it runs your steps in order while heartbeating, then
completes the action. It survives its own restart: a journal records every
step before it runs, and steps run under supervisors that outlive the agent.

The configuration is YAML; see docs/agent.md for every key. Its file is
--config, else $LIFEGUARD_CONFIG, else /etc/lifeguard/agent.yaml; values may
use ${VAR} from the environment.

Exit codes: 0 the instance's termination has completed, a drain has run,
or the agent was stopped; 1 failure; 2 usage; 78 invalid configuration
(EX_CONFIG: restarting will not help; the systemd unit does not restart it).`,
		Example: `  lifeguard agent --config /etc/lifeguard/agent.yaml
  lifeguard agent --config agent.yaml --check-config
  LIFEGUARD_CONFIG=agent.yaml lifeguard agent --log-level debug --log-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := logs.validate(); err != nil {
				return err
			}
			path := agentConfigPath(cmd, path)
			cfg, err := config.LoadAgent(path)
			if err != nil {
				return configError(err)
			}
			logs.apply(&cfg.Log)
			if check {
				b, err := cfg.YAML()
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "# %s is valid; the effective configuration:\n", path)
				_, err = stdout.Write(b)
				return err
			}
			log, err := agentLogger(stderr, cfg.Log)
			if err != nil {
				return configError(err)
			}
			return runAgent(cmd.Context(), cfg, log)
		},
	}
	cmd.Flags().StringVar(&path, "config", defaultAgentConfig, "the agent's YAML configuration (else $LIFEGUARD_CONFIG)")
	cmd.Flags().BoolVar(&check, "check-config", false, "validate the configuration, print the effective one (every default shown) and exit (78 when invalid)")
	logs.register(cmd)
	return cmd
}

func agentLogger(w io.Writer, c config.Log) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: durationsAsStrings}
	if c.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// durationsAsStrings is the agent's slog ReplaceAttr: a duration is
// written as Go writes it ("5s", "1m30s") in both formats, where slog's
// JSON handler would write nanoseconds, so that a key has one type
// everywhere.
func durationsAsStrings(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// The agent's garbage collector, unless GOGC or GOMEMLIMIT says otherwise:
// a sidecar's heap is small and mostly what start-up built, so the
// default GOGC of 100 would let it double before a collection for little
// gain in CPU; agentGOGC keeps it within half of the live heap, and
// agentMemoryLimit makes the collector work harder, rather than the heap
// grow, near that bound (a soft limit: never an out-of-memory error).
const (
	agentGOGC        = 50
	agentMemoryLimit = 48 << 20
)

// sidecarGC applies agentGOGC and agentMemoryLimit where the environment
// sets neither (either one set means the user chose).
func sidecarGC() {
	_, gogc := os.LookupEnv("GOGC")
	_, limit := os.LookupEnv("GOMEMLIMIT")
	if gogc || limit {
		return
	}
	debug.SetGCPercent(agentGOGC)
	debug.SetMemoryLimit(agentMemoryLimit)
}

// releaseStartup gives back what the agent's start-up alone needed, once
// it is over (agent.Deps.Settled): the heap pages the collector no longer
// uses, and the mappings of the program's code and read-only data (see
// proc.ProgramPages), of which package initialization and start-up
// touched far more than the idle agent uses.
func releaseStartup(log *slog.Logger, pages *programPages) {
	debug.FreeOSMemory()
	n, err := pages.do((*proc.ProgramPages).Release)
	if err != nil {
		log.Debug("start-up pages not released", "err", err)
		return
	}
	log.Debug("start-up pages released", "bytes", n)
}

// programPages gives back the mappings of the program's pages
// (proc.ProgramPages), finding them again at most every refindPages: all
// of them after the runtime's collections (release, Deps.Release), its
// read-only data while a long poll waits (releaseData, Deps.Waiting).
type programPages struct {
	mu    sync.Mutex
	pages *proc.ProgramPages
	found time.Time
}

// refindPages is how long programPages uses the mappings it found.
const refindPages = time.Minute

func (p *programPages) release()     { _, _ = p.do((*proc.ProgramPages).Release) }
func (p *programPages) releaseData() { _, _ = p.do((*proc.ProgramPages).ReleaseData) }

// do finds the mappings when it has none or they are old, and releases
// them as release does; it returns how many bytes it asked the kernel to
// drop.
func (p *programPages) do(release func(*proc.ProgramPages) (int64, error)) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pages == nil || time.Since(p.found) > refindPages {
		pages, err := proc.FindProgramPages()
		if err != nil {
			return 0, err
		}
		p.pages, p.found = pages, time.Now()
	}
	return release(p.pages)
}

func runAgent(ctx context.Context, cfg config.Agent, log *slog.Logger) error {
	sidecarGC()
	// SIGTERM is the agent's to handle (on_sigterm): the caller's context
	// is cancelled by SIGTERM too, so the agent runs on a context only
	// SIGINT cancels, and receives SIGTERM on a channel.
	sigterm := make(chan os.Signal, 1)
	signal.Notify(sigterm, syscall.SIGTERM)
	defer signal.Stop(sigterm)
	ctx, stopInt := signal.NotifyContext(context.WithoutCancel(ctx), os.Interrupt)
	defer stopInt()

	sess, err := awscloud.NewSession(ctx)
	if err != nil {
		return err
	}
	asg := sess.AutoScaling()
	build := Build()
	pages := &programPages{}
	deps := agent.Deps{
		Build:     agent.BuildInfo{Version: build.Version, Commit: build.Commit, GoVersion: build.GoVersion},
		Metadata:  sess.Metadata(),
		Group:     awscloud.NewGroup(asg),
		Completer: asg,
		Steps:     agent.NewStepRunner(cfg.Paths.JournalDir, log),
		SIGTERM:   sigterm,
		Metrics:   []prometheus.Collector{sess.Calls()},
		Settled:   func() { releaseStartup(log, pages) },
		// After the runtime's own collections only the mappings of the
		// program's pages go back; while a long poll waits, those of its
		// read-only data.
		Release: pages.release,
		Waiting: pages.releaseData,
	}
	if cfg.Leader.On() {
		leases := sess.Leases(cfg.Leader.Table)
		deps.Leader = agent.LeaderDeps{
			Store:  leases,
			Roster: leases,
			Ledger: func(group string) jobs.Ledger { return sess.Ledger(cfg.Leader.Table, group) },
		}
		if cfg.Leader.Tag.Enabled {
			deps.Leader.Tags = sess.InstanceTags()
		}
		if cfg.Leader.Mode == config.LeaderByTag {
			// Without metadata tags the agent reads its leader tag with
			// ec2:DescribeTags (the reader itself comes from IMDS).
			deps.Leader.TagDescriber = sess.InstanceTags()
		}
	}
	if cfg.Traffic.On() {
		deps.Traffic = trafficDeps(sess)
	}
	if cfg.Source == config.SourceSQS {
		deps.Inbox = sess.Inbox(awscloud.InboxOptions{
			QueueURL:          cfg.SQS.QueueURL,
			TopicARN:          cfg.SQS.TopicARN,
			QueuePrefix:       cfg.SQS.QueuePrefix,
			WaitTime:          time.Duration(cfg.SQS.WaitTime),
			VisibilityTimeout: time.Duration(cfg.SQS.VisibilityTimeout),
		})
	}
	ln, err := net.Listen("tcp", cfg.Status.Listen)
	if err != nil {
		return fmt.Errorf("status.listen %s: %w", cfg.Status.Listen, err)
	}
	deps.Status = ln
	a, err := agent.New(cfg, deps, log)
	if err != nil {
		_ = ln.Close() // nothing was served
		return err
	}
	if err := writeStatusAddress(cfg.Paths.JournalDir, ln.Addr().String()); err != nil {
		log.Warn("status address not recorded; commands that ask the agent need --status", "err", err)
	}
	log.Info("agent started", "status", "http://"+ln.Addr().String(), "source", cfg.Source, "on_sigterm", cfg.OnSIGTERM, "leader", cfg.Leader.Mode,
		"version", build.Version, "pid", os.Getpid())
	return a.Run(ctx)
}
