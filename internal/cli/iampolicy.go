package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/controller"
	"github.com/lifeguardhq/lifeguard/internal/iampolicy"
)

// newIAMPolicyCmd is `lifeguard iam-policy`: the least-privilege policy of
// the agent's instance role for a configuration, or of the controller's role
// for its flags.
func newIAMPolicyCmd(stdout io.Writer) *cobra.Command {
	var (
		path       string
		ctl        bool
		scope      iampolicy.Scope
		c          iampolicy.Controller
		optIn      string
		reapQueues bool
	)
	cmd := &cobra.Command{
		Use:   "iam-policy",
		Short: "Print the least-privilege IAM policy for an agent configuration or the controller",
		Long: `lifeguard iam-policy prints the IAM policy (JSON) that allows exactly the AWS
calls the features of an agent configuration make (--config), or those of
lifeguard controller with the given flags (--controller). ARNs are narrowed
to the queue, topic, table, target groups and load balancers named; --group,
--region and --account narrow them further. Instance metadata needs no
permission. See docs/deploy.md.`,
		Example: `  lifeguard iam-policy --config /etc/lifeguard/agent.yaml --group web
  lifeguard iam-policy --controller --lease-table lifeguard-leases --queue-url https://sqs.us-east-1.amazonaws.com/123456789012/lifeguard-controller`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				p   iampolicy.Policy
				err error
			)
			if ctl {
				key, value, ok := strings.Cut(optIn, "=")
				if !ok || key == "" {
					return usageError(fmt.Errorf("--opt-in-tag %q: want KEY=VALUE", optIn))
				}
				c.OptInKey, c.OptInValue, c.ReapQueues = key, value, reapQueues
				p, err = iampolicy.ForController(c, scope)
			} else {
				cfg, lerr := config.LoadAgent(agentConfigPath(cmd, path))
				if lerr != nil {
					return configError(lerr)
				}
				p, err = iampolicy.Agent(cfg, scope)
			}
			if err != nil {
				return usageError(err)
			}
			b, err := p.JSON()
			if err != nil {
				return err
			}
			_, err = stdout.Write(b)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "config", defaultAgentConfig, "the agent's configuration (default $LIFEGUARD_CONFIG, else "+defaultAgentConfig+")")
	f.BoolVar(&ctl, "controller", false, "print the controller's policy for the flags below instead")
	f.StringVar(&scope.Group, "group", "", "the Auto Scaling group's name: lifecycle actions and leader tag writes on it only")
	f.StringVar(&scope.Region, "region", "", "the region in ARNs (default *)")
	f.StringVar(&scope.Account, "account", "", "the account id in ARNs (default *)")
	f.StringVar(&scope.Partition, "partition", "", "the ARN partition (default aws)")
	f.StringVar(&c.QueueURL, "queue-url", "", "controller: its --queue-url")
	f.BoolVar(&c.SQSTrigger, "sqs-trigger", false, "controller: a Lambda function reads --queue-url through an event source mapping")
	f.StringVar(&c.LeaseTable, "lease-table", "", "controller: its --lease-table")
	f.BoolVar(&reapQueues, "reap-queues", false, "controller: its --reap-queues")
	f.StringVar(&c.QueuePrefix, "queue-prefix", controller.DefaultQueuePrefix, "controller: its --queue-prefix")
	f.StringVar(&optIn, "opt-in-tag", controller.DefaultOptInKey+"="+controller.DefaultOptInValue, "controller: its --opt-in-tag")
	f.StringVar(&c.LeaderKey, "leader-tag-key", controller.DefaultLeaderKey, "controller: its --leader-tag-key")
	return cmd
}
