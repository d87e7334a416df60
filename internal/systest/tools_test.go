package systest_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/interop"
)

// requireTool returns what find returns, or skips the test loudly (fails
// under CI=true).
func requireTool(t *testing.T, what string, find func() (string, error)) string {
	t.Helper()
	return interop.Require(t, what, find)
}

// awsCLI returns the path of an AWS CLI whose version starts with major
// ("1." or "2.").
func awsCLI(t *testing.T, major string) string {
	return requireTool(t, "AWS CLI v"+strings.TrimSuffix(major, "."), func() (string, error) {
		var candidates []string
		if p, err := exec.LookPath("aws"); err == nil {
			candidates = append(candidates, p)
		}
		candidates = append(candidates, "/usr/bin/aws", "/usr/local/bin/aws")
		for _, p := range candidates {
			out, err := exec.Command(p, "--version").CombinedOutput()
			if err == nil && strings.HasPrefix(string(out), "aws-cli/"+major) {
				return p, nil
			}
		}
		return "", fmt.Errorf("no aws-cli/%s* among %v", major, candidates)
	})
}

// freePort returns a free loopback port.
func freePort(t *testing.T) int { return interop.FreePort(t) }

// startMoto runs moto_server on a free loopback port for the test.
func startMoto(t *testing.T) string { return interop.Moto(t) }
