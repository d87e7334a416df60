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
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/spf13/cobra"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/controller"
	"github.com/lifeguardhq/lifeguard/internal/lease"
)

// EnvLambdaRuntimeAPI is set by AWS Lambda (and the sandbox's Lambda) in a
// function's environment: the controller then serves invocations.
const EnvLambdaRuntimeAPI = "AWS_LAMBDA_RUNTIME_API"

// EnvControllerFlags holds the controller's flags when the binary is a
// Lambda function's bootstrap started without arguments.
const EnvControllerFlags = "LIFEGUARD_CONTROLLER_FLAGS"

// lambdaArgs returns the command line of a binary started as a Lambda
// bootstrap without arguments: `controller` and $LIFEGUARD_CONTROLLER_FLAGS.
func lambdaArgs(args []string) []string {
	if len(args) > 0 || os.Getenv(EnvLambdaRuntimeAPI) == "" {
		return args
	}
	return append([]string{"controller"}, strings.Fields(os.Getenv(EnvControllerFlags))...)
}

// controllerConfig is `lifeguard controller`'s flags.
type controllerConfig struct {
	queueURL       string
	interval       time.Duration
	visibility     time.Duration
	optIn          string
	leaderKey      string
	leaderValue    string
	followerValue  string
	leaseTable     string
	reapGrace      time.Duration
	reapLaunch     string
	reapTerminate  string
	reapQueues     bool
	queuePrefix    string
	settle         time.Duration
	logs           logFlags
	lambdaDetected bool
}

// Validate checks the flags and how they relate.
func (c controllerConfig) Validate() error {
	var errs []error
	if k, v, ok := strings.Cut(c.optIn, "="); !ok || k == "" || v == "" {
		errs = append(errs, fmt.Errorf("--opt-in-tag: %q is not KEY=VALUE; use such as %s=%s", c.optIn, controller.DefaultOptInKey, controller.DefaultOptInValue))
	}
	if c.interval <= 0 {
		errs = append(errs, errors.New("--interval: must be positive, such as 1m"))
	}
	if c.queueURL != "" && c.visibility < 30*time.Second {
		errs = append(errs, fmt.Errorf("--visibility-timeout: %s is shorter than a reconcile may take; use 30s or more", c.visibility))
	}
	if min := 3 * lease.DefaultPresenceEvery; c.reapGrace < min {
		errs = append(errs, fmt.Errorf("--reap-grace: %s is too short: agents renew their presence every %s; use %s or more, such as 2m", c.reapGrace, lease.DefaultPresenceEvery, min))
	}
	for _, r := range []struct{ flag, v string }{{"--reap-launch-result", c.reapLaunch}, {"--reap-terminate-result", c.reapTerminate}} {
		if r.v != controller.ResultAbandon && r.v != controller.ResultContinue {
			errs = append(errs, fmt.Errorf("%s: %q is not CONTINUE or ABANDON", r.flag, r.v))
		}
	}
	if c.leaseTable == "" && !c.reapQueues && c.reapGrace != controller.DefaultReapGrace {
		errs = append(errs, errors.New("--reap-grace: the reaper runs only with --lease-table (agents' presence items) or --reap-queues"))
	}
	if c.reapQueues {
		if _, ok := controller.QueueInstance(c.queuePrefix, c.queuePrefix+"i-0123456789abcdef0"); !ok || c.queuePrefix == "" {
			errs = append(errs, fmt.Errorf("--queue-prefix: %q: give the agents' sqs.queue_prefix, such as %s", c.queuePrefix, controller.DefaultQueuePrefix))
		}
	}
	s := controller.Settings{Key: c.leaderKey, Value: c.leaderValue, FollowerValue: c.followerValue}.WithDefaults()
	if err := s.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--leader-tag-*: %w", err))
	}
	return errors.Join(errs...)
}

