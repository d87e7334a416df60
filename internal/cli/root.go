// Package cli is lifeguard's command tree: each command's flags parse into
// a typed config, which is validated and then wired to the packages that do
// the work. It is the only package that imports everything.
package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X …/cli.Version=v1.2.3".
var Version = "dev"

// ExitError asks main to exit with a code, having printed what it had to.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Run executes the command line args and returns its error.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "lifeguard",
		Short: "Keep EC2 Auto Scaling instances safe through launch and termination",
		Long: `lifeguard holds Auto Scaling instances in their lifecycle wait states until
they are really ready or really done, elects one leader per group, registers
instances with load balancers, and ships a local AWS sandbox to test all of it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newSandboxCmd(stdout, stderr), newAgentCmd(stdout, stderr), newLifecycleCmd(stdout), newDemoCmd(stdout, stderr))
	return root
}
