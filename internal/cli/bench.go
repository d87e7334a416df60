package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeguardhq/lifeguard/internal/bench"
)

func newBenchCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		only          []string
		asJSON, quick bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure lifeguard against a local sandbox and print one table of figures and goals",
		Long: `lifeguard bench runs repeatable scenarios against a sandbox started from this
binary (real limits, real instance processes running this binary as their
agent) and prints one table: each figure, its goal, whether it is met, and how
it was measured. A live progress line goes to standard error.

Scenarios, in run order:
` + scenarioList() + `
The whole run takes a few minutes; --quick takes fewer samples (rough figures).
See docs/bench.md for what each row measures.

It exits 0 when the run went through, whether or not every goal is met (it is
a measurement); 1 when a scenario could not run (its files are kept and
named); 2 for a wrong flag or an unknown scenario (the valid names are
printed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scenarios, err := bench.Select(only)
			if err != nil {
				return usageError(err)
			}
			bin, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find this binary (the instances run it): %w", err)
			}
			dir, err := os.MkdirTemp("", "lifeguard-bench-")
			if err != nil {
				return err
			}
			p := newProgress(stderr)
			start := time.Now()
			res, runErr := bench.Run(cmd.Context(), bench.Env{Binary: bin, Dir: dir, Progress: p.line, Quick: quick}, scenarios)
			p.done(fmt.Sprintf("%d scenarios in %v", len(scenarios), time.Since(start).Round(time.Second)))
			if runErr == nil {
				_ = os.Remove(dir) // each scenario removed its own
			}
			if asJSON {
				err = bench.WriteJSON(stdout, res)
			} else {
				err = bench.WriteTable(stdout, res.Rows)
			}
			return errors.Join(runErr, err)
		},
	}
	cmd.Flags().StringSliceVar(&only, "only", nil, "run only these scenarios (comma-separated names: "+strings.Join(bench.Names(), ",")+")")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rows as JSON instead of a table")
	cmd.Flags().BoolVar(&quick, "quick", false, "fewer samples and shorter windows: rough figures in seconds")
	return cmd
}

// progressWidth is the longest progress line written on a terminal.
const progressWidth = 79

// progress is the live progress line: one line rewritten in place on a
// terminal, plain lines otherwise.
type progress struct {
	w    io.Writer
	tty  bool
	mu   sync.Mutex
	last int // length of the line on screen (tty)
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) line(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		fmt.Fprintln(p.w, msg)
		return
	}
	// A line longer than the terminal would wrap, and \r would then
	// rewrite only its last part.
	if r := []rune(msg); len(r) > progressWidth {
		msg = string(r[:progressWidth-1]) + "…"
	}
	pad := ""
	if n := len([]rune(msg)); n < p.last {
		pad = strings.Repeat(" ", p.last-n)
	}
	fmt.Fprint(p.w, "\r"+msg+pad)
	p.last = len([]rune(msg))
}

// done ends the progress line with a last message.
func (p *progress) done(msg string) {
	p.line("%s", msg)
	if p.tty {
		p.mu.Lock()
		fmt.Fprintln(p.w)
		p.mu.Unlock()
	}
}

// scenarioList is one line per scenario for the help: its name and what
// it measures.
func scenarioList() string {
	var b strings.Builder
	for _, s := range bench.All() {
		fmt.Fprintf(&b, "  %-8s %s\n", s.Name, s.About)
	}
	return b.String()
}
