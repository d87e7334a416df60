package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/cli"
	"github.com/lifeguardhq/lifeguard/internal/sandbox"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	// A command that should have failed at once but serves instead (a
	// sandbox) ends here, and the test fails rather than hangs.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cli.Run(ctx, args, &out, &errb)
	return out.String() + errb.String(), err
}

func TestSandboxHelpAndDocsListEveryDeviation(t *testing.T) {
	help, err := run(t, "sandbox", "--help")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/sandbox.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range sandbox.Deviations {
		if !strings.Contains(string(doc), "- "+d+"\n") {
			t.Errorf("docs/sandbox.md does not list deviation %q", d)
		}
	}
	if !strings.Contains(string(doc), "\n## Deviations from AWS\n") {
		t.Error("docs/sandbox.md has no section \"Deviations from AWS\"")
	}
	if !strings.Contains(help, `"Deviations from AWS" in
docs/sandbox.md`) {
		t.Errorf("sandbox --help does not point to the deviations in docs/sandbox.md:\n%s", help)
	}
	for _, svc := range []string{"Auto Scaling", "EC2", "IMDS", "SQS", "SNS", "EventBridge", "DynamoDB"} {
		if !strings.Contains(help, svc) {
			t.Errorf("sandbox --help does not name the service %s", svc)
		}
	}
	long, _, _ := strings.Cut(help, "\nUsage:")
	for i, line := range strings.Split(long, "\n") {
		if len([]rune(line)) > 80 {
			t.Errorf("sandbox --help line %d is %d characters long (not wrapped): %q", i+1, len([]rune(line)), line)
		}
	}
}

func TestSandboxFlagErrorsNameTheFlagAndTheFix(t *testing.T) {
	used := t.TempDir() // a state directory an earlier run left files in
	if err := os.MkdirAll(used+"/instances/i-0123456789abcdef0", 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"listen without a port", []string{"sandbox", "--listen", "localhost"}, "--listen: \"localhost\" is not host:port (for example 127.0.0.1:4566)"},
		{"short account id", []string{"sandbox", "--account", "1234"}, "--account: \"1234\" is not a 12-digit AWS account id"},
		{"region typo", []string{"sandbox", "--region", "useast1"}, "--region: \"useast1\" is not a region name such as us-east-1"},
		{"log level", []string{"sandbox", "--log-level", "loud"}, "--log-level: \"loud\" is not one of debug, info, warn, error"},
		{"negative share", []string{"sandbox", "fault", "set", "--throttle", "1.5"}, "--throttle: 1.5 is not a share between 0 and 1"},
		{"clock needs a positive duration", []string{"sandbox", "clock", "advance", "0s"}, "is not a positive duration"},
		{"clock duration beyond what a clock holds", []string{"sandbox", "clock", "advance", "9999999h"}, "DURATION: \"9999999h\" is not a positive duration"},
		{"negative stop grace", []string{"sandbox", "--stop-grace", "-1s"}, "--stop-grace: -1s is negative"},
		{"error status", []string{"sandbox", "fault", "set", "--errors", "0.1", "--error-status", "418"}, "--error-status: 418 is not one of 500, 502, 503, 504"},
		{"negative spot notice", []string{"sandbox", "fault", "spot", "i-0123456789abcdef0", "--notice", "-1m"}, "--notice: -1m0s is negative"},
		{"events after a negative sequence", []string{"sandbox", "events", "--after", "-1"}, "--after: -1 is not an event sequence number"},
		{"output format", []string{"sandbox", "fault", "list", "-o", "yaml"}, "--output: \"yaml\" is not one of text, json"},
		{"non-loopback listen", []string{"sandbox", "--listen", "192.0.2.1:0", "--no-processes"}, "--listen: \"192.0.2.1:0\" is not a loopback address"},
		{"state dir not empty", []string{"sandbox", "--listen", "127.0.0.1:0", "--no-processes", "--state-dir", used}, "--state-dir: " + used + " is not empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := run(t, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
			if code, _ := cli.ExitCode(err); code != cli.ExitUsage {
				t.Errorf("exit code %d, want %d (usage)", code, cli.ExitUsage)
			}
		})
	}
}

