package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/cli"
)

// writeConfig writes an agent configuration into a fresh directory.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAgentCheckConfigPrintsTheEffectiveConfig(t *testing.T) {
	path := writeConfig(t, `terminate:
  steps:
    - name: drain
      command: [/usr/local/bin/drain, --wait]
      timeout: 5m
`)
	out, err := run(t, "agent", "--config", path, "--check-config")
	if err != nil {
		t.Fatalf("--check-config of a valid file: %v\n%s", err, out)
	}
	header := "# " + path + " is valid; the effective configuration:\n"
	if !strings.HasPrefix(out, header) {
		t.Errorf("output starts %q, want %q", firstLine(out), header)
	}
	for _, want := range []string{
		"source: imds\n",
		"  poll_interval: 5s\n",
		"  consecutive_passes: 3\n",
		"  timeout: 10m\n",
		"  result: CONTINUE\n",
		"    - name: drain\n",
		"      on_failure: continue\n",
		"      on_interrupt: rerun\n",
		"on_sigterm: exit\n",
		"  journal_dir: /var/lib/lifeguard\n",
		"  listen: 127.0.0.1:9110\n",
		"  level: info\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("effective configuration lacks %q:\n%s", want, out)
		}
	}

	t.Run("the effective configuration is itself valid and unchanged", func(t *testing.T) {
		again := writeConfig(t, strings.TrimPrefix(out, header))
		out2, err := run(t, "agent", "--config", again, "--check-config")
		if err != nil {
			t.Fatalf("--check-config of its own output: %v\n%s", err, out2)
		}
		if got, want := strings.TrimPrefix(out2, "# "+again+" is valid; the effective configuration:\n"), strings.TrimPrefix(out, header); got != want {
			t.Errorf("effective configuration changed on a second pass:\n%s\nwant\n%s", got, want)
		}
	})
}

func TestAgentBadConfigFailsNamingTheProblem(t *testing.T) {
	cases := []struct {
		name string
		yaml string // "" means the file does not exist
		want []string
	}{
		{
			name: "misspelled key names its path and the fix",
			yaml: "terminate:\n  stpes: []\n",
			want: []string{":2: terminate.stpes: unknown key; did you mean steps?"},
		},
		{
			name: "step without a timeout",
			yaml: "terminate:\n  steps:\n    - name: drain\n      command: [drain]\n",
			want: []string{"terminate.steps[0].timeout: missing; give each step a timeout such as 5m"},
		},
		{
			name: "duration without a unit",
			yaml: "launch:\n  timeout: 600\n",
			want: []string{":2: launch.timeout: 600 has no unit; write 600s, not 600"},
		},
		{
			name: "every problem is reported at once",
			yaml: "source: kinesis\nterminate:\n  stpes: []\n",
			want: []string{`source: "kinesis" is not one of imds, sqs`, "terminate.stpes: unknown key; did you mean steps?"},
		},
		{
			name: "missing file is named",
			want: []string{"read agent config: open ", "no such file or directory"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "absent.yaml")
			if c.yaml != "" {
				path = writeConfig(t, c.yaml)
			}
			// Without --check-config the agent must refuse to start just as
			// early: before it reaches for instance metadata.
			for _, args := range [][]string{
				{"agent", "--config", path, "--check-config"},
				{"agent", "--config", path},
			} {
				out, err := run(t, args...)
				if err == nil {
					t.Fatalf("%v succeeded with output %q, want an error", args, out)
				}
				if code, _ := cli.ExitCode(err); code != cli.ExitConfig {
					t.Errorf("%v: exit code %d, want %d (EX_CONFIG)", args, code, cli.ExitConfig)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("%v: error %q does not name the file %s", args, err, path)
				}
				for _, want := range c.want {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%v: error %q, want it to contain %q", args, err, want)
					}
				}
				if strings.Contains(out, "is valid") {
					t.Errorf("%v printed %q for an invalid configuration", args, out)
				}
			}
		})
	}
}

