package systest_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// The agent's numbers, measured on the built binary running as instances'
// user data in a sandbox process, in real time. They report figures and
// assert nothing about them. Run with
//
//	go test -run='^$' -bench='NoticeToFirstStep|AgentIdle' -benchtime=1x ./internal/systest/

// benchSandbox is `lifeguard sandbox --relax-limits` as its own process
// (the harness's startSandbox), its followed event log and the clients
// the benchmarks use.
type benchSandbox struct {
	*sandboxProc
	ev  *events
	asg *autoscaling.Client
	sns *sns.Client
}

// startBenchSandbox starts the sandbox and follows its events; both stop
// when the benchmark ends.
func startBenchSandbox(tb testing.TB) *benchSandbox {
	tb.Helper()
	p := startSandbox(tb, "--relax-limits")
	cfg := aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(p.endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("sandbox", "sandbox", ""),
	}
	return &benchSandbox{sandboxProc: p, ev: followEvents(tb, p.endpoint), asg: autoscaling.NewFromConfig(cfg), sns: sns.NewFromConfig(cfg)}
}

func (sb *benchSandbox) instanceDir(id string) string {
	return filepath.Join(sb.stateDir, "instances", id)
}

// createGroup creates a group of the built agent as user data (source
// imds, or source sqs with a queue per instance on the hook's topic and the
// default wait_time of 20 s; IMDS polled every poll, the default 5 s when
// poll is ""; a one-step terminate
// plan that writes the time it started, in ns since the epoch, to
// <instance dir>/step-started, and as its last act, just before it exits,
// the time again to step-exit) with a terminate hook, and scales it to n.
func (sb *benchSandbox) createGroup(tb testing.TB, n int32, source, poll string) {
	tb.Helper()
	ctx := context.Background()
	hook := astypes.LifecycleHookSpecification{
		LifecycleHookName: aws.String("drain-hook"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"),
		HeartbeatTimeout: aws.Int32(60), DefaultResult: aws.String("ABANDON"),
	}
	section := "source: imds"
	switch source {
	case "imds":
	case "sqs":
		topic, err := sb.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("bench-lifecycle")})
		if err != nil {
			tb.Fatal(err)
		}
		hook.NotificationTargetARN, hook.RoleARN = topic.TopicArn, aws.String(roleARN)
		section = "source: sqs\nsqs:\n  topic_arn: " + aws.ToString(topic.TopicArn)
	default:
		tb.Fatalf("source %q", source)
	}
	pollSection := ""
	if poll != "" {
		pollSection = "imds:\n  poll_interval: " + poll
	}
	ud := `#!/bin/sh
cat > agent.yaml <<YAML
` + section + `
` + pollSection + `
terminate:
  steps:
    - name: mark
      command: ["sh", "-c", "date +%s%N > $PWD/step-started.tmp && mv $PWD/step-started.tmp $PWD/step-started && exec date +%s%N > $PWD/step-exit"]
      timeout: 30s
paths:
  journal_dir: $PWD/journal
status:
  listen: 127.0.0.1:0
YAML
exec ` + lifeguardBinary(tb) + ` agent --config agent.yaml
`
	if _, err := sb.asg.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String("bench-lc"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro"),
		UserData: aws.String(base64.StdEncoding.EncodeToString([]byte(ud))),
	}); err != nil {
		tb.Fatal(err)
	}
	if _, err := sb.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("bench"), LaunchConfigurationName: aws.String("bench-lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(n), DesiredCapacity: aws.Int32(n), AvailabilityZones: []string{"us-east-1a"},
		LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{hook},
	}); err != nil {
		tb.Fatal(err)
	}
}

// waitAgentsInService waits for n instances InService whose agents have
// seen it (and, with source sqs, opened their queues), and returns their
// ids.
func (sb *benchSandbox) waitAgentsInService(tb testing.TB, n int, source string) []string {
	tb.Helper()
	var ids []string
	for len(ids) < n {
		e := sb.ev.waitFor(tb, "InService", func(e event) bool { return e.Kind == "instance-state" && e.State == "InService" })
		ids = append(ids, e.Instance)
	}
	for _, id := range ids {
		waitConsole(tb, sb.instanceDir(id), regexp.MustCompile(`msg="lifecycle state changed" .*state=InService`))
		if source == "sqs" {
			waitConsole(tb, sb.instanceDir(id), regexp.MustCompile(`msg="receiving lifecycle notifications"`))
		}
	}
	return ids
}

