package systest_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// requireTool finds an external tool for an interop test. Missing tools
// skip loudly, and fail under CI=true, where scripts/test installs them.
func requireTool(t *testing.T, what string, find func() (string, error)) string {
	t.Helper()
	path, err := find()
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("INTEROP TEST NOT RUN: %s is not available (%v); scripts/test installs what Debian packages and the machine image provide", what, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// awsCLI returns the path of an AWS CLI whose version starts with major
// ("1." or "2.").
func awsCLI(t *testing.T, major string) string {
	return requireTool(t, "AWS CLI v"+strings.TrimSuffix(major, "."), func() (string, error) {
		var candidates []string
		if p, err := exec.LookPath("aws"); err == nil {
			candidates = append(candidates, p)
		}
		candidates = append(candidates, "/usr/bin/aws", "/usr/local/bin/aws")
		for _, p := range candidates {
			out, err := exec.Command(p, "--version").CombinedOutput()
			if err == nil && strings.HasPrefix(string(out), "aws-cli/"+major) {
				return p, nil
			}
		}
		return "", fmt.Errorf("no aws-cli/%s* among %v", major, candidates)
	})
}

// freePort returns a free loopback port.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startMoto runs moto_server on a free loopback port for the test.
func startMoto(t *testing.T) string {
	t.Helper()
	bin := requireTool(t, "moto_server", func() (string, error) { return exec.LookPath("moto_server") })
	port := freePort(t)
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Stdout = nil
	cmd.Stderr = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer within 60 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
