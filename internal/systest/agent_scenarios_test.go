package systest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

// The scenarios below run the built binary as instances' user data in a
// sandbox with relaxed limits, and wait on the sandbox's event stream.

const (
	launchHook    = "ready"
	terminateHook = "drain-hook"
)

// agentScript is user data that writes agent.yaml (the common keys plus
// sections, in which the shell expands $PWD to the instance's directory;
// write \$ for a variable the step's shell should expand) and then runs
// the run lines, in which BIN stands for the built binary.
func agentScript(bin, sections, run string) string {
	return `#!/bin/sh
cat > agent.yaml <<YAML
source: imds
imds:
  poll_interval: 1s
` + sections + `
paths:
  journal_dir: $PWD/journal
status:
  listen: 127.0.0.1:0
log:
  level: debug
YAML
` + strings.ReplaceAll(run, "BIN", bin) + "\n"
}

// execAgent is the run line of an instance whose only program is the agent.
const execAgent = "exec BIN agent --config agent.yaml"

// launchHookSpec and terminateHookSpec are the hooks the scenarios put on
// their groups; heartbeat is the HeartbeatTimeout in seconds.
func launchHookSpec(name string, heartbeat int32) astypes.LifecycleHookSpecification {
	return astypes.LifecycleHookSpecification{LifecycleHookName: aws.String(name), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"), HeartbeatTimeout: aws.Int32(heartbeat)}
}

func terminateHookSpec(name string, heartbeat int32) astypes.LifecycleHookSpecification {
	return astypes.LifecycleHookSpecification{LifecycleHookName: aws.String(name), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"), HeartbeatTimeout: aws.Int32(heartbeat)}
}

// createGroup creates a launch configuration running userData and a
// group named name (capacity 0, at most 2) with hooks.
func createGroup(t *testing.T, c clients, name, userData string, hooks ...astypes.LifecycleHookSpecification) {
	t.Helper()
	ctx := context.Background()
	launchConfig(t, c, name+"-lc", userData)
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name), LaunchConfigurationName: aws.String(name + "-lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(0), AvailabilityZones: []string{"us-east-1a"},
		LifecycleHookSpecificationList: hooks,
	}); err != nil {
		t.Fatal(err)
	}
}

func setDesired(t *testing.T, c clients, group string, n int32) {
	t.Helper()
	if _, err := c.asg.SetDesiredCapacity(context.Background(), &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(group), DesiredCapacity: aws.Int32(n)}); err != nil {
		t.Fatal(err)
	}
}

// launchOne scales group to one instance and returns it once the agent has
// completed its launch (no probes: CONTINUE at once) and it is InService.
func launchOne(t *testing.T, sb *sandboxProc, ev *events, c clients, group string) (id, dir string) {
	t.Helper()
	setDesired(t, c, group, 1)
	id = ev.waitFor(t, group+" instance in Pending:Wait", func(e event) bool {
		return e.Kind == "instance-state" && e.State == "Pending:Wait" && e.Group == group
	}).Instance
	dir = filepath.Join(sb.stateDir, "instances", id)
	dumpConsoleOnFailure(t, dir)
	done := ev.waitFor(t, "launch action completed", completedBy(id, launchHook))
	if done.Result != "CONTINUE" || done.Detail != "completed" {
		t.Fatalf("launch action ended %s (%s), want CONTINUE by the agent", done.Result, done.Detail)
	}
	ev.waitFor(t, id+" InService", stateIs(id, "InService"))
	return id, dir
}

func completedBy(id, hook string) func(event) bool {
	return func(e event) bool { return e.Kind == "action-completed" && e.Instance == id && e.Hook == hook }
}

// dumpConsoleOnFailure logs an instance's console (its user data's and
// the agent's output) when the test fails.
func dumpConsoleOnFailure(t *testing.T, dir string) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b, err := os.ReadFile(filepath.Join(dir, "console.log"))
		if err != nil {
			t.Logf("console of %s: %v", filepath.Base(dir), err)
			return
		}
		t.Logf("console of %s:\n%s", filepath.Base(dir), b)
	})
}

// eventLog reads the sandbox's whole event log so far.
func eventLog(t *testing.T, endpoint string) []event {
	t.Helper()
	resp, err := http.Get(endpoint + "/_sandbox/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []event
	dec := json.NewDecoder(resp.Body)
	for {
		var e event
		if err := dec.Decode(&e); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
}

// fileExists reports whether path exists; any error but "not there" fails.
func fileExists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true
	case errors.Is(err, fs.ErrNotExist):
		return false
	}
	t.Fatal(err)
	return false
}

