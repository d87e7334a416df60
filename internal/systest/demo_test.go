package systest_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// runDemo runs `lifeguard demo ARGS --state-dir DIR` as a user would and
// returns its output, its exit code and the state directory.
func runDemo(t *testing.T, args ...string) (string, int, string) {
	t.Helper()
	stateDir := filepath.Join(t.TempDir(), "state")
	out, err := exec.Command(lifeguardBinary(t), append(append([]string{"demo"}, args...), "--state-dir", stateDir)...).CombinedOutput()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("lifeguard demo %v: %v", args, err)
	}
	return string(out), code, stateDir
}

// TestDemo runs the README's first command, the whole story, as a user
// would: it must exit 0 after every scripted event, with no request
// failed through the load balancer, exactly one leader and one tagged
// instance at the end, and no process of its own left.
func TestDemo(t *testing.T) {
	text, code, stateDir := runDemo(t)
	if code != 0 {
		t.Fatalf("lifeguard demo exited %d:\n%s", code, text)
	}
	// The script, in order, each step done.
	at := 0
	for _, step := range []string{"scale out 3 → 4", "scale in of the leader", "kill -9 of the leader's agent", "spot interruption", "rolling restart", "termination of the tagged instance"} {
		i := strings.Index(text[at:], "SCRIPT  "+step+": done in")
		if i < 0 {
			t.Fatalf("the timeline lacks %q done after the previous step:\n%s", step, text)
		}
		at += i
	}
	for _, want := range []string{
		"wait-until-healthy completed with CONTINUE", "drain-before-terminate completed with CONTINUE", "heartbeat for drain-before-terminate",
		"agent: step ship-logs finished (exit 0)", "agent: leadership handed off", "leader-only job report ran with fencing token",
		"spot interruption notice", "target healthy", "target draining", "user data: the agent exited (137)",
		"LAMBDA  environment lifeguard-controller-1 of lifeguard-controller started", "TAG     app:isLeader=true on",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the timeline lacks %q:\n%s", want, text)
		}
	}
	// Fencing tokens only grow.
	var last uint64
	for _, m := range regexp.MustCompile(`LEASE   held by i-[0-9a-f]+, fencing token (\d+)`).FindAllStringSubmatch(text, -1) {
		tok, _ := strconv.ParseUint(m[1], 10, 64)
		if tok <= last {
			t.Errorf("fencing token %d after %d:\n%s", tok, last, text)
		}
		last = tok
	}
	if last < 4 {
		t.Errorf("the lease changed hands up to token %d, want at least 4 (scale-in, kill -9, rolling restart):\n%s", last, text)
	}
	checkSummary(t, text, 1000)
	if !regexp.MustCompile(`leader at the end: i-[0-9a-f]+, fencing token \d+; 1 of 3 web agents leading`).MatchString(text) {
		t.Errorf("the summary does not show exactly one of three web agents leading:\n%s", text)
	}
	if !regexp.MustCompile(`seed tagged app:isLeader=true at the end: 1 \(i-[0-9a-f]+\)`).MatchString(text) {
		t.Errorf("the summary does not show exactly one tagged instance in seed:\n%s", text)
	}
	if !strings.HasSuffix(strings.TrimSpace(text), "the sandbox has stopped, and every instance and Lambda environment with it") {
		t.Errorf("the demo does not end saying the sandbox has stopped:\n%s", text)
	}
	checkNoProcessLeft(t, stateDir)
}

// checkSummary checks the summary's total line: at least minServed
// requests served through the load balancer (0: no load ran), none failed.
func checkSummary(t *testing.T, text string, minServed int) {
	t.Helper()
	if !strings.Contains(text, "\nsummary (") {
		t.Fatalf("no summary:\n%s", text)
	}
	m := regexp.MustCompile(`total through the load balancer\s+(\d+)\s+(\d+)`).FindStringSubmatch(text)
	if minServed == 0 {
		if m != nil {
			t.Errorf("a load ran in a scenario without a load balancer:\n%s", text)
		}
		return
	}
	if m == nil {
		t.Fatalf("the summary has no total through the load balancer:\n%s", text)
	}
	served, _ := strconv.Atoi(m[1])
	failed, _ := strconv.Atoi(m[2])
	if failed != 0 {
		t.Errorf("%d requests failed through the load balancer, want none:\n%s", failed, text)
	}
	if served < minServed {
		t.Errorf("%d requests served, want at least %d: the load did not run:\n%s", served, minServed, text)
	}
}