// waitConsole waits for a line of the instance's console matching re and
// returns its submatches.
func waitConsole(tb testing.TB, dir string, re *regexp.Regexp) []string {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "console.log"))
		if m := re.FindStringSubmatch(string(b)); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s/console.log has no line matching %q within 60 s:\n%s", dir, re, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// percentile returns the nearest-rank p-th percentile of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkNoticeToFirstStep measures, on the built agent, the real time
// from a scale-in (SetDesiredCapacity returning) to the terminate plan's
// first step starting, over 20 scale-ins of one instance each, at random
// phases of the agents' poll cycle, for each source. With source imds
// (poll_interval 1s) the figure is dominated by the poll interval: the
// agent learns of the transition at its next IMDS poll, so expect it
// spread uniformly over [0, 1 s), plus the step's start-up. With source
// sqs (a queue per instance on the hook's topic) the agent's long poll
// returns as soon as SNS delivers the message.
func BenchmarkNoticeToFirstStep(b *testing.B) {
	for _, source := range []string{"imds", "sqs"} {
		b.Run("source="+source, func(b *testing.B) { noticeToFirstStep(b, source) })
	}
}

func noticeToFirstStep(b *testing.B, source string) {
	const instances = 20
	for b.Loop() {
		sb := startBenchSandbox(b)
		sb.createGroup(b, instances, source, "1s")
		ids := sb.waitAgentsInService(b, instances, source)
		var lat, toDone []time.Duration
		for i := range instances {
			// Without a random phase, each scale-in would follow the last
			// completion (itself just after an agent's poll) by a fixed
			// delay, and the agents, started together, poll in step: the
			// samples would all land at one point of the poll cycle.
			time.Sleep(rand.N(time.Second))
			t0 := time.Now()
			if _, err := sb.asg.SetDesiredCapacity(context.Background(), &autoscaling.SetDesiredCapacityInput{
				AutoScalingGroupName: aws.String("bench"), DesiredCapacity: aws.Int32(int32(instances - i - 1)),
			}); err != nil {
				b.Fatal(err)
			}
			id := sb.ev.waitFor(b, "Terminating:Wait", func(e event) bool {
				return e.Kind == "instance-state" && e.State == "Terminating:Wait"
			}).Instance
			if !slices.Contains(ids, id) {
				b.Fatalf("instance %s is not one of the group's %v", id, ids)
			}
			mark := filepath.Join(sb.instanceDir(id), "step-started")
			deadline := time.Now().Add(30 * time.Second)
			var started time.Time
			for {
				if s, err := os.ReadFile(mark); err == nil {
					ns, err := strconv.ParseInt(strings.TrimSpace(string(s)), 10, 64)
					if err != nil {
						b.Fatalf("%s: %q: %v", mark, s, err)
					}
					started = time.Unix(0, ns)
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("the step of %s did not start within 30 s", id)
				}
				time.Sleep(5 * time.Millisecond)
			}
			lat = append(lat, started.Sub(t0))
			done := sb.ev.waitFor(b, "terminate action completed", func(e event) bool {
				return e.Kind == "action-completed" && e.Instance == id
			})
			if done.Result != "CONTINUE" || done.Detail != "completed" {
				b.Errorf("action of %s ended %s (%s), want CONTINUE by the agent", id, done.Result, done.Detail)
			}
			exit := filepath.Join(sb.instanceDir(id), "step-exit")
			s, err := os.ReadFile(exit)
			ns, perr := strconv.ParseInt(strings.TrimSpace(string(s)), 10, 64)
			if err != nil || perr != nil {
				b.Fatalf("%s: %q: %v %v", exit, s, err, perr)
			}
			// The sandbox's clock is this machine's: its event time is
			// when Auto Scaling took the completion.
			toDone = append(toDone, done.Time.Sub(time.Unix(0, ns)))
		}
		slices.Sort(lat)
		slices.Sort(toDone)
		b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
		b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
		b.ReportMetric(ms(lat[0]), "min-ms")
		b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
		b.ReportMetric(ms(percentile(toDone, 50)), "exit-to-completed-p50-ms")
		b.ReportMetric(ms(percentile(toDone, 99)), "exit-to-completed-p99-ms")
		b.Logf("notice to first step, source %s, %d scale-ins: %v", source, len(lat), lat)
		b.Logf("step exit to action completed, source %s: %v", source, toDone)
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkAgentIdle measures one built agent idle InService for a fixed
// real window, for each source with its default intervals (IMDS polled
// every 5 s; SQS long polls of 20 s): its AWS calls (Auto Scaling and SQS)
// and IMDS calls per instance-hour (from its own lifeguard_aws_calls_total),
// its resident memory (VmRSS) and CPU (utime+stime over the window).
func BenchmarkAgentIdle(b *testing.B) {
	for _, source := range []string{"imds", "sqs"} {
		b.Run("source="+source, func(b *testing.B) { agentIdle(b, source) })
	}
}

func agentIdle(b *testing.B, source string) {
	const window = 60 * time.Second
	for b.Loop() {
		sb := startBenchSandbox(b)
		sb.createGroup(b, 1, source, "")
		id := sb.waitAgentsInService(b, 1, source)[0]
		dir := sb.instanceDir(id)
		status := waitConsole(b, dir, regexp.MustCompile(`msg="agent started" status=(http://\S+)`))[1]
		pid := agentPID(b, dir)

		api0, md0 := agentCalls(b, status)
		cpu0 := cpuTicks(b, pid)
		time.Sleep(window) // the measured window
		api1, md1 := agentCalls(b, status)
		cpu1 := cpuTicks(b, pid)
		rss := vmRSS(b, pid)

		perHour := float64(time.Hour) / float64(window)
		cpu := float64(cpu1-cpu0) / clockTicks() // seconds
		b.ReportMetric((api1-api0)*perHour, "aws-calls/instance-hour")
		b.ReportMetric((md1-md0)*perHour, "imds-calls/instance-hour")
		b.ReportMetric(rss/1024, "rss-MiB")
		b.ReportMetric(cpu/window.Seconds()*100, "cpu-%")
		b.ReportMetric(cpu*perHour, "cpu-s/instance-hour")
		b.Logf("idle %v, source %s: %.0f AWS calls, %.0f IMDS calls, %.2f s CPU, VmRSS %.0f KiB", window, source, api1-api0, md1-md0, cpu, rss)
	}
	b.ReportMetric(0, "ns/op")
}

// agentPID finds the agent process whose working directory is dir.
func agentPID(tb testing.TB, dir string) int {
	tb.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err != nil || cwd != dir {
			continue
		}
		if cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); strings.Contains(string(cmdline), "agent\x00--config") {
			return pid
		}
	}
	tb.Fatalf("no agent process runs in %s", dir)
	return 0
}

var callLine = regexp.MustCompile(`^lifeguard_aws_calls_total\{op="([^"]*)",outcome="[^"]*"(?:,[^}]*)?\} (\S+)$`)

// agentCalls reads the agent's /metrics and returns its AWS (Auto Scaling
// and SQS) and IMDS calls so far.
func agentCalls(tb testing.TB, status string) (api, md float64) {
	tb.Helper()
	resp, err := http.Get(status + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		m := callLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			tb.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		if strings.HasPrefix(m[1], "imds:") {
			md += v
		} else {
			api += v
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return api, md
}

// cpuTicks returns utime+stime of pid, in clock ticks.
func cpuTicks(tb testing.TB, pid int) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // f[0] is field 3 (state)
	utime, err1 := strconv.ParseInt(f[11], 10, 64)           // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64)           // field 15
	if err1 != nil || err2 != nil {
		tb.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return utime + stime
}

// vmRSS returns pid's VmRSS in KiB.
func vmRSS(tb testing.TB, pid int) float64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				return v
			}
		}
	}
	tb.Fatalf("/proc/%d/status has no VmRSS", pid)
	return 0
}

// clockTicks returns the kernel's clock ticks per second (CLK_TCK).
func clockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}
