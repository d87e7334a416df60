package config_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/config"
)

func TestDefaults(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(*config.Agent) // applied to DefaultAgent()
	}{
		{"empty file is the defaults", "", func(*config.Agent) {}},
		{"comments only is the defaults", "# nothing yet\n", func(*config.Agent) {}},
		{"null document is the defaults", "~\n", func(*config.Agent) {}},
		{"empty block keeps its defaults", "launch:\nterminate: {}\n", func(*config.Agent) {}},
		{"null value keeps the default", "launch:\n  timeout: ~\n", func(*config.Agent) {}},
		{
			"a key set keeps its siblings' defaults",
			"launch:\n  timeout: 20m\n",
			func(a *config.Agent) { a.Launch.Timeout = config.Duration(20 * time.Minute) },
		},
		{
			"http probe gets status 200 and timeout 2s",
			"launch:\n  probes:\n    - name: web\n      http: {url: 'http://127.0.0.1:8080/'}\n",
			func(a *config.Agent) {
				a.Launch.Probes = []config.Probe{{Name: "web", HTTP: &config.HTTPProbe{
					URL: "http://127.0.0.1:8080/", Status: 200, Timeout: config.Duration(2 * time.Second)}}}
			},
		},
		{
			"tcp probe gets timeout 2s",
			"launch:\n  probes:\n    - name: db\n      tcp: {address: '127.0.0.1:5432'}\n",
			func(a *config.Agent) {
				a.Launch.Probes = []config.Probe{{Name: "db", TCP: &config.TCPProbe{
					Address: "127.0.0.1:5432", Timeout: config.Duration(2 * time.Second)}}}
			},
		},
		{
			"command probe gets timeout 30s",
			"launch:\n  probes:\n    - name: check\n      command: {argv: [check]}\n",
			func(a *config.Agent) {
				a.Launch.Probes = []config.Probe{{Name: "check", Command: &config.CommandProbe{
					Argv: []string{"check"}, Timeout: config.Duration(30 * time.Second)}}}
			},
		},
		{
			"step gets on_failure continue and on_interrupt rerun",
			"terminate:\n  steps:\n    - {name: drain, command: [drain], timeout: 5m}\n",
			func(a *config.Agent) {
				a.Terminate.Steps = []config.Step{{Name: "drain", Command: []string{"drain"}, Timeout: config.Duration(5 * time.Minute),
					OnFailure: config.FailureContinue, OnInterrupt: config.InterruptRerun}}
			},
		},
		{
			"empty lists and maps are nil",
			"launch:\n  probes: []\nterminate:\n  steps:\n    - {name: a, command: [a], timeout: 1s, env: {}}\n",
			func(a *config.Agent) {
				a.Terminate.Steps = []config.Step{{Name: "a", Command: []string{"a"}, Timeout: config.Duration(time.Second),
					OnFailure: config.FailureContinue, OnInterrupt: config.InterruptRerun}}
			},
		},
		{
			"merge keys and aliases apply, own keys winning",
			`terminate:
  steps:
    - &base
      name: first
      command: &cmd [/usr/local/bin/drain]
      timeout: 1m
      on_failure: abandon
    - <<: *base
      name: second
      command: *cmd
`,
			func(a *config.Agent) {
				s := config.Step{Name: "first", Command: []string{"/usr/local/bin/drain"}, Timeout: config.Duration(time.Minute),
					OnFailure: config.FailureAbandon, OnInterrupt: config.InterruptRerun}
				s2 := s
				s2.Name = "second"
				a.Terminate.Steps = []config.Step{s, s2}
			},
		},
		{
			"env values may be numbers and booleans",
			"terminate:\n  steps:\n    - {name: a, command: [a], timeout: 1s, env: {PORT: 8080, DEBUG: true, EMPTY: ''}}\n",
			func(a *config.Agent) {
				a.Terminate.Steps = []config.Step{{Name: "a", Command: []string{"a"}, Timeout: config.Duration(time.Second),
					Env:       map[string]string{"PORT": "8080", "DEBUG": "true", "EMPTY": ""},
					OnFailure: config.FailureContinue, OnInterrupt: config.InterruptRerun}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.ParseAgent([]byte(tt.yaml))
			if err != nil {
				t.Fatalf("ParseAgent: %v", err)
			}
			want := config.DefaultAgent()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ParseAgent =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestDefaultAgentIsValid(t *testing.T) {
	if err := config.DefaultAgent().Validate(); err != nil {
		t.Fatalf("DefaultAgent().Validate() = %v", err)
	}
}

func TestYAMLShowsEveryDefault(t *testing.T) {
	got, err := config.DefaultAgent().YAML()
	if err != nil {
		t.Fatal(err)
	}
	want := `source: imds
imds:
  poll_interval: 5s
sqs:
  queue_url: ""
  topic_arn: ""
  queue_prefix: lifeguard-
  wait_time: 20s
  visibility_timeout: 30s
launch:
  hook: ""
  probes: []
  consecutive_passes: 3
  interval: 2s
  timeout: 10m
  on_timeout: abandon
  on_fatal: abandon
terminate:
  hook: ""
  heartbeat_interval: 0s
  result: CONTINUE
  steps: []
on_sigterm: exit
paths:
  journal_dir: /var/lib/lifeguard
status:
  listen: 127.0.0.1:9110
  allow_non_loopback: false
log:
  format: text
  level: info
leader:
  mode: "off"
  table: ""
  lease_duration: 10s
  renew_interval: 2s
  poll_interval: 1s
  marker_file: ""
  tag:
    enabled: false
    key: app:isLeader
    value: "true"
    follower_value: ""
  on_elected: []
  on_demoted: []
  stop_grace: 2s
  jobs: []
traffic:
  mode: auto
  target_groups: []
  load_balancers: []
  from_tags: false
  wait_healthy_timeout: 5m
  wait_drained_timeout: 6m
  poll_interval: 5s
`
	if string(got) != want {
		t.Errorf("DefaultAgent().YAML() =\n%s\nwant\n%s", got, want)
	}
}

func TestYAMLRoundTrips(t *testing.T) {
	tricky := config.DefaultAgent()
	tricky.Source = config.SourceSQS
	tricky.SQS.TopicARN = "arn:aws:sns:us-east-1:123456789012:lifecycle"
	tricky.SQS.QueuePrefix = ""
	tricky.Status.Listen = "[::1]:9110"
	tricky.Log = config.Log{Format: config.LogJSON, Level: config.LogDebug}
	tricky.Launch.Probes = []config.Probe{{Name: "web", HTTP: &config.HTTPProbe{
		URL: "https://127.0.0.1/a?b=c#d", Status: 204, BodyContains: "yes", Timeout: config.Duration(1500 * time.Millisecond)}}}
	tricky.Terminate.HeartbeatInterval = config.Duration(90 * time.Second)
	tricky.Terminate.Steps = []config.Step{{
		Name:      "odd.strings",
		Command:   []string{"sh", "-c", "echo 'a: b' # c\nexit 0\n", "~", "null", "0x10", "true", "", " lead", "trail ", "tab\there", "ünïcödé", "\"quoted\"", "- dash", "line\r\nbreak"},
		Timeout:   config.Duration(time.Hour + 30*time.Second),
		Env:       map[string]string{"A": "1", "B": "", "C": "multi\nline\n", "D": "{x: y}"},
		OnFailure: config.FailureAbandon, OnInterrupt: config.InterruptSkip,
	}}
	if err := tricky.Validate(); err != nil {
		t.Fatalf("tricky config is invalid: %v", err)
	}
	docs, err := config.ParseAgent([]byte(yamlBlocks(t)[0]))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  config.Agent
	}{
		{"defaults", config.DefaultAgent()},
		{"docs example", docs},
		{"awkward strings, sqs, IPv6 and durations", tricky},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.cfg.YAML()
			if err != nil {
				t.Fatal(err)
			}
			got, err := config.ParseAgent(out)
			if err != nil {
				t.Fatalf("ParseAgent(YAML()): %v\n%s", err, out)
			}
			if !reflect.DeepEqual(got, tt.cfg) {
				t.Errorf("ParseAgent(YAML()) =\n%+v\nwant\n%+v\nYAML:\n%s", got, tt.cfg, out)
			}
		})
	}
}
