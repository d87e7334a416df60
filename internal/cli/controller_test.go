package cli_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/cli"
)

func TestControllerRefusesBadFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--opt-in-tag", "enabled"}, "--opt-in-tag"},
		{[]string{"--reap-launch-result", "MAYBE"}, "--reap-launch-result"},
		{[]string{"--reap-grace", "5m"}, "only with --lease-table"},
		{[]string{"--lease-table", "leases", "--reap-grace", "5s"}, "too short"},
		{[]string{"--leader-tag-key", "aws:leader"}, "aws:"},
		{[]string{"--leader-follower-value", "true"}, "also the leader's value"},
		{[]string{"--queue-url", "https://q", "--visibility-timeout", "5s"}, "--visibility-timeout"},
		{[]string{"--reap-queues", "--queue-prefix", ""}, "--queue-prefix"},
		{[]string{"--reap-queues", "--reap-grace", "5s"}, "too short"},
	} {
		_, err := run(t, append([]string{"controller"}, tt.args...)...)
		var exit *cli.ExitError
		if !errors.As(err, &exit) || exit.Code != cli.ExitUsage || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("controller %v: %v, want a usage error naming %q", tt.args, err, tt.want)
		}
	}
}

func TestControllerHelp(t *testing.T) {
	out, err := run(t, "controller", "--help")
	if err != nil || !strings.Contains(out, "--queue-url") || !strings.Contains(out, "AWS_LAMBDA_RUNTIME_API") {
		t.Errorf("help = %q, %v", out, err)
	}
}
