package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/lifeguardhq/lifeguard/internal/demo"
)

func newDemoCmd(stdout, _ io.Writer) *cobra.Command {
	var keep bool
	var scenario, stateDir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch lifeguard's whole story in a local sandbox: lifecycle hooks, leadership, load balancing, the controller",
		Long: `lifeguard demo starts the sandbox in this process and tells lifeguard's whole
story. A group of three instances runs lifeguard agent and a small web app
behind a load balancer's target group, with a launch hook, a terminate hook,
leadership by a DynamoDB lease and a leader-only scheduled job; a second group
keeps the seed's app:isLeader tag through the controller, deployed as a Lambda
function. Then, while a client sends steady traffic through the load balancer:
a scale-out, a scale-in of the leader, a kill -9 of the next leader's agent, a
spot interruption and a rolling restart (each instance replaced in turn, one at
a time). A timeline shows each state, lease holder and fencing token, step,
heartbeat and the requests served and failed; a table sums it up. It needs
nothing but this binary and leaves no process behind.

--scenario runs one part alone:
` + demo.ScenarioHelp(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := demo.CheckScenario(scenario); err != nil {
				return usageError(err)
			}
			bin, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the lifeguard binary to run on instances: %w", err)
			}
			return demo.Run(cmd.Context(), demo.Options{Out: stdout, Bin: bin, Scenario: scenario, Keep: keep, StateDir: stateDir})
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the sandbox running afterwards and print how to reach it (Ctrl-C stops it)")
	cmd.Flags().StringVar(&scenario, "scenario", "", "run one part alone: lifecycle, leader, traffic or tag")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "keep the instances' directories (consoles, agents' journals) and the Lambda function's in this new or empty directory, instead of a temporary one removed at exit")
	var port int
	app := &cobra.Command{
		Use:    "app",
		Short:  "The demo's web app, as the demo's instances run it",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port < 1 || port > 65535 {
				return usageError(fmt.Errorf("--port: %d is not a TCP port; use 1 to 65535", port))
			}
			return demo.ServeApp(cmd.Context(), stdout, port)
		},
	}
	app.Flags().IntVar(&port, "port", 8080, "the port to serve on, on the instance's private IP")
	cmd.AddCommand(app)
	return cmd
}
