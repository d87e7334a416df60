package systest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// TestAgentCountsAWSCalls runs the agent's launch and termination on the
// in-memory sandbox with the real adapters, whose SDK configurations
// count every call (awscloud.CallCounter), and reads the counts from the
// agent's /metrics: each call once, whatever the service, by operation.
// (The scenario of internal/agent's TestStatusAndMetrics.)
func TestAgentCountsAWSCalls(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newInprocEnv(t)
		ctx := t.Context()
		if _, err := e.asg.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
			LaunchConfigurationName: aws.String("lc"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro"),
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
			AutoScalingGroupName: aws.String(inprocGroup), LaunchConfigurationName: aws.String("lc"),
			MinSize: aws.Int32(0), MaxSize: aws.Int32(1), DesiredCapacity: aws.Int32(1), AvailabilityZones: []string{"us-east-1a"},
			LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{{
				LifecycleHookName: aws.String("warmup"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"),
				HeartbeatTimeout: aws.Int32(3600), DefaultResult: aws.String("ABANDON"),
			}, {
				LifecycleHookName: aws.String("drain"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"),
				HeartbeatTimeout: aws.Int32(600), DefaultResult: aws.String("CONTINUE"),
			}},
		}); err != nil {
			t.Fatal(err)
		}
		id := e.next("Pending:Wait", func(ev world.Event) bool {
			return ev.Kind == world.EvInstanceState && ev.State == world.StatePendingWait
		}).Instance

		calls := awscloud.NewCallCounter()
		apiCfg, mdCfg := e.cfg.Copy(), e.metadataConfig(id)
		calls.Instrument(&apiCfg)
		calls.Instrument(&mdCfg)
		calls.Instrument(&mdCfg) // twice: still counted once
		cfg := config.DefaultAgent()
		cfg.Paths.JournalDir = t.TempDir()
		cfg.Launch.Probes = []config.Probe{{Name: "ready", Command: &config.CommandProbe{Argv: []string{"true"}, Timeout: config.Duration(30 * time.Second)}}}
		cfg.Launch.Interval = config.Duration(2 * time.Second)
		cfg.Launch.ConsecutivePasses = 3
		cfg.Launch.Timeout = config.Duration(time.Minute)
		for _, name := range []string{"deregister", "flush"} {
			cfg.Terminate.Steps = append(cfg.Terminate.Steps, config.Step{
				Name: name, Command: []string{"/usr/local/bin/" + name}, Timeout: config.Duration(time.Hour),
				OnFailure: config.FailureContinue, OnInterrupt: config.InterruptRerun,
			})
		}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{
			"deregister": {Duration: time.Minute},
			"flush":      {Duration: 10 * time.Minute, ExitCode: 1},
		}}
		asg := awscloud.NewAutoScaling(apiCfg)
		a, err := agent.New(cfg, agent.Deps{
			Metadata:  awscloud.NewMetadata(mdCfg),
			Group:     awscloud.NewGroup(asg),
			Completer: asg,
			Steps:     steps,
			Metrics:   []prometheus.Collector{calls},
		}, slog.New(slog.NewTextHandler(t.Output(), nil)))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- a.Run(context.WithoutCancel(ctx)) }()

		e.next("InService", func(ev world.Event) bool {
			return ev.Kind == world.EvInstanceState && ev.Instance == id && ev.State == world.StateInService
		})
		time.Sleep(time.Hour) // in service for an hour
		if _, err := e.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{
			AutoScalingGroupName: aws.String(inprocGroup), DesiredCapacity: aws.Int32(0),
		}); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("agent Run = %v, want nil once the termination is completed", err)
		}

		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		body, _ := io.ReadAll(rec.Result().Body)
		metrics := string(body)
		for _, want := range []string{
			`lifeguard_heartbeats_total 4`, // launch: 1 while probing; terminate: at once, 5m, 10m
			`lifeguard_aws_calls_total{op="CompleteLifecycleAction",outcome="ok",service="autoscaling"} 2`,
			`lifeguard_aws_calls_total{op="RecordLifecycleActionHeartbeat",outcome="ok",service="autoscaling"} 4`,
			`lifeguard_aws_calls_total{op="DescribeLifecycleHooks",outcome="ok",service="autoscaling"} 2`,
			`lifeguard_aws_calls_total{op="imds:instance-id",outcome="ok",service="imds"} 1`,
			`lifeguard_aws_calls_total{op="imds:api/token",outcome="ok",service="imds"} `,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		// Every recorded request of the Auto Scaling API is counted, once.
		var recorded, counted int
		for _, c := range e.rt.callsOf("", time.Time{}, time.Time{}) {
			if c.Host == e.apiHost && c.Op != "CreateLaunchConfiguration" && c.Op != "CreateAutoScalingGroup" && c.Op != "SetDesiredCapacity" {
				recorded++
			}
		}
		for line := range strings.Lines(metrics) {
			if strings.HasPrefix(line, "lifeguard_aws_calls_total{") && strings.Contains(line, `service="autoscaling"`) {
				var n float64
				f := strings.Fields(line)
				if _, err := fmt.Sscan(f[len(f)-1], &n); err != nil {
					t.Fatalf("metrics line %q: %v", line, err)
				}
				counted += int(n)
			}
		}
		if counted != recorded {
			t.Errorf("%d Auto Scaling calls counted, %d requests made", counted, recorded)
		}
		if t.Failed() {
			t.Logf("/metrics:\n%s", metrics)
		}
	})
}
