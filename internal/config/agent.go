// Package config is the schema of lifeguard's configuration files: typed
// structs with their YAML keys, the defaults, and validation that names the
// field and the fix.
//
// The agent reads its file with LoadAgent (or ParseAgent for bytes). Decoding
// is strict: an unknown key, a value of the wrong shape and a duration
// written without a unit are errors, reported together with every failed
// rule of Validate. Each problem is a *FieldError; the error returned is
// their errors.Join, so callers that need the list use
// errors.As / Unwrap() []error.
package config

import (
	"bytes"
	"fmt"
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lifeguardhq/lifeguard/internal/jobs"
)

// Agent is the configuration of `lifeguard agent` (its YAML schema).
// Durations are written like "30s" or "5m". The zero value is not valid; start
// from DefaultAgent, or use ParseAgent / LoadAgent, which fill in defaults.
type Agent struct {
	// Source is where the agent learns of lifecycle transitions.
	Source Source `yaml:"source"`
	// IMDS configures reading instance metadata.
	IMDS IMDS `yaml:"imds"`
	// SQS configures the queue when Source is SourceSQS; otherwise it is
	// ignored (and not validated).
	SQS SQS `yaml:"sqs"`
	// Launch is what the agent does while the instance is in Pending:Wait.
	Launch Launch `yaml:"launch"`
	// Terminate is what the agent does before the instance terminates.
	Terminate Terminate `yaml:"terminate"`
	// OnSIGTERM is what a SIGTERM to the agent means.
	OnSIGTERM OnSIGTERM `yaml:"on_sigterm"`
	// Paths are where the agent keeps its state.
	Paths Paths `yaml:"paths"`
	// Status configures the loopback HTTP server (/healthz, /status, /metrics).
	Status Status `yaml:"status"`
	// Log configures the agent's own logs.
	Log Log `yaml:"log"`
	// Leader configures leader election and the leader-only jobs.
	Leader Leader `yaml:"leader"`
	// Traffic configures load balancer registration and draining.
	Traffic Traffic `yaml:"traffic"`
}

// Source is where transitions come from: SourceIMDS or SourceSQS.
type Source string

// The sources of transitions.
const (
	// SourceIMDS polls autoscaling/target-lifecycle-state and
	// spot/instance-action, confirms the wait state with
	// DescribeAutoScalingInstances and completes by instance id.
	SourceIMDS Source = "imds"
	// SourceSQS receives the hook's notifications from an SQS queue.
	SourceSQS Source = "sqs"
)

// IMDS configures how the agent reads instance metadata.
type IMDS struct {
	// PollInterval is how often the agent polls IMDS; at least 1s.
	PollInterval Duration `yaml:"poll_interval"`
}

// SQS configures the queue the agent receives lifecycle notifications from.
// Exactly one of QueueURL and TopicARN is set.
type SQS struct {
	// QueueURL is a queue shared by the group: the hook's notification target.
	QueueURL string `yaml:"queue_url"`
	// TopicARN is the hook's SNS topic. The agent creates a queue of its own,
	// named QueuePrefix + instance id, subscribed with a filter policy on
	// EC2InstanceId; it reuses it across restarts and deletes it once the
	// instance's termination has completed.
	TopicARN string `yaml:"topic_arn"`
	// QueuePrefix prefixes the per-instance queue's name.
	QueuePrefix string `yaml:"queue_prefix"`
	// WaitTime is the long-poll wait of each ReceiveMessage, 1s to 20s.
	WaitTime Duration `yaml:"wait_time"`
	// VisibilityTimeout hides a received message from other receivers.
	VisibilityTimeout Duration `yaml:"visibility_timeout"`
}

// Launch configures the launch transition (Pending:Wait): readiness probes
// until ConsecutivePasses passes in a row, then CONTINUE.
type Launch struct {
	// Hook is the launch hook's name; "" means every launch hook of the group.
	Hook string `yaml:"hook"`
	// Probes all pass in one round for the round to count as a pass. With no
	// probes the instance is ready at once.
	Probes []Probe `yaml:"probes"`
	// ConsecutivePasses is how many passing rounds in a row make the
	// instance ready; at least 1.
	ConsecutivePasses int `yaml:"consecutive_passes"`
	// Interval is the time between the starts of two rounds of probes.
	Interval Duration `yaml:"interval"`
	// Timeout bounds the whole wait for readiness.
	Timeout Duration `yaml:"timeout"`
	// OnTimeout is the result sent when Timeout passes first.
	OnTimeout OnTimeout `yaml:"on_timeout"`
	// OnFatal is what a probe's fatal exit code does.
	OnFatal OnFatal `yaml:"on_fatal"`
}

