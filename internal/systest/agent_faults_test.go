package systest_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestAgentUnderFaults terminates instances while the AWS APIs misbehave:
// with 10 % throttling and 200 ms of latency for every caller the plan
// still completes; and an instance cut off from AWS in mid-plan, healed
// before its hook times out, still ends in exactly one completion.
func TestAgentUnderFaults(t *testing.T) {
	sb := startSandbox(t, "--relax-limits", "--seed", "7")
	ev := followEvents(t, sb.endpoint)
	c := newClients(sdkConfig(t, sb.endpoint))
	createGroup(t, c, "web", agentScript(lifeguardBinary(t), `terminate:
  steps:
    - name: drain
      command: ["sh", "-c", "echo drain started >> $PWD/runs.log; while [ ! -f $PWD/gate ]; do sleep 0.05; done"]
      timeout: 60s
`, execAgent), launchHookSpec(launchHook, 30), terminateHookSpec(terminateHook, 10))

	t.Run("throttling and latency", func(t *testing.T) {
		id, dir := launchOne(t, sb, ev, c, "web")
		admin(t, sb.endpoint, "/_sandbox/faults", map[string]any{"throttle": 0.1, "latency": "200ms"})
		defer clearFaults(t, sb.endpoint, "")
		setDesired(t, c, "web", 0)
		waitFile(t, filepath.Join(dir, "runs.log"))
		if err := os.WriteFile(filepath.Join(dir, "gate"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		done := ev.waitFor(t, "terminate action completed", completedBy(id, terminateHook))
		if done.Result != "CONTINUE" || done.Detail != "completed" {
			t.Errorf("terminate action ended %s (%s), want CONTINUE by the agent", done.Result, done.Detail)
		}
		ev.waitFor(t, id+" Terminated", stateIs(id, "Terminated"))
	})

	t.Run("cut off in mid-plan, healed before the timeout", func(t *testing.T) {
		id, dir := launchOne(t, sb, ev, c, "web")
		setDesired(t, c, "web", 0)
		waitFile(t, filepath.Join(dir, "runs.log"))
		admin(t, sb.endpoint, "/_sandbox/faults", map[string]any{"instance": id, "cut": true})
		if err := os.WriteFile(filepath.Join(dir, "gate"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		// The step is done; the agent's completion fails while cut off.
		waitConsole(t, dir, regexp.MustCompile("complete lifecycle action failed"))
		clearFaults(t, sb.endpoint, id)
		done := ev.waitFor(t, "terminate action completed", completedBy(id, terminateHook))
		if done.Result != "CONTINUE" || done.Detail != "completed" {
			t.Errorf("terminate action ended %s (%s), want CONTINUE by the agent", done.Result, done.Detail)
		}
		ev.waitFor(t, id+" Terminated", stateIs(id, "Terminated"))
		var completions int
		for _, e := range eventLog(t, sb.endpoint) {
			if e.Instance == id && e.Hook == terminateHook && (e.Kind == "action-completed" || e.Kind == "action-timed-out") {
				completions++
			}
		}
		if completions != 1 {
			t.Errorf("%d completions or time-outs of the terminate action, want exactly one", completions)
		}
	})
}

func clearFaults(t *testing.T, endpoint, instance string) {
	t.Helper()
	url := endpoint + "/_sandbox/faults"
	if instance != "" {
		url += "?instance=" + instance
	}
	req, _ := http.NewRequest(http.MethodDelete, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
