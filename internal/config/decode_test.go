package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/config"
)

func TestParseAgentRejects(t *testing.T) {
	const step = "terminate:\n  steps:\n    - name: drain\n      timeout: 1m\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		// Unknown keys.
		{"misspelled key gets the nearest key", "terminate:\n  stpes: []\n",
			[]string{`terminate.stpes: unknown key; did you mean steps?`}},
		{"key in another case gets its spelling", "source: sqs\nsqs:\n  QueueURL: https://sqs.us-east-1.amazonaws.com/1/q\n",
			[]string{
				`sqs.QueueURL: unknown key; did you mean queue_url?`,
				`sqs: has neither queue_url nor topic_arn; set exactly one of queue_url and topic_arn when source is sqs`,
			}},
		{"truncated key gets the full key", "terminate:\n  heartbeat: 10s\n",
			[]string{`terminate.heartbeat: unknown key; did you mean heartbeat_interval?`}},
		{"key at the wrong level gets its place", "steps: []\n",
			[]string{`steps: unknown key; did you mean terminate.steps?`}},
		{"key valid in several places lists them", "launch:\n  probes:\n    - name: a\n      timeout: 1s\n      tcp: {address: '127.0.0.1:1'}\n",
			[]string{`launch.probes[0].timeout: unknown key; did you mean one of launch.probes[].http.timeout, launch.probes[].tcp.timeout, launch.probes[].command.timeout, launch.timeout, terminate.steps[].timeout, leader.jobs[].timeout?`}},
		{"unrelated key lists the keys here", "log:\n  colour: true\n",
			[]string{`log.colour: unknown key; the keys here are format, level`}},
		{"unknown key that is not a word is quoted", "\"a b\": 1\n",
			[]string{`"a b": unknown key; the keys here are source, imds, sqs, launch, terminate, on_sigterm, paths, status, log, leader, traffic`}},

		// Shapes and types.
		{"file that is not a mapping", "- source: imds\n",
			[]string{`the file is a list, not a mapping; use the keys source, imds, sqs, launch, terminate, on_sigterm, paths, status, log, leader, traffic`}},
		{"block that is not a mapping", "launch: [web]\n",
			[]string{`launch: is a list, not a mapping; use the keys hook, probes, consecutive_passes, interval, timeout, on_timeout, on_fatal`}},
		{"list that is a mapping", "terminate:\n  steps: {name: drain}\n",
			[]string{`terminate.steps: is a mapping, not a list; start each item on its own line with "- "`}},
		{"command written as a string", step + "      command: /usr/local/bin/drain --wait\n",
			[]string{`terminate.steps[0].command: is "/usr/local/bin/drain --wait", not a list; write the command as a list of arguments, such as ["/usr/local/bin/drain", "--wait"], or ["sh", "-c", "…"] for a shell`}},
		{"argv item with no value", step + "      command: [drain, ~]\n",
			[]string{`terminate.steps[0].command[1]: has no value; write a value, or "" for an empty one`}},
		{"argv item that is a list", step + "      command: [drain, [a]]\n",
			[]string{`terminate.steps[0].command[1]: is a list, not a single value; write a string`}},
		{"env value with no value", step + "      command: [drain]\n      env: {QUEUE: }\n",
			[]string{`terminate.steps[0].env.QUEUE: has no value; write "" for an empty value`}},
		{"env that is a list", step + "      command: [drain]\n      env: [QUEUE=jobs]\n",
			[]string{`terminate.steps[0].env: is a list, not a mapping; write NAME: value pairs, such as {QUEUE: jobs}`}},
		{"integer written as a word", "launch:\n  consecutive_passes: three\n",
			[]string{`launch.consecutive_passes: is "three", not a whole number; write a whole number such as 3`}},
		{"integer in quotes", "launch:\n  consecutive_passes: \"3\"\n",
			[]string{`launch.consecutive_passes: is "3", not a whole number; write the number without quotes`}},
		{"integer with a fraction", "launch:\n  consecutive_passes: 2.5\n",
			[]string{`launch.consecutive_passes: is 2.5, not a whole number; write a whole number such as 3`}},
		{"fatal exit codes as a number", "launch:\n  probes:\n    - name: c\n      command: {argv: [c], fatal_exit_codes: 3}\n",
			[]string{`launch.probes[0].command.fatal_exit_codes: is 3, not a list; write a list of numbers, such as [3, 4]`}},
		{"boolean written as a word", "status:\n  allow_non_loopback: maybe\n",
			[]string{`status.allow_non_loopback: is "maybe", not true or false; write true or false`}},
		{"duration without a unit", "launch:\n  timeout: 600\n",
			[]string{`launch.timeout: 600 has no unit; write 600s, not 600`}},
		{"duration that is a list", "launch:\n  timeout: [1m]\n",
			[]string{`launch.timeout: is a list, not a duration; write it like 30s, 5m or 1h30m`}},
		{"probe block that is a string", "launch:\n  probes:\n    - name: web\n      http: http://127.0.0.1/\n",
			[]string{`launch.probes[0].http: is "http://127.0.0.1/", not a mapping; use the keys url, status, body_contains, timeout`}},
		{"explicit zero probe timeout", "launch:\n  probes:\n    - name: db\n      tcp: {address: '127.0.0.1:5432', timeout: 0s}\n",
			[]string{`launch.probes[0].tcp.timeout: must be more than 0s; use a timeout such as 2s`}},

		// Documents and keys.
		{"key given twice", "source: imds\nlog: {}\nsource: sqs\n",
			[]string{`source: is given twice (lines 1 and 3); keep one`}},
		{"more than one document", "source: imds\n---\nsource: sqs\n",
			[]string{`the file holds more than one YAML document; keep only one`}},
		{"key that is a list", "[a]: 1\n",
			[]string{`has a key that is a list; keys are plain words`}},
		{"merge of a string", "log:\n  <<: text\n",
			[]string{`log: merges (<<) "text"; merge mappings only, such as <<: *defaults`}},

		// Decode and validation problems together, without repeats.
		{"decode and validation problems are reported together", "source: kinesis\nterminate:\n  stpes: []\n  steps:\n    - name: a\n      command: a b\n",
			[]string{
				`terminate.stpes: unknown key; did you mean steps?`,
				`terminate.steps[0].command: is "a b", not a list; write the command as a list of arguments, such as ["/usr/local/bin/drain", "--wait"], or ["sh", "-c", "…"] for a shell`,
				`source: "kinesis" is not one of imds, sqs`,
				`terminate.steps[0].timeout: missing; give each step a timeout such as 5m`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := config.ParseAgent([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("ParseAgent(%q) = %+v, want an error", tt.yaml, a)
			}
			if got := messages(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("ParseAgent(%q) errors =\n  %s\nwant\n  %s", tt.yaml, strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestParseAgentRejectsInvalidYAML(t *testing.T) {
	_, err := config.ParseAgent([]byte("source: [imds\n"))
	got := messages(t, err)
	if len(got) != 1 || !strings.HasPrefix(got[0], "invalid YAML: ") {
		t.Errorf("ParseAgent(broken YAML) = %q, want one problem starting \"invalid YAML: \"", got)
	}
}

func TestParseAgentBoundsMergeDepth(t *testing.T) {
	// Each anchor merges the previous one, nine levels deep.
	var b strings.Builder
	b.WriteString("terminate:\n  steps:\n    - &m0 {name: s0, command: [x], timeout: 1s}\n")
	for i := 1; i <= 9; i++ {
		b.WriteString("    - &m" + string(rune('0'+i)) + " {<<: *m" + string(rune('0'+i-1)) + ", name: s" + string(rune('0'+i)) + "}\n")
	}
	_, err := config.ParseAgent([]byte(b.String()))
	got := messages(t, err)
	want := []string{`terminate.steps[9]: has merge keys (<<) nested too deeply; write the values out`}
	if !slices.Equal(got, want) {
		t.Errorf("ParseAgent(deep merges) errors = %q, want %q", got, want)
	}
}

func TestParseAgentLocatesProblems(t *testing.T) {
	src := `source: imds
terminate:
  stpes: []
  steps:
    - name: drain
      command: [drain]
status:
  listen: 0.0.0.0:9110
`
	_, err := config.ParseAgent([]byte(src))
	var lines []int
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range u.Unwrap() {
			var fe *config.FieldError
			if errors.As(e, &fe) {
				lines = append(lines, fe.Line)
			}
		}
	}
	// The unknown key's line; the missing timeout's step; the listen value.
	if want := []int{3, 5, 8}; !slices.Equal(lines, want) {
		t.Errorf("problem lines = %v, want %v (%v)", lines, want, err)
	}
}

func TestLoadAgent(t *testing.T) {
	dir := t.TempDir()
	t.Run("valid file loads", func(t *testing.T) {
		path := filepath.Join(dir, "ok.yaml")
		if err := os.WriteFile(path, []byte("log: {format: json}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := config.LoadAgent(path)
		if err != nil {
			t.Fatal(err)
		}
		if a.Log.Format != config.LogJSON || a.Log.Level != config.LogInfo {
			t.Errorf("log = %+v, want json at info", a.Log)
		}
	})
	t.Run("problems start with file and line", func(t *testing.T) {
		path := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(path, []byte("source: imds\nterminate:\n  stpes: []\nlaunch:\n  timeout: 600\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := config.LoadAgent(path)
		want := []string{
			path + `:3: terminate.stpes: unknown key; did you mean steps?`,
			path + `:5: launch.timeout: 600 has no unit; write 600s, not 600`,
		}
		if got := messages(t, err); !slices.Equal(got, want) {
			t.Errorf("LoadAgent errors =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	})
	t.Run("missing file is fs.ErrNotExist", func(t *testing.T) {
		_, err := config.LoadAgent(filepath.Join(dir, "absent.yaml"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("LoadAgent(absent) = %v, want fs.ErrNotExist", err)
		}
	})
}

func TestParseAgentBoundsAliasExpansion(t *testing.T) {
	// 400 aliases of a step whose command is 400 aliases of one argument.
	var b strings.Builder
	b.WriteString("terminate:\n  steps:\n    - &s\n      name: a\n      timeout: 1s\n      command: [&x x")
	b.WriteString(strings.Repeat(", *x", 399))
	b.WriteString("]\n")
	b.WriteString(strings.Repeat("    - *s\n", 399))
	_, err := config.ParseAgent([]byte(b.String()))
	got := messages(t, err)
	const want = "the document expands to too many values through aliases; write the values out"
	if len(got) == 0 || !strings.HasSuffix(got[0], want) {
		t.Errorf("ParseAgent(alias bomb) first problem = %q, want one ending %q", got[:min(1, len(got))], want)
	}
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  config.FieldError
		want string
	}{
		{"path, problem and fix", config.FieldError{Path: "a.b", Problem: "is bad", Fix: "make it good", Line: 3}, "a.b: is bad; make it good"},
		{"no fix", config.FieldError{Path: "a", Problem: "is bad"}, "a: is bad"},
		{"whole document", config.FieldError{Problem: "the file is a list"}, "the file is a list"},
		{"file and line", config.FieldError{Path: "a", Problem: "is bad", File: "agent.yaml", Line: 7}, "agent.yaml:7: a: is bad"},
		{"file without a line", config.FieldError{Problem: "invalid YAML: x", File: "agent.yaml"}, "agent.yaml: invalid YAML: x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
