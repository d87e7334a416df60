package systest_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDocsSandboxBlocks runs every ```sh block of docs/sandbox.md as
// written, in order, as a user following the page in one terminal would:
// a sandbox on a free port stands in for the one on 127.0.0.1:4566 (the
// endpoint and port are the only substitutions), the variables a block
// exports carry over to the next, `lifeguard` is the binary built from
// this tree (as `go run ./cmd/lifeguard` builds it), `aws` is the first on
// PATH, and /usr/bin/aws (Debian's CLI 2.9) where the block is about 2.9.
// A block whose every command starts a sandbox is started line by line: it
// must print its banner, then stop on SIGTERM and exit 0.
//
// docs/agent.md and docs/leader.md are not covered here.
func TestDocsSandboxBlocks(t *testing.T) {
	awsCLI(t, "") // the first aws on PATH, whatever its version
	requireTool(t, "curl", func() (string, error) { return exec.LookPath("curl") })
	requireTool(t, "python3 with boto3", func() (string, error) {
		return "python3", exec.Command("python3", "-c", "import boto3").Run()
	})
	blocks := shellBlocks(t, "../../docs/sandbox.md")
	if len(blocks) < 5 {
		t.Fatalf("docs/sandbox.md has %d sh blocks; the test expects the page's start, client, clock and fault blocks", len(blocks))
	}
	binDir := filepath.Dir(lifeguardBinary(t))
	var sb *sandboxProc
	env := append(cleanShellEnv(t), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	for i, block := range blocks {
		if servers := serverLines(block); servers != nil {
			for _, line := range servers {
				runServerLine(t, binDir, line)
			}
			continue
		}
		if sb == nil {
			sb = startSandbox(t, "--relax-limits")
		}
		host := strings.TrimPrefix(sb.endpoint, "http://")
		script := strings.NewReplacer("http://127.0.0.1:4566", sb.endpoint, "127.0.0.1:4566", host, "localhost:4566", host).Replace(block)
		blockEnv := env
		if strings.Contains(block, "2.9") || precededBy2_9(t, i) {
			cli29 := awsCLI(t, "2.9")
			t.Logf("block %d is about the AWS CLI 2.9: it runs with %s", i+1, cli29)
			blockEnv = withAWS(t, env, cli29)
		}
		env = runBlock(t, i, script, blockEnv)
	}
	if sb == nil {
		t.Fatal("docs/sandbox.md has no client block")
	}
}

// precededBy2_9 reports whether the paragraph right before the i-th sh
// block of docs/sandbox.md is about the AWS CLI 2.9.
func precededBy2_9(t *testing.T, i int) bool {
	data, err := os.ReadFile("../../docs/sandbox.md")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(data), "```sh")
	if i+1 >= len(parts) {
		return false
	}
	paras := strings.Split(strings.TrimSpace(parts[i]), "\n\n")
	return strings.Contains(paras[len(paras)-1], "CLI 2.9") // the paragraph that introduces the block
}

// withAWS returns env with a PATH whose first aws is the given one.
func withAWS(t *testing.T, env []string, aws string) []string {
	dir := t.TempDir()
	if err := os.Symlink(aws, filepath.Join(dir, "aws")); err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			kv = "PATH=" + dir + string(os.PathListSeparator) + v
		}
		out = append(out, kv)
	}
	return out
}

// serverLines returns the commands of a block that only starts sandboxes
// (`lifeguard sandbox` or `go run ./cmd/lifeguard sandbox` with flags and
// no subcommand), or nil for any other block.
func serverLines(block string) []string {
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		rest, ok := strings.CutPrefix(l, "go run ./cmd/lifeguard sandbox")
		if !ok {
			rest, ok = strings.CutPrefix(l, "lifeguard sandbox")
		}
		if f := strings.Fields(rest); !ok || (len(f) > 0 && !strings.HasPrefix(f[0], "-") && !strings.HasPrefix(f[0], "#")) {
			return nil
		}
		lines = append(lines, l)
	}
	return lines
}

// runServerLine starts one documented sandbox command in a fresh
// directory, on a free port unless the line names its own, waits for its
// banner, and stops it.
func runServerLine(t *testing.T, binDir, line string) {
	t.Helper()
	cmdline := strings.Replace(line, "go run ./cmd/lifeguard sandbox", "lifeguard sandbox", 1)
	if !strings.Contains(cmdline, "--listen") {
		cmdline = strings.Replace(cmdline, "lifeguard sandbox", "lifeguard sandbox --listen 127.0.0.1:0", 1)
	}
	cmd := exec.Command("bash", "-c", "exec "+cmdline)
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanShellEnv(t), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	banner := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			banner <- sc.Text()
		}
		close(banner)
		for sc.Scan() {
		}
	}()
	select {
	case b, ok := <-banner:
		if !ok || !strings.HasPrefix(b, "lifeguard sandbox listening on http://127.0.0.1:") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("documented command %q printed %q, want the sandbox's banner; stderr:\n%s", line, b, stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("documented command %q did not start within 30 s", line)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("documented command %q after SIGTERM: %v\n%s", line, err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Errorf("documented command %q did not stop within 30 s of SIGTERM", line)
	}
}

// runBlock runs a client block with bash -euo pipefail and returns the
// environment it leaves (its exports), for the blocks after it.
func runBlock(t *testing.T, i int, script string, env []string) []string {
	t.Helper()
	state := filepath.Join(t.TempDir(), "env")
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script+"\nenv -0 > "+state+"\n")
	cmd.Dir = t.TempDir()
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("docs/sandbox.md sh block %d failed: %v\n%s\nstdout:\n%s\nstderr:\n%s", i+1, err, script, out.String(), errb.String())
	}
	t.Logf("block %d:\n%s\n→ %s", i+1, script, strings.TrimSpace(out.String()))
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	var next []string
	for _, kv := range strings.Split(strings.TrimRight(string(data), "\x00"), "\x00") {
		if strings.HasPrefix(kv, "PWD=") || strings.HasPrefix(kv, "OLDPWD=") || strings.HasPrefix(kv, "SHLVL=") || strings.HasPrefix(kv, "_=") {
			continue
		}
		next = append(next, kv)
	}
	return next
}