func newControllerCmd(stdout, stderr io.Writer) *cobra.Command {
	c := controllerConfig{}
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Keep exactly one leader tag per opted-in group and complete orphaned lifecycle actions",
		Long: `lifeguard controller serves every Auto Scaling group tagged
lifeguard:controller=enabled (--opt-in-tag). For each it keeps exactly one
instance tagged app:isLeader=true (--leader-tag-key, --leader-tag-value; a
group's tags lifeguard:leader-tag-key, lifeguard:leader-tag-value and
lifeguard:leader-tag-follower-value override them): it keeps the leader while
it is InService and healthy, else tags the oldest such instance, in the order
that never leaves two live leaders. With --lease-table it also completes the
lifecycle actions of instances whose agent is dead (no presence in the table
within --reap-grace): ABANDON for launches, CONTINUE for terminations. With
--reap-queues it deletes the agents' per-instance queues (--queue-prefix and
an instance id) and their SNS subscriptions once their instance has been
terminated or unknown to EC2 for --reap-grace.

It runs as a daemon reading an SQS queue fed by the groups' notification topic
or an EventBridge rule (--queue-url) and reconciling every group each
--interval; or, when AWS_LAMBDA_RUNTIME_API is set, as an AWS Lambda function
taking SNS, SQS, EventBridge and scheduled events (as the bootstrap without
arguments it reads its flags from LIFEGUARD_CONTROLLER_FLAGS). See
docs/controller.md.`,
		Example: `  lifeguard controller --queue-url https://sqs.us-east-1.amazonaws.com/123456789012/lifeguard-controller
  lifeguard controller --interval 30s --lease-table lifeguard-leases --reap-grace 2m
  LIFEGUARD_CONTROLLER_FLAGS="--leader-tag-key leader --leader-follower-value false" ./bootstrap`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.logs.validate(); err != nil {
				return err
			}
			if err := c.Validate(); err != nil {
				return usageError(err)
			}
			lc := config.Log{Level: config.LogInfo, Format: config.LogText}
			if os.Getenv(EnvLambdaRuntimeAPI) != "" {
				lc.Format = config.LogJSON
			}
			c.logs.apply(&lc)
			log, err := agentLogger(stderr, lc)
			if err != nil {
				return usageError(err)
			}
			return runController(cmd.Context(), c, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.queueURL, "queue-url", "", "the SQS queue of Auto Scaling notifications or EventBridge events to read (daemon); none: periodic reconciles only")
	f.DurationVar(&c.interval, "interval", controller.DefaultInterval, "reconcile every opted-in group this often (daemon)")
	f.DurationVar(&c.visibility, "visibility-timeout", 5*time.Minute, "how long a received message stays hidden while its groups are reconciled")
	f.StringVar(&c.optIn, "opt-in-tag", controller.DefaultOptInKey+"="+controller.DefaultOptInValue, "the group tag KEY=VALUE that opts a group in")
	f.StringVar(&c.leaderKey, "leader-tag-key", controller.DefaultLeaderKey, "the leader tag's key")
	f.StringVar(&c.leaderValue, "leader-tag-value", controller.DefaultLeaderValue, "the leader tag's value on the leader")
	f.StringVar(&c.followerValue, "leader-follower-value", "", "the leader tag's value on every other instance (such as false); empty: the key is deleted from them")
	f.StringVar(&c.leaseTable, "lease-table", "", "the lease table whose presence items tell live agents; turns the orphan reaper on")
	f.DurationVar(&c.reapGrace, "reap-grace", controller.DefaultReapGrace, "complete a waiting action after its agent has been silent this long")
	f.StringVar(&c.reapLaunch, "reap-launch-result", controller.ResultAbandon, "result of an orphaned launch action: ABANDON or CONTINUE")
	f.StringVar(&c.reapTerminate, "reap-terminate-result", controller.ResultContinue, "result of an orphaned terminate action: CONTINUE or ABANDON")
	f.BoolVar(&c.reapQueues, "reap-queues", false, "delete the per-instance queues and their subscriptions of instances gone for --reap-grace")
	f.StringVar(&c.queuePrefix, "queue-prefix", controller.DefaultQueuePrefix, "the agents' sqs.queue_prefix: queues named it and an instance id are per-instance queues")
	f.DurationVar(&c.settle, "settle", controller.DefaultSettle, "wait between writing tags and reading them back")
	c.logs.register(cmd)
	return cmd
}

func runController(ctx context.Context, c controllerConfig, log *slog.Logger) error {
	sess, err := awscloud.NewSession(ctx)
	if err != nil {
		return err
	}
	cloud := sess.ControllerCloud()
	deps := controller.Deps{Fleet: cloud, Tags: cloud, Completer: cloud}
	if c.leaseTable != "" {
		deps.Presence = sess.Leases(c.leaseTable)
	}
	if c.reapQueues {
		deps.Queues = sess.ControllerQueues()
	}
	key, value, _ := strings.Cut(c.optIn, "=")
	ctl, err := controller.New(controller.Config{
		OptInKey: key, OptInValue: value,
		Leader: controller.Settings{Key: c.leaderKey, Value: c.leaderValue, FollowerValue: c.followerValue},
		Reap:   controller.ReapSettings{Grace: c.reapGrace, Launch: c.reapLaunch, Terminate: c.reapTerminate},
		Settle: c.settle, QueuePrefix: c.queuePrefix,
	}, deps, log)
	if err != nil {
		return usageError(err)
	}
	if os.Getenv(EnvLambdaRuntimeAPI) != "" {
		log.Info("controller serving Lambda invocations", "version", Build().Version)
		// lambda.Start serves invocations until the environment is shut
		// down; it does not return.
		lambda.StartWithOptions(func(ctx context.Context, raw json.RawMessage) (controllerResult, error) {
			before := ctl.Stats()
			err := ctl.Handle(ctx, raw)
			after := ctl.Stats()
			return controllerResult{Reconciles: after.Reconciles - before.Reconciles, TagWrites: after.TagWrites - before.TagWrites,
				Reaped: after.Reaped - before.Reaped, QueuesDeleted: after.QueuesDeleted - before.QueuesDeleted}, err
		}, lambda.WithContext(ctx))
		return nil
	}
	var q controller.Queue
	if c.queueURL != "" {
		q = sess.ControllerQueue(c.queueURL, c.visibility)
	}
	log.Info("controller started", "queue", c.queueURL, "interval", c.interval, "reaper", c.leaseTable != "", "reap_queues", c.reapQueues, "version", Build().Version)
	return ctl.Run(ctx, q, controller.DaemonConfig{Interval: c.interval})
}

// controllerResult is a Lambda invocation's response.
type controllerResult struct {
	Reconciles int `json:"reconciles"`
	TagWrites  int `json:"tag_writes"`
	Reaped     int `json:"reaped"`
	// QueuesDeleted counts the gone instances' queues deleted.
	QueuesDeleted int `json:"queues_deleted"`
}
