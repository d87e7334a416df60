package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/jobs"
	"github.com/lifeguardhq/lifeguard/internal/lease"
)

// Exit codes of `lifeguard leader status`, for scripts that branch on
// leadership. 1 and 2 mean something else here than for other commands
// (failure, usage): a script can write `if lifeguard leader status; then`.
const (
	exitLeading    = 0
	exitNotLeading = 1
	exitUnknown    = 2
)

// statusAddressFile is the file in paths.journal_dir where the agent
// writes the address its status server got (status.listen may have port
// 0), for the commands that ask it.
const statusAddressFile = "status-address"

// defaultAgentConfig is where the commands that ask the agent find its
// configuration unless --config says otherwise.
const defaultAgentConfig = "/etc/lifeguard/agent.yaml"

// agentFlags locate the local agent's status server: --status, or the
// agent's configuration (status.listen; with port 0, the address the agent
// wrote in its journal directory).
type agentFlags struct {
	config string
	status string
}

func (f *agentFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.config, "config", defaultAgentConfig, "the agent's configuration, read for status.listen, paths.journal_dir and leader.table (default $LIFEGUARD_CONFIG, else "+defaultAgentConfig+")")
	cmd.Flags().StringVar(&f.status, "status", "", "the agent's status address (host:port); overrides the configuration's")
}

// load reads the agent's configuration; a missing default file is the
// default configuration.
func (f *agentFlags) load(cmd *cobra.Command) (config.Agent, error) {
	path := agentConfigPath(cmd, f.config)
	cfg, err := config.LoadAgent(path)
	if err != nil {
		if path == defaultAgentConfig && !cmd.Flags().Changed("config") && errors.Is(err, os.ErrNotExist) {
			return config.DefaultAgent(), nil
		}
		return config.Agent{}, configError(err)
	}
	return cfg, nil
}

// address returns the agent's status address.
func (f *agentFlags) address(cmd *cobra.Command) (string, config.Agent, error) {
	cfg, err := f.load(cmd)
	if err != nil {
		return "", cfg, err
	}
	if f.status != "" {
		return f.status, cfg, nil
	}
	if _, port, err := net.SplitHostPort(cfg.Status.Listen); err == nil && port != "0" {
		return cfg.Status.Listen, cfg, nil
	}
	b, err := os.ReadFile(filepath.Join(cfg.Paths.JournalDir, statusAddressFile))
	if err != nil {
		return "", cfg, fmt.Errorf("status.listen is %s and the agent has not said which port it got (%w): is it running? Give --status", cfg.Status.Listen, err)
	}
	return strings.TrimSpace(string(b)), cfg, nil
}

