package systest_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// lifeguardBinary builds cmd/lifeguard once per test run, static
// (CGO_ENABLED=0) and with -trimpath as scripts/release builds what ships,
// so that what the tests and benchmarks measure is that binary.
func lifeguardBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lifeguard-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "lifeguard")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "../../cmd/lifeguard")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// sandboxProc is `lifeguard sandbox` running as its own process.
type sandboxProc struct {
	cmd      *exec.Cmd
	endpoint string
	stateDir string
	lines    chan string // timeline lines
	done     chan struct{}
}

// startSandbox runs the built binary on a free loopback port and waits for
// its banner. It is stopped with SIGTERM when the test ends.
func startSandbox(t testing.TB, args ...string) *sandboxProc {
	t.Helper()
	stateDir := t.TempDir()
	cmd := exec.Command(lifeguardBinary(t), append([]string{"sandbox", "--listen", "127.0.0.1:0", "--state-dir", stateDir, "--stop-grace", "2s"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testWriter{t: t, prefix: "sandbox stderr: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &sandboxProc{cmd: cmd, stateDir: stateDir, lines: make(chan string, 10000), done: make(chan struct{})}
	banner := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			line := sc.Text()
			if first {
				banner <- line
				first = false
				continue
			}
			select {
			case p.lines <- line:
			default:
			}
		}
		if first {
			close(banner)
		}
	}()
	select {
	case line, ok := <-banner:
		if !ok {
			t.Fatal("sandbox exited before printing its banner")
		}
		// "lifeguard sandbox listening on http://127.0.0.1:PORT (…"
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasPrefix(f[4], "http://") {
			t.Fatalf("unexpected banner %q", line)
		}
		p.endpoint = f[4]
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("sandbox did not start within 30 s")
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *sandboxProc) stop(t testing.TB) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Error("sandbox did not stop within 30 s of SIGTERM")
	}
	_ = p.cmd.Wait()
}

type testWriter struct {
	t      testing.TB
	prefix string
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s%s", w.prefix, strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// sdkConfig loads the SDK's default configuration the way a user's program
// would, with only the standard environment pointing it at the sandbox.
func sdkConfig(t *testing.T, endpoint string) aws.Config {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "sandbox")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "sandbox")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// As lifeguard's own clients do: without it, a sandbox on the same host
	// answers fast enough to trip the SDK's request-body race (a 200 read
	// on a connection net/http has closed, then a retry; see
	// awscloud.OwnRequestBodies).
	awscloud.OwnRequestBodies(&cfg)
	return cfg
}

type clients struct {
	asg *autoscaling.Client
	ec2 *ec2.Client
}

func newClients(cfg aws.Config) clients {
	return clients{asg: autoscaling.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg)}
}

// event is the sandbox's event as /_sandbox/events serves it.
type event struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Group    string    `json:"group"`
	Instance string    `json:"instance"`
	Detail   string    `json:"detail"`
	State    string    `json:"state"`
	Hook     string    `json:"hook"`
	Token    string    `json:"token"`
	Result   string    `json:"result"`
}

// events follows the sandbox's event stream.
type events struct {
	ch  chan event
	err chan error
}

func followEvents(t testing.TB, endpoint string) *events {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/_sandbox/events?follow=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ev := &events{ch: make(chan event, 100000), err: make(chan error, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var e event
			if err := dec.Decode(&e); err != nil {
				if err != io.EOF && ctx.Err() == nil {
					ev.err <- err
				}
				close(ev.ch)
				return
			}
			ev.ch <- e
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ev
}

// waitFor consumes events until match returns true, or fails the test
// after a generous bound (the scenario is broken, not slow).
func (ev *events) waitFor(t testing.TB, what string, match func(event) bool) event {
	t.Helper()
	timeout := time.NewTimer(90 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case e, ok := <-ev.ch:
			if !ok {
				t.Fatalf("event stream ended while waiting for %s", what)
			}
			if match(e) {
				return e
			}
		case err := <-ev.err:
			t.Fatalf("event stream: %v (waiting for %s)", err, what)
		case <-timeout.C:
			t.Fatalf("no event for %s within 90 s", what)
		}
	}
}

// waitAll consumes events until every named predicate has matched one, in
// any order.
func (ev *events) waitAll(t testing.TB, preds map[string]func(event) bool) {
	t.Helper()
	left := maps.Clone(preds)
	names := slices.Sorted(maps.Keys(left))
	ev.waitFor(t, strings.Join(names, " and "), func(e event) bool {
		for name, p := range left {
			if p(e) {
				delete(left, name)
			}
		}
		return len(left) == 0
	})
}

func stateIs(instance, state string) func(event) bool {
	return func(e event) bool {
		return e.Kind == "instance-state" && e.State == state && (instance == "" || e.Instance == instance)
	}
}

// admin posts to the sandbox's admin API.
func admin(t *testing.T, endpoint, path string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(endpoint+path, "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %s: %s", path, resp.Status, msg)
	}
}

// instanceInfo is one entry of GET /_sandbox/instances.
type instanceInfo struct {
	ID       string `json:"id"`
	Group    string `json:"group"`
	State    string `json:"lifecycle_state"`
	EC2State string `json:"ec2_state"`
	IP       string `json:"private_ip"`
	API      string `json:"api_endpoint"`
	IMDS     string `json:"imds_endpoint"`
	Dir      string `json:"dir"`
}

// getAdmin decodes the JSON the sandbox's admin API answers at path into v.
func getAdmin(t *testing.T, endpoint, path string, v any) {
	t.Helper()
	resp, err := http.Get(endpoint + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func sandboxInstances(t *testing.T, endpoint string) map[string]instanceInfo {
	t.Helper()
	var body struct{ Instances []instanceInfo }
	getAdmin(t, endpoint, "/_sandbox/instances", &body)
	out := map[string]instanceInfo{}
	for _, in := range body.Instances {
		out[in.ID] = in
	}
	return out
}

// processAlive reports whether a pid names a live, non-zombie process.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// state is the field after the ")"
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// waitFile waits for a file an instance writes, polling with a bound.
func waitFile(t *testing.T, path string) []byte {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 && strings.HasSuffix(string(b), "\n") {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within 60 s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// launchConfig creates a launch configuration with the sandbox's stock
// image and type, running userData (plain text; "" for none).
func launchConfig(t *testing.T, c clients, name, userData string) {
	t.Helper()
	in := &autoscaling.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String(name), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro"),
	}
	if userData != "" {
		in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(userData)))
	}
	if _, err := c.asg.CreateLaunchConfiguration(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// dumpConsolesOnFailure prints, when the test has failed, the console of
// every instance the sandbox ran in stateDir (its user data's output: an
// agent's whole log), in instance id order. Register it right after
// startSandbox: cleanups run last-registered first, so it runs before the
// sandbox stops and its state directory is removed.
func dumpConsolesOnFailure(t *testing.T, stateDir string) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dirs, err := filepath.Glob(filepath.Join(stateDir, "instances", "*"))
		if err != nil || len(dirs) == 0 {
			t.Logf("no instance consoles in %s (%v)", stateDir, err)
			return
		}
		slices.Sort(dirs)
		for _, dir := range dirs {
			b, err := os.ReadFile(filepath.Join(dir, "console.log"))
			if err != nil {
				t.Logf("console of %s: %v", filepath.Base(dir), err)
				continue
			}
			t.Logf("console of %s:\n%s", filepath.Base(dir), b)
		}
	})
}
