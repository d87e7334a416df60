package systest_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shellBlocks returns the ```sh blocks of a Markdown file, in order.
func shellBlocks(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur *strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```sh":
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line)
			cur.WriteByte('\n')
		}
	}
	return blocks
}

// cleanShellEnv is the environment of a new terminal: the machine's PATH,
// a fresh HOME and none of the test process's AWS_* variables, so a block
// works only if it sets what it needs itself.
func cleanShellEnv(t *testing.T) []string {
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "AWS_PAGER=", "LANG=C.UTF-8",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials")}
	return env
}

// TestREADMESandboxWalkthrough runs the README's sandbox walkthrough as
// written, with the first `aws` on PATH: the sandbox started with the
// README's own flags (on a free port instead of 4566), then the client
// block in a shell whose environment holds only what the block exports.
func TestREADMESandboxWalkthrough(t *testing.T) {
	awsCLI(t, "") // the first aws on PATH, whatever its version
	blocks := shellBlocks(t, "../../README.md")
	var server, client string
	for i, b := range blocks {
		if strings.HasPrefix(b, "go run ./cmd/lifeguard sandbox") && i+1 < len(blocks) {
			server, client = b, blocks[i+1]
		}
	}
	if server == "" {
		t.Fatal("README has no block starting the sandbox with `go run ./cmd/lifeguard sandbox` followed by a client block")
	}
	args := strings.Fields(strings.TrimPrefix(strings.TrimSpace(server), "go run ./cmd/lifeguard sandbox"))
	sb := startSandbox(t, args...)
	ev := followEvents(t, sb.endpoint)
	if !strings.Contains(client, "http://127.0.0.1:4566") {
		t.Fatalf("the README's client block does not use the sandbox's default endpoint http://127.0.0.1:4566:\n%s", client)
	}
	script := strings.ReplaceAll(client, "http://127.0.0.1:4566", sb.endpoint)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Env = cleanShellEnv(t)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("README walkthrough failed: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), `"AutoScalingGroupName": "web"`) {
		t.Errorf("describe-auto-scaling-groups did not show the group web:\n%s", out.String())
	}
	// The user data really ran on both instances.
	var launched []string
	for len(launched) < 2 {
		e := ev.waitFor(t, "an instance of web in service", func(e event) bool { return e.Group == "web" && e.State == "InService" })
		launched = append(launched, e.Instance)
	}
}