// writeStatusAddress records the status server's address for the commands
// that ask the agent (atomically: write, then rename).
func writeStatusAddress(journalDir, addr string) error {
	if err := os.MkdirAll(journalDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(journalDir, statusAddressFile)
	if err := os.WriteFile(path+".tmp", []byte(addr+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// agentClient asks the local agent's status server.
type agentClient struct {
	addr string
	http *http.Client
}

func newAgentClient(addr string) *agentClient {
	return &agentClient{addr: addr, http: &http.Client{Timeout: 45 * time.Second}}
}

// leader asks GET /leader; query may hold wait, leading and token.
func (c *agentClient) leader(ctx context.Context, query url.Values) (agent.LeaderDoc, error) {
	u := "http://" + c.addr + "/leader"
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return c.do(ctx, http.MethodGet, u)
}

func (c *agentClient) resign(ctx context.Context) (agent.LeaderDoc, error) {
	return c.do(ctx, http.MethodPost, "http://"+c.addr+"/leader/resign")
}

func (c *agentClient) do(ctx context.Context, method, u string) (agent.LeaderDoc, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return agent.LeaderDoc{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return agent.LeaderDoc{}, fmt.Errorf("ask the agent at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	var d agent.LeaderDoc
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return agent.LeaderDoc{}, fmt.Errorf("ask the agent at %s: %s: %w", c.addr, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("the agent at %s: %s", c.addr, d.Error)
	}
	return d, nil
}

func newLeaderCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "leader",
		Short: "Leader election: create the lease table, ask who leads, resign, list scheduled runs",
		Long: `lifeguard elects one leader per Auto Scaling group with a lease in DynamoDB
(leader.mode: lease in the agent's configuration; see docs/leader.md). These
commands ask the local agent (its status server) or the lease table.`,
	}
	cmd.AddCommand(newLeaderCreateTableCmd(stdout), newLeaderStatusCmd(stdout, stderr), newLeaderResignCmd(stdout), newLeaderHistoryCmd(stdout))
	return cmd
}

func newLeaderCreateTableCmd(stdout io.Writer) *cobra.Command {
	var table string
	cmd := &cobra.Command{
		Use:   "create-table",
		Short: "Create the lease table (on-demand billing, TTL on old runs); safe to run again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if table == "" {
				return usageError(errors.New("--table: required (the name leader.table gives)"))
			}
			sess, err := awscloud.NewSession(cmd.Context())
			if err != nil {
				return err
			}
			if err := sess.CreateLeaseTable(cmd.Context(), table); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "lease table %s is ACTIVE\n", table)
			return nil
		},
	}
	cmd.Flags().StringVar(&table, "table", "", "the table's name (required)")
	return cmd
}

func newLeaderStatusCmd(stdout, stderr io.Writer) *cobra.Command {
	var af agentFlags
	var out outputFlag
	var all bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Say whether this instance leads (exit 0 leading, 1 not leading, 2 unknown)",
		Long: `Asks the local agent (GET /leader on its status server) whether this instance
leads, and prints the holder, the fencing token and the lease's end. With --all
it also lists the group's live members from the lease table.

Exit codes, unlike other commands': 0 this instance leads; 1 it does not; 2
unknown (the agent cannot be reached, leader election is off, or the lease
table has not answered within a lease). A script can therefore write
"if lifeguard leader status >/dev/null; then ...".`,
		Example: `  lifeguard leader status
  lifeguard leader status --all -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, cfg, err := af.address(cmd)
			if err != nil {
				fmt.Fprintln(stderr, "lifeguard:", err)
				return &ExitError{Code: exitUnknown}
			}
			d, err := newAgentClient(addr).leader(cmd.Context(), nil)
			if err != nil {
				fmt.Fprintln(stderr, "lifeguard:", err)
				return &ExitError{Code: exitUnknown}
			}
			var members []lease.Member
			if all {
				if members, err = liveMembers(cmd.Context(), cfg, d.Group); err != nil {
					return err
				}
			}
			if out.json() {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					agent.LeaderDoc
					Members []lease.Member `json:"members,omitempty"`
				}{d, members}); err != nil {
					return err
				}
			} else {
				printLeader(stdout, d, members, all)
			}
			switch {
			case d.Leading:
				return nil
			case d.Known:
				return &ExitError{Code: exitNotLeading}
			}
			return &ExitError{Code: exitUnknown}
		},
	}
	af.register(cmd)
	out.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "also list the group's live members (reads the lease table)")
	return cmd
}

// liveMembers reads the group's members from the lease table.
func liveMembers(ctx context.Context, cfg config.Agent, group string) ([]lease.Member, error) {
	if cfg.Leader.Table == "" || group == "" {
		return nil, errors.New("--all: the agent's configuration names no leader.table, or the agent does not know its group yet")
	}
	sess, err := awscloud.NewSession(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := sess.Leases(cfg.Leader.Table).Members(ctx, group)
	if err != nil {
		return nil, err
	}
	return lease.Live(ms, time.Now(), lease.DefaultPresenceEvery), nil
}

func printLeader(w io.Writer, d agent.LeaderDoc, members []lease.Member, all bool) {
	state := "not leading"
	switch {
	case d.Leading:
		state = "leading"
	case !d.Known:
		state = "unknown (the lease table has not answered lately)"
	}
	holder := d.Holder
	if holder == "" {
		holder = "(none)"
	}
	end := "(none)"
	if !d.LeaseEnd.IsZero() {
		end = d.LeaseEnd.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "instance:  %s\ngroup:     %s\nthis:      %s\nholder:    %s\ntoken:     %d\nlease end: %s\n", d.Instance, d.Group, state, holder, d.Token, end)
	if !all {
		return
	}
	fmt.Fprintln(w, "members:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, m := range members {
		lead := ""
		if m.Instance == d.Holder && d.Holder != "" {
			lead = "holder"
		}
		fmt.Fprintf(tw, "  %s\t%s\tready=%t\t%s\t%s\n", m.Instance, m.State, m.Ready, m.Renewed.UTC().Format(time.RFC3339), lead)
	}
	_ = tw.Flush()
}

func newLeaderResignCmd(stdout io.Writer) *cobra.Command {
	var af agentFlags
	cmd := &cobra.Command{
		Use:   "resign",
		Short: "Hand this instance's leadership off at once (its jobs stop, the lease is released)",
		Long: `Asks the local agent to resign: its leader-only work is stopped, the lease is
released naming the most suitable live member, and the agent does not
campaign again for one lease duration. Nothing happens when it does not lead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, _, err := af.address(cmd)
			if err != nil {
				return err
			}
			d, err := newAgentClient(addr).resign(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s does not lead; lease holder %s, token %d\n", d.Instance, orNone(d.Holder), d.Token)
			return nil
		},
	}
	af.register(cmd)
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func newLeaderHistoryCmd(stdout io.Writer) *cobra.Command {
	var af agentFlags
	var out outputFlag
	var job, table, group string
	var n int
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Print the recent runs of the scheduled jobs, newest first (from the run ledger)",
		Long: `Prints the recent runs of the leader's scheduled jobs from the run ledger in the
lease table: slot, instance, fencing token, claim time, end and outcome. The
table, the group and the jobs come from the agent's configuration and the
local agent unless --table, --group and --job say otherwise.`,
		Example: `  lifeguard leader history
  lifeguard leader history --job nightly-report -n 5 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := af.load(cmd)
			if err != nil {
				return err
			}
			if n < 1 {
				return usageError(fmt.Errorf("--number: %d; ask for at least 1 run", n))
			}
			if table == "" {
				table = cfg.Leader.Table
			}
			if table == "" {
				return usageError(errors.New("--table: required when the agent's configuration names no leader.table"))
			}
			if group == "" {
				addr, _, err := af.address(cmd)
				if err != nil {
					return fmt.Errorf("--group not given, and the agent cannot tell its group: %w", err)
				}
				d, err := newAgentClient(addr).leader(cmd.Context(), nil)
				if err != nil || d.Group == "" {
					return fmt.Errorf("--group not given, and the agent cannot tell its group: %v", errText(err, "not known yet"))
				}
				group = d.Group
			}
			names := []string{job}
			if job == "" {
				names = nil
				for _, j := range cfg.Leader.Jobs {
					names = append(names, j.Name)
				}
				if len(names) == 0 {
					return usageError(errors.New("--job: required when the agent's configuration has no leader.jobs"))
				}
			}
			sess, err := awscloud.NewSession(cmd.Context())
			if err != nil {
				return err
			}
			ledger := sess.Ledger(table, group)
			var runs []jobs.Record
			for _, name := range names {
				rs, err := ledger.Recent(cmd.Context(), name, n)
				if err != nil {
					return err
				}
				runs = append(runs, rs...)
			}
			if out.json() {
				type run struct {
					Job      string    `json:"job"`
					Slot     time.Time `json:"slot"`
					Instance string    `json:"instance"`
					Token    uint64    `json:"token"`
					Claimed  time.Time `json:"claimed"`
					Ended    time.Time `json:"ended,omitzero"`
					Outcome  string    `json:"outcome,omitempty"`
				}
				list := make([]run, 0, len(runs))
				for _, r := range runs {
					list = append(list, run{r.Job, r.Slot, r.Instance, r.Token, r.Claimed, r.Ended, r.Outcome})
				}
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tSLOT\tINSTANCE\tTOKEN\tCLAIMED\tENDED\tOUTCOME")
			for _, r := range runs {
				ended, outcome := "-", r.Outcome
				if !r.Ended.IsZero() {
					ended = r.Ended.UTC().Format(time.RFC3339)
				}
				if outcome == "" {
					outcome = "(running, or its runner vanished)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Job, r.Slot.UTC().Format(time.RFC3339), r.Instance, r.Token, r.Claimed.UTC().Format(time.RFC3339), ended, outcome)
			}
			return tw.Flush()
		},
	}
	af.register(cmd)
	out.register(cmd)
	cmd.Flags().StringVar(&job, "job", "", "the job; default every job of leader.jobs")
	cmd.Flags().StringVar(&table, "table", "", "the lease table; default leader.table")
	cmd.Flags().StringVar(&group, "group", "", "the Auto Scaling group; default the local agent's")
	cmd.Flags().IntVarP(&n, "number", "n", 20, "runs per job")
	return cmd
}

// errText returns err's text, or alt when err is nil.
func errText(err error, alt string) string {
	if err != nil {
		return err.Error()
	}
	return alt
}
