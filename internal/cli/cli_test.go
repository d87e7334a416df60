package cli_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/cli"
	"github.com/lifeguardhq/lifeguard/internal/sandbox"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := cli.Run(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), err
}

func TestSandboxHelpAndDocsListEveryDeviation(t *testing.T) {
	help, err := run(t, "sandbox", "--help")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/sandbox.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range sandbox.Deviations {
		if !strings.Contains(help, d) {
			t.Errorf("sandbox --help does not list deviation %q", d)
		}
		if !strings.Contains(string(doc), d) {
			t.Errorf("docs/sandbox.md does not list deviation %q", d)
		}
	}
}

func TestSandboxFlagErrorsNameTheFlagAndTheFix(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"listen without a port", []string{"sandbox", "--listen", "localhost"}, "--listen: \"localhost\" is not host:port (for example 127.0.0.1:4566)"},
		{"short account id", []string{"sandbox", "--account", "1234"}, "--account: \"1234\" is not a 12-digit AWS account id"},
		{"region typo", []string{"sandbox", "--region", "useast1"}, "--region: \"useast1\" is not a region name such as us-east-1"},
		{"log level", []string{"sandbox", "--log-level", "loud"}, "--log-level: \"loud\" is not one of debug, info, warn, error"},
		{"negative share", []string{"sandbox", "fault", "set", "--throttle", "1.5"}, "--throttle: 1.5 is not a share between 0 and 1"},
		{"clock needs a positive duration", []string{"sandbox", "clock", "advance", "0s"}, "is not a positive duration"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := run(t, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}
