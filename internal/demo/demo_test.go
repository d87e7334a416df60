package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestInteresting feeds the timeline lines as the agent's text logger
// writes them (quoted values with spaces included) and the app's own.
func TestInteresting(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("agent started", "status", "http://127.0.0.1:1", "pid", 4242)
	log.Info("step started", "step", "ship-logs")
	log.Info("step finished", "step", "ship-logs", "exit_code", 0, "timed_out", false)
	log.Info("leading", "token", 7)
	log.Info("leading", "token", 0)
	log.Info("no longer leading", "token", 7, "holder", "i-2")
	log.Info("leadership handed off", "reason", "lifecycle-hook")
	log.Info("scheduled run ended", "job", "report", "slot", "x", "token", 7, "pid", 1, "outcome", "exit 0")
	log.Info("something else entirely")
	want := []string{
		"agent: started (pid 4242)",
		"agent: step ship-logs started",
		"agent: step ship-logs finished (exit 0)",
		"agent: leading with fencing token 7",
		"agent: leading",
		"agent: no longer leading",
		"agent: leadership handed off (lifecycle-hook)",
		"agent: leader-only job report ran with fencing token 7: exit 0",
	}
	var got []string
	for l := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		msg, at, ok := interesting(l)
		if !ok {
			continue
		}
		if time.Since(at) > time.Minute {
			t.Errorf("%q: time %v not read from the line", l, at)
		}
		got = append(got, msg)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("timeline lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range []string{"app: serving on 127.0.0.2:1234", "user data: the agent exited (137); starting it again in 1s"} {
		if msg, _, ok := interesting(l); !ok || msg != l {
			t.Errorf("interesting(%q) = %q, %t; want it as it is", l, msg, ok)
		}
	}
}

func TestCheckScenario(t *testing.T) {
	for _, s := range append([]string{""}, Scenarios...) {
		if err := CheckScenario(s); err != nil {
			t.Errorf("CheckScenario(%q) = %v", s, err)
		}
		if p := planFor(s); len(p.steps) == 0 || !p.web && !p.tag {
			t.Errorf("planFor(%q) = %+v: nothing to do", s, p)
		}
	}
	err := CheckScenario("chaos")
	var u *UnknownScenarioError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), `"chaos"`) || !strings.Contains(err.Error(), "lifecycle, leader, traffic, tag") {
		t.Errorf("CheckScenario(chaos) = %v, want an UnknownScenarioError naming it and the valid ones", err)
	}
	if err := Run(t.Context(), Options{Out: io.Discard, Scenario: "chaos"}); !errors.As(err, &u) {
		t.Errorf("Run with an unknown scenario = %v, want an UnknownScenarioError before starting anything", err)
	}
}

// TestServeApp runs the app against a stand-in for instance metadata: it
// reads its id and address with an IMDSv2 token, warms up, marks itself
// ready and answers with its id.
func TestServeApp(t *testing.T) {
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			fmt.Fprint(w, "tok")
		case r.Header.Get("X-aws-ec2-metadata-token") != "tok":
			http.Error(w, "no token", http.StatusUnauthorized)
		case r.URL.Path == "/latest/meta-data/instance-id":
			fmt.Fprint(w, "i-0123456789abcdef0")
		case r.URL.Path == "/latest/meta-data/local-ipv4":
			fmt.Fprint(w, "127.0.0.1")
		default:
			http.NotFound(w, r)
		}
	}))
	defer imds.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL+"/")
	t.Chdir(t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- ServeApp(ctx, &out, port) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeApp: %v", err)
		}
	}()
	// Wait for the readiness file the agent's probe looks for.
	deadline := time.Now().Add(AppWarmUp + 10*time.Second)
	for {
		if _, err := os.Stat("app.ready"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("app.ready not written within %v", AppWarmUp+10*time.Second)
		}
		time.Sleep(20 * time.Millisecond) // polling a file another goroutine writes
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok from i-0123456789abcdef0\n" {
		t.Errorf("GET / = %s %q", resp.Status, body)
	}
}

func TestServeAppOutsideAnInstance(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "")
	err := ServeApp(t.Context(), io.Discard, 8080)
	if err == nil || !strings.Contains(err.Error(), "AWS_EC2_METADATA_SERVICE_ENDPOINT") {
		t.Errorf("ServeApp without instance metadata = %v, want an error naming the variable", err)
	}
}
