// Command lifeguard keeps EC2 Auto Scaling fleets safe through their
// lifecycle: lifecycle hooks, leader election, load balancer registration,
// and a local AWS sandbox to test it all.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/lifeguardhq/lifeguard/internal/cli"
	"github.com/lifeguardhq/lifeguard/internal/proc"
)

func main() {
	// A re-executed supervisor (a step's, an instance's) runs and exits here.
	proc.Main()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	code, msg := cli.ExitCode(err)
	if msg != "" {
		fmt.Fprintln(os.Stderr, "lifeguard:", msg)
	}
	os.Exit(code)
}
