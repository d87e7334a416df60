package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/config"
)

// statusShutdownBound bounds the status server's graceful shutdown.
const statusShutdownBound = 5 * time.Second

func newAgentCmd(stdout, stderr io.Writer) *cobra.Command {
	var path string
	var check bool
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Hold this instance's launch and termination until it is ready or done (runs on every instance)",
		Long: `lifeguard agent runs on each instance of an Auto Scaling group. On launch it
holds the instance in Pending:Wait until its readiness probes pass, then
completes the lifecycle action with CONTINUE (ABANDON when it can never become
ready). On termination it runs your steps in order while heartbeating, then
completes the action. It survives its own restart: a journal records every
step before it runs, and steps run under supervisors that outlive the agent.

The configuration is YAML; see docs/agent.md for every key.`,
		Example: `  lifeguard agent --config /etc/lifeguard/agent.yaml
  lifeguard agent --config agent.yaml --check-config`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadAgent(path)
			if err != nil {
				return err
			}
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
				return err
			}
			return runAgent(cmd.Context(), cfg, log)
		},
	}
	cmd.Flags().StringVar(&path, "config", "/etc/lifeguard/agent.yaml", "the agent's YAML configuration")
	cmd.Flags().BoolVar(&check, "check-config", false, "validate the configuration, print the effective one (every default shown) and exit")
	return cmd
}

func agentLogger(w io.Writer, c config.Log) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if c.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

func runAgent(ctx context.Context, cfg config.Agent, log *slog.Logger) error {
	// SIGTERM handling is the agent's own (on_sigterm): the caller's
	// context is cancelled by SIGTERM too, so the agent runs on a context
	// only SIGINT cancels.
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
	deps := agent.Deps{
		Metadata:  sess.Metadata(),
		Group:     awscloud.NewGroup(asg),
		Completer: asg,
		Steps:     agent.NewStepRunner(cfg.Paths.JournalDir, log),
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
	a, err := agent.New(cfg, deps, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Status.Listen)
	if err != nil {
		return fmt.Errorf("status.listen %s: %w", cfg.Status.Listen, err)
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusShutdownBound)
		defer cancel()
		_ = srv.Shutdown(shut)
		<-served
	}()
	log.Info("agent started", "status", "http://"+ln.Addr().String(), "source", cfg.Source, "on_sigterm", cfg.OnSIGTERM)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for {
		select {
		case err := <-done:
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		case <-sigterm:
			if cfg.OnSIGTERM == config.SIGTERMDrain {
				log.Info("SIGTERM: draining (on_sigterm: drain)")
				a.Drain()
				continue
			}
			log.Info("SIGTERM: exiting; the next agent resumes from the journal (on_sigterm: exit)")
			cancel()
		}
	}
}