// waitGone waits, polling with a bound, until pid no longer runs.
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still runs after 30 s", what, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAgentLaunchProbeTimeoutAbandons: a readiness probe that never
// passes makes the agent complete the launch with ABANDON once
// launch.timeout has passed; Auto Scaling then terminates the instance and
// launches a replacement.
func TestAgentLaunchProbeTimeoutAbandons(t *testing.T) {
	sb := startSandbox(t, "--relax-limits")
	ev := followEvents(t, sb.endpoint)
	c := newClients(sdkConfig(t, sb.endpoint))
	// A probe's timeout may not exceed launch.timeout, so the command
	// probe's (30s by default) is set below it.
	createGroup(t, c, "web", agentScript(lifeguardBinary(t), `launch:
  probes:
    - name: never
      command:
        argv: ["false"]
        timeout: 1s
  consecutive_passes: 1
  interval: 1s
  timeout: 3s
`, execAgent), launchHookSpec(launchHook, 30))
	setDesired(t, c, "web", 1)

	started := ev.waitFor(t, "launch action started", func(e event) bool { return e.Kind == "action-started" && e.Hook == launchHook })
	id := started.Instance
	dumpConsoleOnFailure(t, filepath.Join(sb.stateDir, "instances", id))
	done := ev.waitFor(t, "launch action ended", func(e event) bool {
		return (e.Kind == "action-completed" || e.Kind == "action-timed-out") && e.Instance == id && e.Hook == launchHook
	})
	if done.Kind != "action-completed" || done.Result != "ABANDON" || done.Detail != "completed" {
		t.Fatalf("launch action ended with %s %s (%s), want action-completed ABANDON (completed) by the agent", done.Kind, done.Result, done.Detail)
	}
	if held := done.Time.Sub(started.Time); held < 3*time.Second {
		t.Errorf("launch abandoned after %s, before launch.timeout (3s)", held)
	}
	ev.waitAll(t, map[string]func(event) bool{
		id + " Terminated": stateIs(id, "Terminated"),
		"a replacement launched": func(e event) bool {
			return e.Kind == "instance-launched" && e.Group == "web" && e.Instance != id
		},
	})
}

// TestAgentStepFailureAbandons: a failed step with on_failure abandon
// stops the plan (the next step never runs) and completes the terminate
// action with ABANDON.
func TestAgentStepFailureAbandons(t *testing.T) {
	sb := startSandbox(t, "--relax-limits")
	ev := followEvents(t, sb.endpoint)
	c := newClients(sdkConfig(t, sb.endpoint))
	createGroup(t, c, "web", agentScript(lifeguardBinary(t), `terminate:
  steps:
    - name: fails
      command: ["sh", "-c", "exit 3"]
      timeout: 10s
      on_failure: abandon
    - name: after
      command: ["sh", "-c", "echo ran > $PWD/after.txt"]
      timeout: 10s
`, execAgent), launchHookSpec(launchHook, 30), terminateHookSpec(terminateHook, 30))
	id, dir := launchOne(t, sb, ev, c, "web")

	setDesired(t, c, "web", 0)
	done := ev.waitFor(t, "terminate action ended", func(e event) bool {
		return (e.Kind == "action-completed" || e.Kind == "action-timed-out") && e.Instance == id && e.Hook == terminateHook
	})
	if done.Kind != "action-completed" || done.Result != "ABANDON" || done.Detail != "completed" {
		t.Errorf("terminate action ended with %s %s (%s), want action-completed ABANDON (completed) by the agent", done.Kind, done.Result, done.Detail)
	}
	ev.waitFor(t, id+" Terminated", stateIs(id, "Terminated"))
	if fileExists(t, filepath.Join(dir, "after.txt")) {
		t.Errorf("the step after the failed on_failure: abandon step ran")
	}
}

