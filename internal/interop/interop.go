// Package interop starts the third-party tools that interop tests compare
// lifeguard with (moto_server today) and applies the project's rule for a
// missing tool: the test skips with a loud message, and fails when
// CI=true. It is for tests only; it imports nothing of lifeguard's and no
// AWS SDK, so tests on either side of the wire may use it.
package interop

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Require returns what find returns, or ends the test: skipped with a
// message naming the tool, or failed under CI=true.
func Require(t testing.TB, what string, find func() (string, error)) string {
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

// FreePort returns a loopback port free at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Moto runs moto_server on a free loopback port until the test ends and
// returns its endpoint once it answers. Each call starts a fresh server,
// so tests never share state.
func Moto(t testing.TB) string {
	t.Helper()
	bin := Require(t, "moto_server", func() (string, error) { return exec.LookPath("moto_server") })
	port := FreePort(t)
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	probe := &http.Transport{Proxy: nil}
	defer probe.CloseIdleConnections()
	client := &http.Client{Transport: probe, Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get(url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer within 60 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling an external process's start-up
	}
}
