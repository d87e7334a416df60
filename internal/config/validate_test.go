package config_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/config"
)

// valid is a configuration that passes Validate, for cases to break.
func valid() config.Agent {
	a := config.DefaultAgent()
	a.SQS.QueueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/lifecycle"
	a.Launch.Probes = []config.Probe{
		{Name: "web", HTTP: &config.HTTPProbe{URL: "http://127.0.0.1:8080/healthz", Status: 200, Timeout: config.Duration(2 * time.Second)}},
		{Name: "db", TCP: &config.TCPProbe{Address: "127.0.0.1:5432", Timeout: config.Duration(2 * time.Second)}},
		{Name: "check", Command: &config.CommandProbe{Argv: []string{"/usr/local/bin/check"}, Timeout: config.Duration(30 * time.Second), FatalExitCodes: []int{3}}},
	}
	a.Terminate.Steps = []config.Step{
		{Name: "drain", Command: []string{"/usr/local/bin/drain", "--wait"}, Timeout: config.Duration(5 * time.Minute),
			Env: map[string]string{"QUEUE": "jobs"}, OnFailure: config.FailureContinue, OnInterrupt: config.InterruptRerun},
		{Name: "flush", Command: []string{"sh", "-c", "sync"}, Timeout: config.Duration(time.Minute),
			OnFailure: config.FailureAbandon, OnInterrupt: config.InterruptSkip},
	}
	return a
}

