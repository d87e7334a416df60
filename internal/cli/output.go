package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// outputFlag is the -o/--output flag (and its --json shorthand) of every
// command that prints state: "text" for people, "json" for scripts.
type outputFlag struct {
	format string
	asJSON bool
}

var outputFormats = []string{"text", "json"}

func (o *outputFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "output format: "+strings.Join(outputFormats, " or "))
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "short for -o json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats, cobra.ShellCompDirectiveNoFileComp))
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if err := o.validate(); err != nil {
			return err
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

func (o *outputFlag) validate() error {
	switch o.format {
	case "text", "json":
		return nil
	}
	return usageError(fmt.Errorf("--output: %q is not one of %s", o.format, strings.Join(outputFormats, ", ")))
}

func (o *outputFlag) json() bool { return o.asJSON || o.format == "json" }