// OnTimeout is what the agent does when the launch timeout passes.
type OnTimeout string

// The outcomes of a launch timeout.
const (
	TimeoutAbandon  OnTimeout = "abandon"  // complete the launch action with ABANDON
	TimeoutContinue OnTimeout = "continue" // complete it with CONTINUE anyway
)

// OnFatal is what the agent does when a command probe exits with one of its
// fatal exit codes.
type OnFatal string

// The outcomes of a fatal probe exit.
const (
	FatalAbandon OnFatal = "abandon" // complete the launch action with ABANDON at once
	FatalWait    OnFatal = "wait"    // count it as a failed round and keep probing until the timeout
)

// Probe is one readiness check: exactly one of HTTP, TCP and Command is set.
type Probe struct {
	// Name identifies the probe in logs, metrics and /status; unique.
	Name    string        `yaml:"name"`
	HTTP    *HTTPProbe    `yaml:"http,omitempty"`
	TCP     *TCPProbe     `yaml:"tcp,omitempty"`
	Command *CommandProbe `yaml:"command,omitempty"`
}

// HTTPProbe passes when a GET of URL answers Status with a body containing
// BodyContains. Read from YAML, Status defaults to 200 and Timeout to 2s.
type HTTPProbe struct {
	URL          string   `yaml:"url"`
	Status       int      `yaml:"status"`
	BodyContains string   `yaml:"body_contains"`
	Timeout      Duration `yaml:"timeout"`
}

// TCPProbe passes when a TCP connection to Address succeeds. Read from YAML,
// Timeout defaults to 2s.
type TCPProbe struct {
	Address string   `yaml:"address"`
	Timeout Duration `yaml:"timeout"`
}

// CommandProbe passes when Argv exits 0 within Timeout. An exit code listed in
// FatalExitCodes means the instance can never become ready (see
// Launch.OnFatal). Read from YAML, Timeout defaults to 30s.
type CommandProbe struct {
	// Argv is the program and its arguments; no shell unless written
	// ["sh", "-c", "…"].
	Argv           []string `yaml:"argv"`
	Timeout        Duration `yaml:"timeout"`
	FatalExitCodes []int    `yaml:"fatal_exit_codes"`
}

// Terminate configures the terminate transition: the steps run in order, with
// heartbeats, then every matching hook's action is completed with Result
// (or ABANDON when a step with on_failure: abandon fails).
type Terminate struct {
	// Hook is the terminate hook's name; "" means every terminate hook.
	Hook string `yaml:"hook"`
	// HeartbeatInterval is the time between heartbeats; 0 means half the
	// hook's HeartbeatTimeout, learned from DescribeLifecycleHooks.
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
	// Result is sent after the steps.
	Result Result `yaml:"result"`
	// Steps run in order.
	Steps []Step `yaml:"steps"`
}

// Result is a lifecycle action result, written as AWS writes it.
type Result string

// The lifecycle action results.
const (
	ResultContinue Result = "CONTINUE"
	ResultAbandon  Result = "ABANDON"
)

// Step is one command of the terminate plan. Read from YAML, OnFailure
// defaults to FailureContinue and OnInterrupt to InterruptRerun.
type Step struct {
	// Name identifies the step in the journal, logs and metrics; unique.
	Name string `yaml:"name"`
	// Command is the argv; no shell unless written ["sh", "-c", "…"].
	Command []string `yaml:"command"`
	// Timeout bounds the step; required.
	Timeout Duration `yaml:"timeout"`
	// Env is added to the agent's environment for the step. LIFEGUARD_*
	// names are reserved for the variables the agent sets.
	Env map[string]string `yaml:"env"`
	// OnFailure is what a failed or timed-out step does to the plan.
	OnFailure OnFailure `yaml:"on_failure"`
	// OnInterrupt is what a restarted agent does with this step when the
	// step's supervisor died with the agent, so its outcome is unknown.
	OnInterrupt OnInterrupt `yaml:"on_interrupt"`
}

// OnFailure is what a failed step does to the rest of the plan.
type OnFailure string

