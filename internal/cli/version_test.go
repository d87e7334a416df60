package cli_test

import (
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/cli"
)

func TestVersionReportsTheBuild(t *testing.T) {
	out, err := run(t, "version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var b cli.BuildInfo
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatalf("version -o json is not JSON: %v\n%s", err, out)
	}
	if b.GoVersion != runtime.Version() || b.Version == "" || b.Commit == "" || b.BuildDate == "" {
		t.Errorf("version = %+v, want every field set and the Go version %s", b, runtime.Version())
	}
	text, err := run(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	flag, err := run(t, "--version")
	if err != nil {
		t.Fatal(err)
	}
	if text != flag || !strings.Contains(text, b.Version) || !strings.Contains(text, runtime.Version()) {
		t.Errorf("version = %q, --version = %q: want the same line naming %s and %s", text, flag, b.Version, runtime.Version())
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"success", []string{"version"}, cli.ExitOK, ""},
		{"unknown command", []string{"bogus"}, cli.ExitUsage, `unknown command "bogus"`},
		{"unknown flag", []string{"version", "--bogus"}, cli.ExitUsage, "unknown flag: --bogus"},
		{"extra argument", []string{"version", "extra"}, cli.ExitUsage, `unknown command "extra"`},
		{"bad output format", []string{"version", "-o", "yaml"}, cli.ExitUsage, `--output: "yaml" is not one of text, json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(t, tt.args...)
			code, msg := cli.ExitCode(err)
			if code != tt.code || !strings.Contains(msg, tt.msg) {
				t.Errorf("exit code %d, message %q; want %d and a message containing %q", code, msg, tt.code, tt.msg)
			}
		})
	}
	if code, msg := cli.ExitCode(errors.New("boom")); code != cli.ExitFailure || msg != "boom" {
		t.Errorf("ExitCode(plain error) = %d, %q; want 1, boom", code, msg)
	}
	if code, msg := cli.ExitCode(&cli.ExitError{Code: 3}); code != 3 || msg != "" {
		t.Errorf("ExitCode(silent exit 3) = %d, %q; want 3 and nothing to print", code, msg)
	}
}

func TestRootHelpDocumentsExitCodes(t *testing.T) {
	help, err := run(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0 success", "1 failure", "2 usage", "78 invalid configuration"} {
		if !strings.Contains(help, want) {
			t.Errorf("lifeguard --help does not say %q:\n%s", want, help)
		}
	}
}