// startSandbox runs a sandbox without processes on a free port for a test
// of the commands that drive it.
func startSandbox(t *testing.T) (*sandbox.Server, string) {
	t.Helper()
	srv, err := sandbox.New(sandbox.Config{Listen: "127.0.0.1:0", NoProcesses: true})
	if err != nil {
		t.Fatal(err)
	}
	endpoint, stop, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop(); http.DefaultClient.CloseIdleConnections() })
	return srv, endpoint
}

// TestClockAdvanceNeverWrapsToThePast: `clock advance` to the edge of what
// the clock holds, then once more: the second is refused, naming advance.
func TestClockAdvanceNeverWrapsToThePast(t *testing.T) {
	srv, endpoint := startSandbox(t)
	if out, err := run(t, "sandbox", "clock", "advance", "--endpoint", endpoint, "2562047h"); err != nil {
		t.Fatalf("first advance: %v\n%s", err, out)
	}
	before := srv.Clock().Now()
	out, err := run(t, "sandbox", "clock", "advance", "--endpoint", endpoint, "1h")
	if err == nil || !strings.Contains(err.Error(), "advance: 1h0m0s would carry the clock past the latest time it can hold") {
		t.Errorf("second advance: %v\n%s\nwant it refused naming advance", err, out)
	}
	if now := srv.Clock().Now(); now.Before(before) {
		t.Errorf("the clock went back to %s", now)
	}
}

// TestSandboxCommandsPrintJSON: every sandbox command that prints state
// takes -o json (and --json).
func TestSandboxCommandsPrintJSON(t *testing.T) {
	_, endpoint := startSandbox(t)
	decode := func(args ...string) map[string]any {
		t.Helper()
		out, err := run(t, args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%s printed %q, not one JSON object: %v", strings.Join(args, " "), out, err)
		}
		return v
	}
	if v := decode("sandbox", "fault", "set", "--endpoint", endpoint, "--latency", "1ms", "-o", "json"); len(v["faults"].([]any)) != 1 {
		t.Errorf("fault set -o json: %v", v)
	}
	if v := decode("sandbox", "fault", "list", "--endpoint", endpoint, "--json"); len(v["faults"].([]any)) != 1 {
		t.Errorf("fault list --json: %v", v)
	}
	if v := decode("sandbox", "fault", "clear", "--endpoint", endpoint, "-o", "json"); v["faults"] == nil || len(v["faults"].([]any)) != 0 {
		t.Errorf("fault clear -o json: %v, want an empty list", v)
	}
	if v := decode("sandbox", "clock", "advance", "--endpoint", endpoint, "90s", "-o", "json"); v["offset"] != "1m30s" {
		t.Errorf("clock advance -o json: %v", v)
	}
	if v := decode("sandbox", "clock", "show", "--endpoint", endpoint, "-o", "json"); v["offset"] != "1m30s" || v["now"] == nil {
		t.Errorf("clock show -o json: %v", v)
	}
	out, err := run(t, "sandbox", "events", "--endpoint", endpoint, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil || e["kind"] == nil {
			t.Errorf("events -o json line %q is not an event: %v", l, err)
		}
	}
	if len(lines) < 3 {
		t.Errorf("events -o json printed %d events, want the faults and the clock advance", len(lines))
	}
}

// TestSandboxBannerOnEveryInterface: with --allow-non-loopback on 0.0.0.0
// the banner's endpoint is one this host reaches, and the addresses other
// hosts reach are printed with what exposing the API means.
func TestSandboxBannerOnEveryInterface(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- cli.Run(ctx, []string{"sandbox", "--listen", "0.0.0.0:0", "--allow-non-loopback", "--no-processes", "--quiet"}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var banner []string
	for sc.Scan() {
		banner = append(banner, sc.Text())
		if strings.HasPrefix(strings.TrimSpace(sc.Text()), "aws autoscaling") {
			break
		}
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	text := strings.Join(banner, "\n")
	if len(banner) == 0 || !strings.HasPrefix(banner[0], "lifeguard sandbox listening on http://127.0.0.1:") {
		t.Errorf("banner:\n%s\nwant the loopback endpoint first", text)
	}
	if strings.Contains(text, "[::]") || strings.Contains(text, "0.0.0.0") {
		t.Errorf("banner:\n%s\nprints an address no client can reach", text)
	}
	if !strings.Contains(text, "reachable from other hosts at ") || !strings.Contains(text, "can run code on this host as this user") {
		t.Errorf("banner:\n%s\nwant the reachable addresses and what exposing the API means", text)
	}
}
