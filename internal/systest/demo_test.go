package systest_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDemo runs the README's first command as a user would: it must exit
// 0, show both launches held until ready and both terminations drained,
// and leave no agent behind.
func TestDemo(t *testing.T) {
	before := agentCount(t)
	out, err := exec.Command(lifeguardBinary(t), "demo").CombinedOutput()
	if err != nil {
		t.Fatalf("lifeguard demo: %v\n%s", err, out)
	}
	text := string(out)
	if n := strings.Count(text, "launch held"); n != 2 {
		t.Errorf("summary has %d instances, want 2:\n%s", n, text)
	}
	for _, want := range []string{"wait-until-ready completed with CONTINUE", "drain-before-terminate completed with CONTINUE", "step drain started", "step ship-logs finished (exit 0)", "→ Terminated"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	// The timeline is in order: the scale-in line follows both InService
	// transitions.
	scaleIn := strings.Index(text, "both instances in service")
	if scaleIn < 0 || strings.Count(text[:scaleIn], "→ InService") != 2 {
		t.Errorf("\"both instances in service\" does not follow two \"→ InService\" lines:\n%s", text)
	}
	// Console lines and sandbox events merge in time order: each
	// instance's last step finishes before its action completes.
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[1], "i-") || !strings.Contains(line, "drain-before-terminate completed") {
			continue
		}
		done := strings.Index(text, f[1]+"  agent: step ship-logs finished")
		if completed := strings.Index(text, line); done < 0 || done > completed {
			t.Errorf("%s: \"step ship-logs finished\" does not come before its completion:\n%s", f[1], text)
		}
	}
	if strings.Contains(text, "→ ?") {
		t.Errorf("an action did not complete:\n%s", text)
	}
	if after := agentCount(t); after != before {
		t.Errorf("%d agent processes before the demo, %d after", before, after)
	}
}

// agentCount counts running `lifeguard agent` processes.
func agentCount(t *testing.T) int {
	t.Helper()
	out, _ := exec.Command("pgrep", "-fc", "agent --config").Output()
	n := 0
	for _, ch := range strings.TrimSpace(string(out)) {
		n = n*10 + int(ch-'0')
	}
	return n
}