// The outcomes of a failed step.
const (
	FailureContinue OnFailure = "continue" // run the next step; the result stays terminate.result
	FailureAbandon  OnFailure = "abandon"  // skip the remaining steps and complete with ABANDON
)

// OnInterrupt is what a restarted agent does with a step whose outcome was
// lost with its supervisor.
type OnInterrupt string

// The choices for an interrupted step.
const (
	InterruptRerun OnInterrupt = "rerun" // run it again
	InterruptSkip  OnInterrupt = "skip"  // treat it as done and go on with the next step
)

// OnSIGTERM is what a SIGTERM to the agent means.
type OnSIGTERM string

// The meanings of SIGTERM.
const (
	SIGTERMExit  OnSIGTERM = "exit"  // stop the agent; in-flight steps are left to their supervisors
	SIGTERMDrain OnSIGTERM = "drain" // run the terminate plan first (LIFEGUARD_REASON=sigterm), then exit
)

// Paths are the agent's places on disk.
type Paths struct {
	// JournalDir holds the restart journal and the step supervisors' status
	// files. A relative path is relative to the agent's working directory.
	JournalDir string `yaml:"journal_dir"`
}

// Status configures the HTTP server for /healthz, /status and /metrics.
type Status struct {
	// Listen is host:port; a loopback address unless AllowNonLoopback.
	Listen           string `yaml:"listen"`
	AllowNonLoopback bool   `yaml:"allow_non_loopback"`
}

// Log configures the agent's slog output.
type Log struct {
	Format LogFormat `yaml:"format"`
	Level  LogLevel  `yaml:"level"`
}

// LogFormat is the slog handler: LogText or LogJSON.
type LogFormat string

// The log formats.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// LogLevel is the lowest level logged, spelled as slog.Level parses it.
type LogLevel string

// The log levels.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// Defaults that are not obvious from DefaultAgent.
const (
	// DefaultJournalDir is where the journal lives unless paths.journal_dir says otherwise.
	DefaultJournalDir = "/var/lib/lifeguard"
	// DefaultStatusListen is the status server's address unless status.listen says otherwise.
	DefaultStatusListen = "127.0.0.1:9110"
)

// DefaultAgent returns the configuration with every default filled in: an
// empty file means exactly this.
func DefaultAgent() Agent {
	return Agent{
		Source: SourceIMDS,
		IMDS:   IMDS{PollInterval: Duration(5 * time.Second)},
		SQS: SQS{
			QueuePrefix:       "lifeguard-",
			WaitTime:          Duration(20 * time.Second),
			VisibilityTimeout: Duration(30 * time.Second),
		},
		Launch: Launch{
			ConsecutivePasses: 3,
			Interval:          Duration(2 * time.Second),
			Timeout:           Duration(10 * time.Minute),
			OnTimeout:         TimeoutAbandon,
			OnFatal:           FatalAbandon,
		},
		Terminate: Terminate{Result: ResultContinue},
		OnSIGTERM: SIGTERMExit,
		Paths:     Paths{JournalDir: DefaultJournalDir},
		Status:    Status{Listen: DefaultStatusListen},
		Log:       Log{Format: LogText, Level: LogInfo},
		Leader:    defaultLeader(),
		Traffic:   defaultTraffic(),
	}
}

// itemDefault returns a pointer to the value a list item or optional block
// of type t starts from before its YAML keys are applied.
func itemDefault(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	switch x := p.Interface().(type) {
	case *HTTPProbe:
		*x = HTTPProbe{Status: 200, Timeout: Duration(2 * time.Second)}
	case *TCPProbe:
		*x = TCPProbe{Timeout: Duration(2 * time.Second)}
	case *CommandProbe:
		*x = CommandProbe{Timeout: Duration(30 * time.Second)}
	case *Step:
		*x = Step{OnFailure: FailureContinue, OnInterrupt: InterruptRerun}
	case *LeaderJob:
		*x = LeaderJob{Overlap: jobs.OverlapSkip, Missed: jobs.MissedSkip}
	}
	return p
}

// YAML returns the effective configuration as YAML, every default shown
// (what `lifeguard agent --check-config` prints). For a valid a, ParseAgent
// of the result gives a back.
func (a Agent) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(a); err != nil {
		return nil, fmt.Errorf("encode agent config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode agent config: %w", err)
	}
	return buf.Bytes(), nil
}
