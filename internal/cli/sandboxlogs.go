package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"
)

func newSandboxLogsCmd(stdout io.Writer) *cobra.Command {
	var endpoint string
	cmd := &cobra.Command{
		Use:   "logs FUNCTION",
		Short: "Print what a sandbox Lambda function has printed (START, END and REPORT lines included)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := adminEndpoint(endpoint) + "/_sandbox/functions/" + url.PathEscape(args[0]) + "/logs"
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, u, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("reach the sandbox at %s (is `lifeguard sandbox` running? set --endpoint): %w", u, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
				return fmt.Errorf("sandbox: %s: %s", resp.Status, b)
			}
			_, err = io.Copy(stdout, resp.Body)
			return err
		},
	}
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "the sandbox's endpoint (default $AWS_ENDPOINT_URL, else http://127.0.0.1:4566)")
	return cmd
}
