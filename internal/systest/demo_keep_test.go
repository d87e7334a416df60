package systest_test

import (
	"bufio"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoKeepSaysTheSandboxKeepsRunning: `demo --keep` used to print "the
// sandbox stops now" and then "The sandbox keeps running". It must say
// only the latter, keep serving until interrupted, then exit 0.
func TestDemoKeepSaysTheSandboxKeepsRunning(t *testing.T) {
	cmd := exec.Command(lifeguardBinary(t), "demo", "--keep")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testWriter{t: t, prefix: "demo stderr: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var out []string
	deadline := time.After(2 * time.Minute)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo --keep exited before saying the sandbox keeps running:\n%s", strings.Join(out, "\n"))
			}
			out = append(out, l)
			if strings.Contains(l, "keeps running") {
				break wait
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("demo --keep did not finish its scenario within 2 minutes:\n%s", strings.Join(out, "\n"))
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		out = append(out, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("demo --keep after SIGINT: %v", err)
	}
	text := strings.Join(out, "\n")
	if strings.Contains(text, "stops now") {
		t.Errorf("demo --keep says the sandbox stops, then that it keeps running:\n%s", text)
	}
}
