package agent_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

// get serves one request through h, without a socket.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Code, string(body)
}

type statusDoc struct {
	Instance       string `json:"instance"`
	Group          string `json:"group"`
	LifecycleState string `json:"lifecycle_state"`
	TargetState    string `json:"target_state"`
	Terminating    bool   `json:"terminating"`
	Reason         string `json:"reason"`
	Confirmed      bool   `json:"confirmed"`
	Actions        []struct {
		Hook       string    `json:"hook"`
		Transition string    `json:"transition"`
		Token      string    `json:"token"`
		Reason     string    `json:"reason"`
		Phase      string    `json:"phase"`
		Result     string    `json:"result"`
		StepsDone  int       `json:"steps_done"`
		Steps      int       `json:"steps"`
		Deadline   time.Time `json:"deadline"`
	} `json:"actions"`
}

func TestStatusAndMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		cfg := launchConfig(t, commandProbe("ready", nil, "true"))
		cfg.Terminate.Steps = []config.Step{step("deregister"), step("flush")}
		md := &fakeMetadata{target: "InService"}
		asg := &fakeGroup{t: t, state: "Pending:Wait", hooks: []lifecycle.Hook{launchHook("warmup", time.Hour), terminateHook("drain", 10*time.Minute)}}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{
			"deregister": {Duration: time.Minute},
			"flush":      {Duration: 10 * time.Minute, ExitCode: 1},
		}}
		build := agent.BuildInfo{Version: "v1.2.3", Commit: "abc123", GoVersion: "go1.26.0"}
		a := newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: okCompleter(t), Steps: steps, Build: build})
		h := a.Handler()
		if code, body := get(t, h, "/healthz"); code != http.StatusOK || body != "ok\n" {
			t.Errorf("/healthz before Run = %d %q, want 200 ok", code, body)
		}
		r := start(t, a)

		// Launched, then scaled in an hour later (seen at the poll at 1h).
		time.Sleep(time.Hour - 2*time.Second)
		md.setTarget("Terminated")
		asg.setState("Terminating:Wait")
		time.Sleep(3*time.Minute + 2*time.Second)
		synctest.Wait()

		code, body := get(t, h, "/status")
		var doc statusDoc
		if err := json.Unmarshal([]byte(body), &doc); code != http.StatusOK || err != nil {
			t.Fatalf("/status mid-plan = %d %q (%v), want 200 and JSON", code, body, err)
		}
		if doc.Instance != instanceID || doc.Group != groupName || doc.LifecycleState != "Terminating:Wait" || doc.TargetState != "Terminated" ||
			!doc.Terminating || doc.Reason != "lifecycle-hook" || !doc.Confirmed || len(doc.Actions) != 2 {
			t.Fatalf("/status mid-plan = %s", body)
		}
		launch, term := doc.Actions[0], doc.Actions[1]
		if launch.Hook != "warmup" || launch.Phase != "completed" || launch.Result != "CONTINUE" || launch.Transition != string(lifecycle.TransitionLaunching) {
			t.Errorf("/status launch action = %+v, want warmup completed with CONTINUE", launch)
		}
		seen := t0.Add(time.Hour) // the first poll after the target changed
		if term.Hook != "drain" || term.Phase != "running" || term.Token != "" || term.Reason != "lifecycle-hook" ||
			term.StepsDone != 1 || term.Steps != 2 || !term.Deadline.Equal(seen.Add(1000*time.Minute)) {
			t.Errorf("/status terminate action = %+v, want drain running, 1 of 2 steps done, deadline %v", term, seen.Add(1000*time.Minute))
		}
		if _, m := get(t, h, "/metrics"); !strings.Contains(m, `lifeguard_lifecycle_actions_in_progress{transition="terminating"} 1`+"\n") ||
			!strings.Contains(m, `lifeguard_lifecycle_actions_in_progress{transition="launching"} 0`+"\n") {
			t.Errorf("/metrics mid-plan lacks one terminating action in progress and none launching:\n%s", m)
		}

		<-r.done
		if r.err != nil {
			t.Errorf("Run = %v, want nil", r.err)
		}
		_, body = get(t, h, "/status")
		if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.Actions[1].Phase != "completed" || doc.Actions[1].StepsDone != 2 {
			t.Errorf("/status after the run = %s, want drain completed after 2 steps", body)
		}

		code, metrics := get(t, h, "/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics = %d", code)
		}
		for _, want := range []string{
			`lifeguard_lifecycle_actions_total{result="continue",transition="launching"} 1`,
			`lifeguard_lifecycle_actions_total{result="continue",transition="terminating"} 1`,
			`lifeguard_lifecycle_actions_in_progress{transition="terminating"} 0`,
			`lifeguard_build_info{commit="abc123",go_version="go1.26.0",version="v1.2.3"} 1`,
			`lifeguard_heartbeats_total 4`, // launch: 1 while probing; terminate: 1h, 1h5m, 1h10m
			`lifeguard_steps_total{result="success"} 1`,
			`lifeguard_steps_total{result="failure"} 1`,
			`lifeguard_probe_checks_total{probe="ready",result="pass"} 3`,
			// lifeguard_aws_calls_total is counted by internal/awscloud's SDK
			// middleware: systest's TestAgentCountsAWSCalls checks it.
			`lifeguard_lifecycle_action_duration_seconds_count{result="continue",transition="launching"} 1`,
			`lifeguard_lifecycle_action_duration_seconds_sum{result="continue",transition="terminating"} 660`,
			`go_goroutines `,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		last := t0.Add(time.Hour + 10*time.Minute) // the last heartbeat
		if got := metricValue(metrics, "lifeguard_last_heartbeat_timestamp_seconds"); got != float64(last.Unix()) {
			t.Errorf("lifeguard_last_heartbeat_timestamp_seconds = %v, want %v (%v)", got, float64(last.Unix()), last)
		}
		if t.Failed() {
			t.Logf("/metrics:\n%s", metrics)
		}
	})
}

// TestStatusFollowsTheLaunch: IMDS's target state is InService already in
// Pending:Wait, so once the launch was completed the agent asks Auto
// Scaling until the instance is in service, and /status says so.
func TestStatusFollowsTheLaunch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		md := &fakeMetadata{target: "InService"}
		asg := &fakeGroup{t: t, state: "Pending:Wait", hooks: []lifecycle.Hook{launchHook("warmup", time.Hour)}}
		a := newAgent(t, newConfig(t), agent.Deps{Metadata: md, Group: asg, Completer: okCompleter(t), Steps: &lifecycletest.StepRunner{T: t}})
		r := start(t, a)
		time.Sleep(3 * time.Second) // completed at 0 s
		asg.setState("Pending:Proceed")
		time.Sleep(4 * time.Second)
		asg.setState("InService")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		_, body := get(t, a.Handler(), "/status")
		var doc statusDoc
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.LifecycleState != "InService" {
			t.Errorf("lifecycle_state %q 10 s after the instance went into service, want InService", doc.LifecycleState)
		}
		before, _ := asg.calls()
		time.Sleep(time.Minute)
		if after, _ := asg.calls(); after != before {
			t.Errorf("%d DescribeAutoScalingInstances calls in a minute in service, want none", after-before)
		}
		if err := r.stop(); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// metricValue returns the value of the unlabelled metric name in a
// Prometheus text exposition; -1 when it is absent.
func metricValue(exposition, name string) float64 {
	for line := range strings.SplitSeq(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return f
		}
	}
	return -1
}