// TestSystemdUnitKeepsItsLoadBearingSettings guards the settings of the
// shipped unit that the agent's correctness depends on.
func TestSystemdUnitKeepsItsLoadBearingSettings(t *testing.T) {
	b, err := os.ReadFile("../../deploy/systemd/lifeguard-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string][]string{} // key → values, comments and blank lines dropped
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("unit line %q is not key=value", line)
			continue
		}
		settings[strings.TrimSpace(k)] = append(settings[strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	cases := []struct {
		key, want, why string
	}{
		{"KillMode", "process", "step supervisors must outlive a restart of the agent (the default control-group mode kills them with it)"},
		{"Restart", "on-failure", "a crashed agent must come back and resume from its journal"},
		{"ExecStart", "/usr/local/bin/lifeguard agent --config /etc/lifeguard/agent.yaml", "the documented install paths"},
		{"StateDirectory", "lifeguard", "gives /var/lib/lifeguard, the default paths.journal_dir"},
		{"RestartPreventExitStatus", "78", "an invalid configuration (exit 78) fails the same way on every restart"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			got := settings[c.key]
			if len(got) != 1 || got[0] != c.want {
				t.Errorf("%s = %q, want exactly %s=%s: %s", c.key, got, c.key, c.want, c.why)
			}
		})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func TestAgentConfigFromTheEnvironment(t *testing.T) {
	path := writeConfig(t, "log:\n  level: warn\n")
	t.Setenv("LIFEGUARD_CONFIG", path)
	out, err := run(t, "agent", "--check-config")
	if err != nil {
		t.Fatalf("--check-config with LIFEGUARD_CONFIG: %v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "# "+path+" is valid") || !strings.Contains(out, "  level: warn\n") {
		t.Errorf("output %q, want the file LIFEGUARD_CONFIG names", out)
	}

	t.Run("--config wins over LIFEGUARD_CONFIG", func(t *testing.T) {
		other := writeConfig(t, "log:\n  level: error\n")
		out, err := run(t, "agent", "--config", other, "--check-config")
		if err != nil || !strings.HasPrefix(out, "# "+other+" is valid") || !strings.Contains(out, "  level: error\n") {
			t.Errorf("--config %s: %v\n%s", other, err, out)
		}
	})
}

func TestAgentLogFlags(t *testing.T) {
	path := writeConfig(t, "log:\n  level: warn\n  format: text\n")
	out, err := run(t, "agent", "--config", path, "--check-config", "--log-level", "debug", "--log-format", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "  format: json\n") || !strings.Contains(out, "  level: debug\n") {
		t.Errorf("effective configuration %q, want the flags over the file's log section", out)
	}
	for _, args := range [][]string{{"--log-level", "loud"}, {"--log-format", "xml"}} {
		out, err := run(t, append([]string{"agent", "--config", path, "--check-config"}, args...)...)
		if code, _ := cli.ExitCode(err); code != cli.ExitUsage || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: %v (exit %d), want a usage error naming %s\n%s", args, err, code, args[0], out)
		}
	}
}

// TestCompletionOfEnumeratedFlags asks cobra's completion command, as a
// shell's completion script does, for the values of enumerated flags.
func TestCompletionOfEnumeratedFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"lifecycle", "complete", "--result", ""}, []string{"CONTINUE", "ABANDON"}},
		{[]string{"lifecycle", "status", "-o", ""}, []string{"text", "json"}},
		{[]string{"agent", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		{[]string{"agent", "--log-format", ""}, []string{"text", "json"}},
	} {
		out, err := run(t, append([]string{"__complete"}, c.args...)...)
		if err != nil {
			t.Fatalf("__complete %v: %v", c.args, err)
		}
		var got []string
		for line := range strings.SplitSeq(out, "\n") {
			if line != "" && !strings.HasPrefix(line, ":") && !strings.HasPrefix(line, "Completion ended") {
				got = append(got, line)
			}
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("__complete %v = %q, want %q", c.args, got, c.want)
		}
	}
}
