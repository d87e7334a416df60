// Package cli is lifeguard's command tree: each command's flags parse into
// a typed config, which is validated and then wired to the packages that do
// the work. It is the only package that imports everything.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Run executes the command line args and returns its error; ExitCode maps
// it to the process's exit code. Wrong flags, arguments and command names
// come back as usage errors (exit code 2).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRoot(stdout, stderr)
	root.SetArgs(lambdaArgs(args))
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil && isCobraUsageError(err) {
		return usageError(fmt.Errorf("%w\nRun '%s --help' for usage.", err, cmd.CommandPath()))
	}
	return err
}

// isCobraUsageError reports whether err is cobra's own complaint about the
// command line (an unknown command, a wrong number of arguments).
func isCobraUsageError(err error) bool {
	var exit *ExitError
	if errors.As(err, &exit) {
		return false
	}
	msg := err.Error()
	for _, p := range []string{"unknown command ", "accepts ", "requires at least ", "requires at most ", "requires exactly ", "received ", "invalid argument "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "lifeguard",
		Short: "Keep EC2 Auto Scaling instances safe through launch and termination",
		Long: `lifeguard holds Auto Scaling instances in their lifecycle wait states until
they are really ready or really done (lifeguard agent); elects one leader per
group with a lease in DynamoDB and a fencing token (lifeguard leader, lifeguard
run --leader-only, scheduled jobs in the agent) or keeps a leader tag
(lifeguard controller, which also completes the actions of dead agents);
registers instances with load balancers after warm-up and drains them before
shutdown (lifeguard traffic); and ships a local AWS sandbox that simulates
Auto Scaling groups to test it all (lifeguard sandbox, lifeguard demo).

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Build().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError(fmt.Errorf("%w\nRun '%s --help' for usage.", err, c.CommandPath()))
	})
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newSandboxCmd(stdout, stderr), newAgentCmd(stdout, stderr), newLifecycleCmd(stdout),
		newLeaderCmd(stdout, stderr), newControllerCmd(stdout, stderr), newRunCmd(stdout, stderr), newDemoCmd(stdout, stderr), newVersionCmd(stdout),
		newTrafficCmd(stdout, stderr), newIAMPolicyCmd(stdout), newBenchCmd(stdout, stderr))
	return root
}