// TestAgentSpotNoticeRunsThePlan: a spot interruption notice starts the
// terminate plan with reason spot-interruption and the spot time as the
// deadline (it comes before the step's timeout and the hook's deadline),
// and the agent completes the action before EC2 reclaims the instance.
func TestAgentSpotNoticeRunsThePlan(t *testing.T) {
	sb := startSandbox(t, "--relax-limits")
	ev := followEvents(t, sb.endpoint)
	c := newClients(sdkConfig(t, sb.endpoint))
	createGroup(t, c, "web", agentScript(lifeguardBinary(t), `terminate:
  steps:
    - name: drain
      command: ["sh", "-c", "echo \"\$LIFEGUARD_REASON \$LIFEGUARD_HOOK \$LIFEGUARD_DEADLINE\" >> $PWD/steps.log"]
      timeout: 5m
`, execAgent), launchHookSpec(launchHook, 30), terminateHookSpec(terminateHook, 30))
	id, dir := launchOne(t, sb, ev, c, "web")

	admin(t, sb.endpoint, "/_sandbox/faults", map[string]string{"instance": id, "spot": "30s"})
	notice := ev.waitFor(t, "spot interruption notice", func(e event) bool { return e.Kind == "spot-interruption" && e.Instance == id })
	reclaim, err := time.Parse(time.RFC3339, strings.TrimPrefix(notice.Detail, "terminate at "))
	if err != nil {
		t.Fatalf("spot notice detail %q: %v", notice.Detail, err)
	}
	done := ev.waitFor(t, "terminate action ended", func(e event) bool {
		return (e.Kind == "action-completed" || e.Kind == "action-timed-out") && e.Instance == id && e.Hook == terminateHook
	})
	if done.Kind != "action-completed" || done.Result != "CONTINUE" || done.Detail != "completed" {
		t.Errorf("terminate action ended with %s %s (%s), want action-completed CONTINUE (completed) by the agent", done.Kind, done.Result, done.Detail)
	}
	if !done.Time.Before(reclaim) {
		t.Errorf("terminate action completed at %s, not before the reclaim at %s", done.Time, reclaim)
	}
	ev.waitFor(t, id+" Terminated", stateIs(id, "Terminated"))
	got, err := os.ReadFile(filepath.Join(dir, "steps.log"))
	if err != nil {
		t.Fatal(err)
	}
	var reason, hook, deadline string
	if _, err := fmt.Sscan(string(got), &reason, &hook, &deadline); err != nil {
		t.Fatalf("steps.log = %q: %v", got, err)
	}
	if reason != "spot-interruption" {
		t.Errorf("the step saw LIFEGUARD_REASON=%s, want spot-interruption: the instance is terminating because of the spot notice", reason)
	}
	if hook != terminateHook {
		t.Errorf("the step saw LIFEGUARD_HOOK=%s, want %s", hook, terminateHook)
	}
	if want := reclaim.UTC().Format(time.RFC3339); deadline != want {
		t.Errorf("the step saw LIFEGUARD_DEADLINE=%s, want the reclaim time %s, which comes before the hook's deadline", deadline, want)
	}
}