func dur(s string) config.Duration {
	v, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return config.Duration(v)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*config.Agent)
		want   []string
	}{
		{"valid config passes", func(*config.Agent) {}, nil},

		// source, imds
		{"unknown source", func(a *config.Agent) { a.Source = "kinesis" },
			[]string{`source: "kinesis" is not one of imds, sqs`}},
		{"source in the wrong case gets its spelling", func(a *config.Agent) { a.Source = "SQS" },
			[]string{`source: "SQS" is not one of imds, sqs; write sqs`}},
		{"poll interval under 1s", func(a *config.Agent) { a.IMDS.PollInterval = dur("500ms") },
			[]string{`imds.poll_interval: 500ms is too short; use at least 1s`}},

		// sqs
		{"sqs block is not checked with source imds", func(a *config.Agent) { a.SQS = config.SQS{QueueURL: "nonsense", TopicARN: "x"} }, nil},
		{"sqs with a queue url passes", func(a *config.Agent) { a.Source = config.SourceSQS }, nil},
		{"sqs with a topic passes", func(a *config.Agent) {
			a.Source, a.SQS.QueueURL, a.SQS.TopicARN = config.SourceSQS, "", "arn:aws:sns:us-east-1:123456789012:lifecycle"
		}, nil},
		{"sqs with neither queue nor topic", func(a *config.Agent) { a.Source, a.SQS.QueueURL = config.SourceSQS, "" },
			[]string{`sqs: has neither queue_url nor topic_arn; set exactly one of queue_url and topic_arn when source is sqs`}},
		{"sqs with both queue and topic", func(a *config.Agent) {
			a.Source, a.SQS.TopicARN = config.SourceSQS, "arn:aws:sns:us-east-1:123456789012:lifecycle"
		}, []string{`sqs: has both queue_url and topic_arn; set exactly one of queue_url and topic_arn when source is sqs`}},
		{"queue given by its ARN", func(a *config.Agent) {
			a.Source, a.SQS.QueueURL = config.SourceSQS, "arn:aws:sqs:us-east-1:123456789012:lifecycle"
		}, []string{`sqs.queue_url: "arn:aws:sqs:us-east-1:123456789012:lifecycle" is not a queue URL; give the queue's URL (not its ARN), such as https://sqs.us-east-1.amazonaws.com/123456789012/lifecycle`}},
		{"topic that is not an SNS ARN", func(a *config.Agent) {
			a.Source, a.SQS.QueueURL, a.SQS.TopicARN = config.SourceSQS, "", "arn:aws:sqs:us-east-1:123456789012:lifecycle"
		}, []string{`sqs.topic_arn: "arn:aws:sqs:us-east-1:123456789012:lifecycle" is not an SNS topic ARN; give the hook's topic, such as arn:aws:sns:us-east-1:123456789012:lifecycle`}},
		{"queue prefix with a dot", func(a *config.Agent) {
			a.Source, a.SQS.QueueURL, a.SQS.TopicARN, a.SQS.QueuePrefix = config.SourceSQS, "", "arn:aws:sns:us-east-1:123456789012:t", "web.lifecycle-"
		}, []string{`sqs.queue_prefix: "web.lifecycle-" has characters SQS does not allow in a queue name; use letters, digits, '-' and '_'`}},
		{"queue prefix too long for an instance id", func(a *config.Agent) {
			a.Source, a.SQS.QueueURL, a.SQS.TopicARN, a.SQS.QueuePrefix = config.SourceSQS, "", "arn:aws:sns:us-east-1:123456789012:t", strings.Repeat("q", 62)
		}, []string{`sqs.queue_prefix: is 62 characters long; use at most 61, so that the prefix and an instance id fit SQS's 80`}},
		{"wait time over 20s", func(a *config.Agent) { a.Source, a.SQS.WaitTime = config.SourceSQS, dur("25s") },
			[]string{`sqs.wait_time: 25s is out of range; use 1s to 20s`}},
		{"wait time of 0s", func(a *config.Agent) { a.Source, a.SQS.WaitTime = config.SourceSQS, 0 },
			[]string{`sqs.wait_time: 0s is out of range; use 1s to 20s`}},
		{"wait time in fractions of a second", func(a *config.Agent) { a.Source, a.SQS.WaitTime = config.SourceSQS, dur("1500ms") },
			[]string{`sqs.wait_time: 1.5s is not a whole number of seconds; SQS counts in whole seconds; use 1s to 20s`}},
		{"visibility timeout over 12h", func(a *config.Agent) { a.Source, a.SQS.VisibilityTimeout = config.SourceSQS, dur("13h") },
			[]string{`sqs.visibility_timeout: 13h is out of range; use 1s to 12h`}},

		// launch
		{"launch hook with a space", func(a *config.Agent) { a.Launch.Hook = "my hook" },
			[]string{`launch.hook: "my hook" is not a lifecycle hook name; use up to 255 letters, digits, '-', '_' and '/', or "" for every launch hook`}},
		{"probe without a name", func(a *config.Agent) { a.Launch.Probes[1].Name = "" },
			[]string{`launch.probes[1].name: missing; give each probe a name such as web`}},
		{"probe name with a slash", func(a *config.Agent) { a.Launch.Probes[1].Name = "a/b" },
			[]string{`launch.probes[1].name: "a/b" is not a valid name; start with a letter or digit, then use letters, digits, '-', '_' and '.', at most 64 in all`}},
		{"probe name starting with a dot", func(a *config.Agent) { a.Launch.Probes[1].Name = ".." },
			[]string{`launch.probes[1].name: ".." is not a valid name; start with a letter or digit, then use letters, digits, '-', '_' and '.', at most 64 in all`}},
		{"duplicate probe names", func(a *config.Agent) { a.Launch.Probes[2].Name = "web" },
			[]string{`launch.probes[2].name: "web" is also the name of launch.probes[0]; give each probe its own name`}},
		{"probe with both http and tcp", func(a *config.Agent) { a.Launch.Probes[0].TCP = a.Launch.Probes[1].TCP },
			[]string{`launch.probes[0]: has both http and tcp; a probe has exactly one of http, tcp, command`}},
		{"probe with all three kinds", func(a *config.Agent) {
			a.Launch.Probes[0].TCP, a.Launch.Probes[0].Command = a.Launch.Probes[1].TCP, a.Launch.Probes[2].Command
		}, []string{`launch.probes[0]: has http, tcp and command; a probe has exactly one of http, tcp, command`}},
		{"probe with no kind", func(a *config.Agent) { a.Launch.Probes[0].HTTP = nil },
			[]string{`launch.probes[0]: has none of http, tcp, command; a probe has exactly one of http, tcp, command`}},
		{"http probe without a url", func(a *config.Agent) { a.Launch.Probes[0].HTTP.URL = "" },
			[]string{`launch.probes[0].http.url: missing; give the URL to check, such as http://127.0.0.1:8080/healthz`}},
		{"http probe with an ftp url", func(a *config.Agent) { a.Launch.Probes[0].HTTP.URL = "ftp://127.0.0.1/" },
			[]string{`launch.probes[0].http.url: "ftp://127.0.0.1/" is not an http or https URL; give a URL such as http://127.0.0.1:8080/healthz`}},
		{"http probe expecting status 700", func(a *config.Agent) { a.Launch.Probes[0].HTTP.Status = 700 },
			[]string{`launch.probes[0].http.status: 700 is not an HTTP status code; use 100 to 599, such as 200`}},
		{"http probe with timeout 0s", func(a *config.Agent) { a.Launch.Probes[0].HTTP.Timeout = 0 },
			[]string{`launch.probes[0].http.timeout: must be more than 0s; use a timeout such as 2s`}},
		{"probe timeout longer than the launch timeout", func(a *config.Agent) { a.Launch.Probes[2].Command.Timeout = dur("11m") },
			[]string{`launch.probes[2].command.timeout: 11m is longer than launch.timeout (10m); make it shorter than launch.timeout`}},
		{"tcp probe without an address", func(a *config.Agent) { a.Launch.Probes[1].TCP.Address = "" },
			[]string{`launch.probes[1].tcp.address: missing; give host:port, such as 127.0.0.1:5432`}},
		{"tcp probe without a port", func(a *config.Agent) { a.Launch.Probes[1].TCP.Address = "localhost" },
			[]string{`launch.probes[1].tcp.address: "localhost" is not host:port; give host:port, such as 127.0.0.1:5432`}},
		{"tcp probe with port 0", func(a *config.Agent) { a.Launch.Probes[1].TCP.Address = "127.0.0.1:0" },
			[]string{`launch.probes[1].tcp.address: "127.0.0.1:0" is not host:port; give host:port, such as 127.0.0.1:5432`}},
		{"tcp probe with a negative timeout", func(a *config.Agent) { a.Launch.Probes[1].TCP.Timeout = dur("-1s") },
			[]string{`launch.probes[1].tcp.timeout: -1s is negative; use a timeout such as 2s`}},
		{"command probe with empty argv", func(a *config.Agent) { a.Launch.Probes[2].Command.Argv = nil },
			[]string{`launch.probes[2].command.argv: empty; give the command as a list of arguments, such as ["/usr/local/bin/check"] (no shell unless you write ["sh", "-c", "…"])`}},
		{"command probe with an empty program", func(a *config.Agent) { a.Launch.Probes[2].Command.Argv = []string{"", "x"} },
			[]string{`launch.probes[2].command.argv[0]: empty; give the program to run`}},
		{"command probe with a NUL byte", func(a *config.Agent) { a.Launch.Probes[2].Command.Argv = []string{"check", "a\x00b"} },
			[]string{`launch.probes[2].command.argv[1]: contains a NUL byte; remove it`}},
		{"fatal exit code 0", func(a *config.Agent) { a.Launch.Probes[2].Command.FatalExitCodes = []int{3, 0, 256} },
			[]string{
				`launch.probes[2].command.fatal_exit_codes[1]: 0 is not a fatal exit code; use 1 to 255 (0 is a pass)`,
				`launch.probes[2].command.fatal_exit_codes[2]: 256 is not a fatal exit code; use 1 to 255 (0 is a pass)`,
			}},
		{"zero consecutive passes", func(a *config.Agent) { a.Launch.ConsecutivePasses = 0 },
			[]string{`launch.consecutive_passes: 0 is too few; use 1 or more`}},
		{"launch interval 0s", func(a *config.Agent) { a.Launch.Interval = 0 },
			[]string{`launch.interval: must be more than 0s; use an interval such as 2s`}},
		{"launch timeout 0s", func(a *config.Agent) { a.Launch.Timeout = 0 },
			[]string{`launch.timeout: must be more than 0s; use a timeout such as 10m`}},
		{"launch timeout over 48h", func(a *config.Agent) { a.Launch.Timeout = dur("49h") },
			[]string{`launch.timeout: 49h is longer than 48h, the most a lifecycle hook can hold an instance; use 48h or less`}},
		{"launch timeout too short for the passes", func(a *config.Agent) {
			a.Launch.Timeout, a.Launch.Interval, a.Launch.ConsecutivePasses = dur("10s"), dur("5s"), 3
			a.Launch.Probes = a.Launch.Probes[:2]
		}, []string{`launch.timeout: 10s leaves no time for 3 consecutive passes 5s apart; raise launch.timeout, or lower launch.consecutive_passes or launch.interval`}},
		{"launch timeout just long enough for the passes", func(a *config.Agent) {
			a.Launch.Timeout, a.Launch.Interval, a.Launch.ConsecutivePasses = dur("10001ms"), dur("5s"), 3
			a.Launch.Probes = a.Launch.Probes[:2]
		}, nil},
		{"short launch timeout without probes", func(a *config.Agent) {
			a.Launch.Timeout, a.Launch.Interval, a.Launch.Probes = dur("1s"), dur("5s"), nil
		}, nil},
		{"unknown on_timeout", func(a *config.Agent) { a.Launch.OnTimeout = "retry" },
			[]string{`launch.on_timeout: "retry" is not one of abandon, continue`}},
		{"on_fatal continue", func(a *config.Agent) { a.Launch.OnFatal = "continue" },
			[]string{`launch.on_fatal: "continue" is not one of abandon, wait`}},

		// terminate
		{"terminate hook too long", func(a *config.Agent) { a.Terminate.Hook = strings.Repeat("h", 256) },
			[]string{`terminate.hook: "` + strings.Repeat("h", 256) + `" is not a lifecycle hook name; use up to 255 letters, digits, '-', '_' and '/', or "" for every terminate hook`}},
		{"terminate hook with a slash passes", func(a *config.Agent) { a.Terminate.Hook = "team/drain_hook-1" }, nil},
		{"negative heartbeat interval", func(a *config.Agent) { a.Terminate.HeartbeatInterval = dur("-1s") },
			[]string{`terminate.heartbeat_interval: -1s is negative; use 0s to send one every HeartbeatTimeout/2 of the hook`}},
		{"heartbeat interval of 2h", func(a *config.Agent) { a.Terminate.HeartbeatInterval = dur("2h") },
			[]string{`terminate.heartbeat_interval: 2h is not shorter than any hook's HeartbeatTimeout (at most 2h); use 0s to send one every HeartbeatTimeout/2 of the hook`}},
		{"result in lower case", func(a *config.Agent) { a.Terminate.Result = "continue" },
			[]string{`terminate.result: "continue" is not one of CONTINUE, ABANDON; write CONTINUE`}},
		{"step without a timeout", func(a *config.Agent) { a.Terminate.Steps[1].Timeout = 0 },
			[]string{`terminate.steps[1].timeout: missing; give each step a timeout such as 5m`}},
		{"step with a negative timeout", func(a *config.Agent) { a.Terminate.Steps[1].Timeout = dur("-5m") },
			[]string{`terminate.steps[1].timeout: -5m is negative; give each step a timeout such as 5m`}},
		{"step timeout over 48h", func(a *config.Agent) { a.Terminate.Steps[0].Timeout = dur("50h") },
			[]string{`terminate.steps[0].timeout: 50h is longer than 48h, the most a lifecycle hook can hold an instance; use 48h or less`}},
		{"step timeouts adding up past 48h", func(a *config.Agent) {
			a.Terminate.Steps[0].Timeout, a.Terminate.Steps[1].Timeout = dur("47h"), dur("2h")
		},
			[]string{`terminate.steps: the step timeouts add up to more than 48h, the most a lifecycle hook can hold an instance; shorten them`}},
		{"step without a name", func(a *config.Agent) { a.Terminate.Steps[0].Name = "" },
			[]string{`terminate.steps[0].name: missing; give each step a name such as drain`}},
		{"duplicate step names", func(a *config.Agent) { a.Terminate.Steps[1].Name = "drain" },
			[]string{`terminate.steps[1].name: "drain" is also the name of terminate.steps[0]; give each step its own name`}},
		{"step with empty argv", func(a *config.Agent) { a.Terminate.Steps[0].Command = []string{} },
			[]string{`terminate.steps[0].command: empty; give the command as a list of arguments, such as ["/usr/local/bin/drain", "--wait"] (no shell unless you write ["sh", "-c", "…"])`}},
		{"step setting a LIFEGUARD_ variable", func(a *config.Agent) { a.Terminate.Steps[0].Env["LIFEGUARD_HOOK"] = "x" },
			[]string{`terminate.steps[0].env.LIFEGUARD_HOOK: LIFEGUARD_* names are reserved for the variables lifeguard sets; rename the variable`}},
		{"step env name with =", func(a *config.Agent) { a.Terminate.Steps[0].Env["A=B"] = "x" },
			[]string{`terminate.steps[0].env."A=B": is not an environment variable name; use letters, digits and _`}},
		{"step env value with a NUL byte", func(a *config.Agent) { a.Terminate.Steps[0].Env["QUEUE"] = "a\x00" },
			[]string{`terminate.steps[0].env.QUEUE: contains a NUL byte; remove it`}},
		{"unknown on_failure", func(a *config.Agent) { a.Terminate.Steps[0].OnFailure = "retry" },
			[]string{`terminate.steps[0].on_failure: "retry" is not one of continue, abandon`}},
		{"unknown on_interrupt", func(a *config.Agent) { a.Terminate.Steps[0].OnInterrupt = "" },
			[]string{`terminate.steps[0].on_interrupt: "" is not one of rerun, skip`}},

		// on_sigterm, paths, status, log
		{"unknown on_sigterm", func(a *config.Agent) { a.OnSIGTERM = "ignore" },
			[]string{`on_sigterm: "ignore" is not one of exit, drain`}},
		{"no journal dir", func(a *config.Agent) { a.Paths.JournalDir = "" },
			[]string{`paths.journal_dir: missing; give a directory such as /var/lib/lifeguard`}},
		{"relative journal dir passes", func(a *config.Agent) { a.Paths.JournalDir = "./lifeguard" }, nil},
		{"status on all interfaces", func(a *config.Agent) { a.Status.Listen = "0.0.0.0:9110" },
			[]string{`status.listen: "0.0.0.0:9110" is not a loopback address; use 127.0.0.1:PORT or set status.allow_non_loopback: true`}},
		{"status on all interfaces when allowed", func(a *config.Agent) { a.Status.Listen, a.Status.AllowNonLoopback = "0.0.0.0:9110", true }, nil},
		{"status on another loopback address", func(a *config.Agent) { a.Status.Listen = "127.0.0.7:9110" }, nil},
		{"status on IPv6 loopback", func(a *config.Agent) { a.Status.Listen = "[::1]:9110" }, nil},
		{"status on localhost", func(a *config.Agent) { a.Status.Listen = "localhost:9110" }, nil},
		{"status on a host name", func(a *config.Agent) { a.Status.Listen = "metrics.internal:9110" },
			[]string{`status.listen: "metrics.internal:9110" is not a loopback address; use 127.0.0.1:PORT or set status.allow_non_loopback: true`}},
		{"status without a port", func(a *config.Agent) { a.Status.Listen = "127.0.0.1" },
			[]string{`status.listen: "127.0.0.1" is not host:port; give host:port, such as 127.0.0.1:9110`}},
		{"status port out of range", func(a *config.Agent) { a.Status.Listen = "127.0.0.1:99999" },
			[]string{`status.listen: "127.0.0.1:99999" is not host:port; give host:port, such as 127.0.0.1:9110`}},
		{"no status address", func(a *config.Agent) { a.Status.Listen = "" },
			[]string{`status.listen: missing; give host:port, such as 127.0.0.1:9110`}},
		{"log format xml", func(a *config.Agent) { a.Log.Format = "xml" },
			[]string{`log.format: "xml" is not one of text, json`}},
		{"log level warning", func(a *config.Agent) { a.Log.Level = "warning" },
			[]string{`log.level: "warning" is not one of debug, info, warn, error`}},

		{"every problem is reported at once", func(a *config.Agent) {
			a.Source = "kinesis"
			a.Launch.Probes[0].TCP = a.Launch.Probes[1].TCP
			a.Terminate.Steps[1].Timeout = 0
			a.Status.Listen = "0.0.0.0:9110"
		}, []string{
			`source: "kinesis" is not one of imds, sqs`,
			`launch.probes[0]: has both http and tcp; a probe has exactly one of http, tcp, command`,
			`terminate.steps[1].timeout: missing; give each step a timeout such as 5m`,
			`status.listen: "0.0.0.0:9110" is not a loopback address; use 127.0.0.1:PORT or set status.allow_non_loopback: true`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := valid()
			tt.change(&a)
			got := messages(t, a.Validate())
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate() =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestValidateZeroAgent(t *testing.T) {
	got := messages(t, config.Agent{}.Validate())
	want := []string{
		`source: "" is not one of imds, sqs`,
		`imds.poll_interval: 0s is too short; use at least 1s`,
		`launch.consecutive_passes: 0 is too few; use 1 or more`,
		`launch.interval: must be more than 0s; use an interval such as 2s`,
		`launch.timeout: must be more than 0s; use a timeout such as 10m`,
		`launch.on_timeout: "" is not one of abandon, continue`,
		`launch.on_fatal: "" is not one of abandon, wait`,
		`terminate.result: "" is not one of CONTINUE, ABANDON`,
		`on_sigterm: "" is not one of exit, drain`,
		`paths.journal_dir: missing; give a directory such as /var/lib/lifeguard`,
		`status.listen: missing; give host:port, such as 127.0.0.1:9110`,
		`log.format: "" is not one of text, json`,
		`log.level: "" is not one of debug, info, warn, error`,
		`leader.mode: "" is not one of off, lease, tag`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Agent{}.Validate() =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