// TestDemoScenarios runs the parts the whole story does not show alone:
// lifecycle (its plain scale-in), leader, and tag (the controller without
// a web group); and an unknown name, a usage error listing the valid ones.
// The traffic part's steps are the whole story's.
func TestDemoScenarios(t *testing.T) {
	t.Run("lifecycle", func(t *testing.T) {
		text, code, stateDir := runDemo(t, "--scenario", "lifecycle")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, text)
		}
		for _, want := range []string{"SCRIPT  scale out 3 → 4: done", "SCRIPT  scale in 4 → 3: done", "drain-before-terminate completed with CONTINUE", "1 of 3 web agents leading"} {
			if !strings.Contains(text, want) {
				t.Errorf("output lacks %q:\n%s", want, text)
			}
		}
		if strings.Contains(text, "s  LAMBDA  ") || strings.Contains(text, "SCRIPT  spot interruption") {
			t.Errorf("the lifecycle scenario ran other parts:\n%s", text)
		}
		checkSummary(t, text, 100)
		checkNoProcessLeft(t, stateDir)
	})
	t.Run("leader", func(t *testing.T) {
		text, code, stateDir := runDemo(t, "--scenario", "leader")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, text)
		}
		for _, want := range []string{"SCRIPT  scale in of the leader: done", "SCRIPT  kill -9 of the leader's agent: done", "fencing token 3", "1 of 2 web agents leading"} {
			if !strings.Contains(text, want) {
				t.Errorf("output lacks %q:\n%s", want, text)
			}
		}
		checkSummary(t, text, 100)
		checkNoProcessLeft(t, stateDir)
	})
	t.Run("tag", func(t *testing.T) {
		text, code, stateDir := runDemo(t, "--scenario", "tag")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, text)
		}
		if !regexp.MustCompile(`seed tagged app:isLeader=true at the end: 1 \(i-[0-9a-f]+\)`).MatchString(text) {
			t.Errorf("the summary does not show exactly one tagged instance:\n%s", text)
		}
		// The agents read the tag from instance metadata: the first
		// holder's marker, removed when the tag moves, then the next's.
		if n := strings.Count(text, "marker file is-leader written"); n < 2 || !strings.Contains(text, "marker file is-leader removed") {
			t.Errorf("the agents' markers did not follow the tag (%d written):\n%s", n, text)
		}
		if strings.Contains(text, "group web") {
			t.Errorf("the tag scenario made the web group:\n%s", text)
		}
		checkSummary(t, text, 0)
		checkNoProcessLeft(t, stateDir)
	})
	t.Run("unknown", func(t *testing.T) {
		out, err := exec.Command(lifeguardBinary(t), "demo", "--scenario", "chaos").CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Fatalf("demo --scenario chaos: %v, want exit 2:\n%s", err, out)
		}
		for _, want := range []string{`"chaos"`, "lifecycle, leader, traffic, tag"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("the error does not say %q:\n%s", want, out)
			}
		}
	})
}

// checkNoProcessLeft fails the test for any process still working in the
// demo's state directory.
func checkNoProcessLeft(t *testing.T, stateDir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(stateDir, "instances")); err != nil {
		t.Errorf("the demo ran no instance in %s: %v", stateDir, err)
	}
	for _, p := range processesIn(t, stateDir) {
		t.Errorf("process left behind: %s", p)
	}
}

// processesIn lists the processes working in stateDir: an instance's user
// data, agent or app (their working directory and HOME are the
// instance's), or a Lambda execution environment (its task root is the
// function's code there).
func processesIn(t *testing.T, stateDir string) []string {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil || len(procs) == 0 {
		t.Skipf("no /proc to look for the demo's processes: %v", err)
	}
	var out []string
	for _, p := range procs {
		cwd, _ := os.Readlink(filepath.Join(p, "cwd"))
		env, _ := os.ReadFile(filepath.Join(p, "environ"))
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		if strings.HasPrefix(cwd, stateDir) || strings.Contains(string(env), stateDir) || strings.Contains(string(cmdline), stateDir) {
			out = append(out, fmt.Sprintf("pid %s: %s (in %s)", filepath.Base(p), strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")), cwd))
		}
	}
	return out
}