// TestAgentKilledMidPlanResumesOnce: the agent, killed with SIGKILL while
// a step runs and restarted by a shell loop, adopts the running step
// instead of starting it again, resumes heartbeating before the hook's
// heartbeat timeout, runs the next step once and completes the action
// once.
func TestAgentKilledMidPlanResumesOnce(t *testing.T) {
	const heartbeatTimeout = 5 * time.Second
	sb := startSandbox(t, "--relax-limits")
	ev := followEvents(t, sb.endpoint)
	c := newClients(sdkConfig(t, sb.endpoint))
	// The loop restarts an agent that died; an agent that exits 0 (the
	// termination completed) ends it, and termination's SIGTERM to the
	// instance's processes ends the shell too.
	createGroup(t, c, "web", agentScript(lifeguardBinary(t), `terminate:
  steps:
    - name: step1
      command: ["sh", "-c", "echo step1 ran >> $PWD/runs.log; while [ ! -f $PWD/gate ]; do sleep 0.05; done"]
      timeout: 60s
    - name: step2
      command: ["sh", "-c", "echo step2 ran >> $PWD/runs.log"]
      timeout: 10s
`, `until BIN agent --config agent.yaml; do echo "agent exited with status $?; restarting it"; sleep 0.1; done`),
		launchHookSpec(launchHook, 30), terminateHookSpec(terminateHook, int32(heartbeatTimeout/time.Second)))
	id, dir := launchOne(t, sb, ev, c, "web")

	setDesired(t, c, "web", 0)
	if got := string(waitFile(t, filepath.Join(dir, "runs.log"))); got != "step1 ran\n" {
		t.Fatalf("runs.log = %q once step 1 started, want %q", got, "step1 ran\n")
	}
	old := pidOfProcessIn(t, dir)
	if old == 0 {
		t.Fatal("no agent process to kill")
	}
	killed := time.Now()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Heartbeats from the restarted agent until the hook's heartbeat
	// timeout has passed since the kill: only they keep the action alive.
	var beats int
	ev.waitFor(t, "heartbeats from the restarted agent past the heartbeat timeout", func(e event) bool {
		if e.Instance != id || e.Hook != terminateHook {
			return false
		}
		switch e.Kind {
		case "action-timed-out", "action-completed":
			t.Fatalf("terminate action ended (%s %s, %s) while step 1 waits for its gate: the restarted agent did not keep it alive", e.Kind, e.Result, e.Detail)
		case "action-heartbeat":
			if e.Time.After(killed) {
				beats++
			}
		}
		return beats > 0 && e.Time.After(killed.Add(heartbeatTimeout))
	})
	if pid := pidOfProcessIn(t, dir); pid == 0 || pid == old {
		t.Errorf("agent pid after the kill is %d (killed %d); want a restarted agent", pid, old)
	}
	if err := os.WriteFile(filepath.Join(dir, "gate"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, id+" Terminated", stateIs(id, "Terminated"))

	got, err := os.ReadFile(filepath.Join(dir, "runs.log"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "step1 ran\nstep2 ran\n"; string(got) != want {
		t.Errorf("runs.log = %q, want %q (step 1 adopted, not rerun; step 2 once)", got, want)
	}
	var completed []event
	for _, e := range eventLog(t, sb.endpoint) {
		if e.Instance != id || e.Hook != terminateHook {
			continue
		}
		switch e.Kind {
		case "action-completed":
			completed = append(completed, e)
		case "action-timed-out":
			t.Errorf("terminate action timed out (%s) at %s", e.Detail, e.Time)
		}
	}
	if len(completed) != 1 || completed[0].Result != "CONTINUE" || completed[0].Detail != "completed" {
		t.Errorf("terminate action completions %+v, want exactly one, CONTINUE by the agent", completed)
	}
}

// TestLifecycleHelperCommands runs `lifeguard lifecycle status` and
// `lifeguard lifecycle complete` as user data without the agent: the
// helper finds instance, group and hook itself through IMDS and the
// instance's API port.
func TestLifecycleHelperCommands(t *testing.T) {
	sb := startSandbox(t, "--relax-limits")
	ev := followEvents(t, sb.endpoint)
	c := newClients(sdkConfig(t, sb.endpoint))
	bin := lifeguardBinary(t)
	// The user data may start before the sandbox puts the instance in
	// Pending:Wait, so it asks until it is there, as a boot script would.
	waitPending := `for i in $(seq 1 100); do
  BIN lifecycle status > status.txt 2>&1 && grep -q 'Pending:Wait' status.txt && break
  sleep 0.1
done
`
	script := func(body string) string {
		return "#!/bin/sh\n" + strings.ReplaceAll(waitPending+body+"echo done > done.txt\n", "BIN", bin)
	}
	// run records a command's output and exit status in file.
	run := func(file, args string) string {
		return "BIN " + args + " > " + file + " 2>&1; echo \"exit $?\" >> " + file + "\n"
	}
	read := func(t *testing.T, dir, name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Run("status and complete find the instance, group and hook", func(t *testing.T) {
		createGroup(t, c, "one", script(run("complete.txt", "lifecycle complete")), launchHookSpec(launchHook, 30))
		setDesired(t, c, "one", 1)
		id := ev.waitFor(t, "one's instance in Pending:Wait", func(e event) bool {
			return e.Kind == "instance-state" && e.State == "Pending:Wait" && e.Group == "one"
		}).Instance
		dir := filepath.Join(sb.stateDir, "instances", id)
		dumpConsoleOnFailure(t, dir)
		done := ev.waitFor(t, "launch action ended", func(e event) bool {
			return (e.Kind == "action-completed" || e.Kind == "action-timed-out") && e.Instance == id
		})
		if done.Kind != "action-completed" || done.Hook != launchHook || done.Result != "CONTINUE" || done.Detail != "completed" {
			t.Errorf("launch action ended with %s of %s %s (%s), want action-completed of %s CONTINUE", done.Kind, done.Hook, done.Result, done.Detail, launchHook)
		}
		ev.waitFor(t, id+" InService", stateIs(id, "InService"))
		waitFile(t, filepath.Join(dir, "done.txt"))
		status := read(t, dir, "status.txt")
		for _, want := range []string{
			"instance:        " + id + "\n",
			"group:           one\n",
			"lifecycle state: Pending:Wait\n",
			"target state:    InService\n",
			"pending action:  hook " + launchHook + " (autoscaling:EC2_INSTANCE_LAUNCHING)",
		} {
			if !strings.Contains(status, want) {
				t.Errorf("lifecycle status output lacks %q:\n%s", want, status)
			}
		}
		if got, want := read(t, dir, "complete.txt"), "completed "+launchHook+" of "+id+" (autoscaling:EC2_INSTANCE_LAUNCHING) with CONTINUE\nexit 0\n"; got != want {
			t.Errorf("lifecycle complete printed %q, want %q", got, want)
		}
	})

	t.Run("complete without --hook names the hooks when there are several", func(t *testing.T) {
		createGroup(t, c, "two", script(run("nohook.txt", "lifecycle complete")+
			run("first.txt", "lifecycle complete --hook first")+
			run("second.txt", "lifecycle complete --hook second")),
			launchHookSpec("first", 30), launchHookSpec("second", 30))
		setDesired(t, c, "two", 1)
		id := ev.waitFor(t, "two's instance in Pending:Wait", func(e event) bool {
			return e.Kind == "instance-state" && e.State == "Pending:Wait" && e.Group == "two"
		}).Instance
		dir := filepath.Join(sb.stateDir, "instances", id)
		dumpConsoleOnFailure(t, dir)
		ev.waitAll(t, map[string]func(event) bool{
			"first completed":  completedBy(id, "first"),
			"second completed": completedBy(id, "second"),
		})
		ev.waitFor(t, id+" InService", stateIs(id, "InService"))
		waitFile(t, filepath.Join(dir, "done.txt"))
		nohook := read(t, dir, "nohook.txt")
		for _, want := range []string{"first", "second", "--hook"} {
			if !strings.Contains(nohook, want) {
				t.Errorf("lifecycle complete without --hook printed %q; want it to name %q", nohook, want)
			}
		}
		if !strings.HasSuffix(nohook, "exit 1\n") {
			t.Errorf("lifecycle complete without --hook: %q, want exit status 1", nohook)
		}
		for _, h := range []string{"first", "second"} {
			if got, want := read(t, dir, h+".txt"), "completed "+h+" of "+id+" (autoscaling:EC2_INSTANCE_LAUNCHING) with CONTINUE\nexit 0\n"; got != want {
				t.Errorf("lifecycle complete --hook %s printed %q, want %q", h, got, want)
			}
		}
	})
}

// TestAgentSIGTERMExitAndDrain: with on_sigterm: drain, SIGTERM to the
// agent of an instance in service runs the terminate plan with reason
// sigterm, then the agent exits; the instance stays in service.
func TestAgentSIGTERMExitAndDrain(t *testing.T) {
	sb := startSandbox(t, "--relax-limits")
	ev := followEvents(t, sb.endpoint)
	c := newClients(sdkConfig(t, sb.endpoint))
	createGroup(t, c, "web", agentScript(lifeguardBinary(t), `terminate:
  steps:
    - name: drain
      command: ["sh", "-c", "echo \"\$LIFEGUARD_REASON\" >> $PWD/steps.log"]
      timeout: 10s
on_sigterm: drain
`, "BIN agent --config agent.yaml; echo \"exit $?\" > agent-exit.txt"),
		launchHookSpec(launchHook, 30), terminateHookSpec(terminateHook, 30))
	id, dir := launchOne(t, sb, ev, c, "web")
	pid := pidOfProcessIn(t, dir)
	if pid == 0 {
		t.Fatal("no agent process to signal")
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid, "the agent after SIGTERM")
	if got := string(waitFile(t, filepath.Join(dir, "agent-exit.txt"))); got != "exit 0\n" {
		t.Errorf("the agent ended with %q after SIGTERM, want exit 0", got)
	}
	got, err := os.ReadFile(filepath.Join(dir, "steps.log"))
	if err != nil {
		t.Errorf("the terminate plan did not run on SIGTERM with on_sigterm: drain: %v", err)
	} else if string(got) != "sigterm\n" {
		t.Errorf("the step saw LIFEGUARD_REASON=%q, want sigterm", strings.TrimSpace(string(got)))
	}
	if st := sandboxInstances(t, sb.endpoint)[id].State; st != "InService" {
		t.Errorf("instance is %s after the drain, want InService (SIGTERM alone does not terminate it)", st)
	}
}
