package bench

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
)

// waitBound bounds every wait of a scenario on the sandbox: past it the
// run is broken, not slow.
const waitBound = 90 * time.Second

// sandbox is `lifeguard sandbox` as its own process, with real limits
// (nothing relaxed), its followed event log and an SDK configuration
// pointed at it.
type sandbox struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when its standard output ends
	endpoint string
	stateDir string
	cfg      aws.Config
	asg      *autoscaling.Client
	ev       *events
	stopEv   context.CancelFunc
}

// startSandbox starts the sandbox from env.Binary in env.Dir/sandbox
// (its log in env.Dir/sandbox.log) and follows its events. close stops it.
func startSandbox(ctx context.Context, env Env) (*sandbox, error) {
	stateDir := filepath.Join(env.Dir, "sandbox")
	logFile, err := os.Create(filepath.Join(env.Dir, "sandbox.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(env.Binary, "sandbox", "--listen", "127.0.0.1:0", "--state-dir", stateDir, "--stop-grace", "2s", "--seed", "1", "--quiet")
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the sandbox: %w", err)
	}
	s := &sandbox{cmd: cmd, done: make(chan struct{}), stateDir: stateDir}
	banner := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			banner <- sc.Text()
		}
		close(banner)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case line, ok := <-banner:
		// "lifeguard sandbox listening on http://127.0.0.1:PORT (…"
		f := strings.Fields(line)
		if !ok || len(f) < 5 || !strings.HasPrefix(f[4], "http://") {
			s.kill()
			return nil, fmt.Errorf("the sandbox did not start (banner %q); see its log", line)
		}
		s.endpoint = f[4]
	case <-timer.C:
		s.kill()
		return nil, errors.New("the sandbox did not print its banner within 30 s")
	case <-ctx.Done():
		s.kill()
		return nil, ctx.Err()
	}
	s.cfg = aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(s.endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("sandbox", "sandbox", ""),
	}
	awscloud.OwnRequestBodies(&s.cfg)
	s.asg = autoscaling.NewFromConfig(s.cfg)
	evCtx, cancel := context.WithCancel(context.Background())
	s.stopEv = cancel
	if s.ev, err = followEvents(evCtx, s.endpoint); err != nil {
		cancel()
		s.kill()
		return nil, err
	}
	return s, nil
}

func (s *sandbox) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
	_ = s.cmd.Wait()
}

// close stops the sandbox with SIGTERM (it terminates its instances), and
// kills it if it is not gone within 30 s.
func (s *sandbox) close() error {
	s.stopEv()
	<-s.ev.done
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-s.done:
		_ = s.cmd.Wait()
		return nil
	case <-timer.C:
		s.kill()
		return errors.New("the sandbox did not stop within 30 s of SIGTERM")
	}
}

func (s *sandbox) instanceDir(id string) string { return filepath.Join(s.stateDir, "instances", id) }

// env returns the environment of a lifeguard command pointed at the
// sandbox, as a user's shell would set it.
func (s *sandbox) env() []string {
	return append(os.Environ(), "AWS_ENDPOINT_URL="+s.endpoint, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=sandbox", "AWS_SECRET_ACCESS_KEY=sandbox", "AWS_EC2_METADATA_DISABLED=true")
}

// getJSON reads an admin endpoint into v.
func (s *sandbox) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// callCount is one instance's entry of GET /_sandbox/calls.
type callCount struct {
	API  int64 `json:"api"`
	IMDS int64 `json:"imds"`
}

// calls returns every instance's calls to its API port and IMDS, as the
// sandbox counted them.
func (s *sandbox) calls(ctx context.Context) (map[string]callCount, error) {
	var out map[string]callCount
	return out, s.getJSON(ctx, "/_sandbox/calls", &out)
}

// launchConfig creates a launch configuration running the shell script
// userData.
func (s *sandbox) launchConfig(ctx context.Context, name, userData string) error {
	_, err := s.asg.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String(name), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro"),
		UserData: aws.String(base64.StdEncoding.EncodeToString([]byte(userData))),
	})
	return err
}

// agentUserData is user data that writes agentYAML (a shell here-document:
// $PWD is the instance's directory), runs pre, then execs the agent.
func agentUserData(bin, agentYAML, pre string) string {
	return "#!/bin/sh\ncat > agent.yaml <<YAML\n" + agentYAML + "\nYAML\n" + pre + "\nexec " + bin + " agent --config agent.yaml\n"
}

// event is the sandbox's event as /_sandbox/events serves it.
type event struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Group    string    `json:"group"`
	Instance string    `json:"instance"`
	Detail   string    `json:"detail"`
	State    string    `json:"state"`
	Hook     string    `json:"hook"`
	Result   string    `json:"result"`
}

// events follows the sandbox's event stream until its context ends.
type events struct {
	ch   chan event
	err  error // set before ch is closed
	done chan struct{}
}

func followEvents(ctx context.Context, endpoint string) (*events, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/_sandbox/events?follow=true", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("follow the sandbox's events: %w", err)
	}
	ev := &events{ch: make(chan event, 1<<16), done: make(chan struct{})}
	go func() {
		defer close(ev.done)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var e event
			if err := dec.Decode(&e); err != nil {
				if ctx.Err() == nil {
					ev.err = fmt.Errorf("the sandbox's event stream ended: %w", err)
				}
				close(ev.ch)
				return
			}
			select {
			case ev.ch <- e:
			case <-ctx.Done():
				close(ev.ch)
				return
			}
		}
	}()
	return ev, nil
}

// waitFor consumes events until match returns true; it fails after
// waitBound, or when ctx ends.
func (ev *events) waitFor(ctx context.Context, what string, match func(event) bool) (event, error) {
	timer := time.NewTimer(waitBound)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-ev.ch:
			if !ok {
				return event{}, fmt.Errorf("waiting for %s: %w", what, ev.err)
			}
			if match(e) {
				return e, nil
			}
		case <-timer.C:
			return event{}, fmt.Errorf("no event for %s within %v", what, waitBound)
		case <-ctx.Done():
			return event{}, ctx.Err()
		}
	}
}

func stateIs(group, state string) func(event) bool {
	return func(e event) bool {
		return e.Kind == "instance-state" && e.State == state && (group == "" || e.Group == group)
	}
}

// waitConsole waits for a line of the console of the instance in dir
// matching re and returns its submatches.
func waitConsole(ctx context.Context, dir string, re *regexp.Regexp) ([]string, error) {
	var m []string
	err := poll(ctx, waitBound, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "console.log"))
		m = re.FindStringSubmatch(string(b))
		return m != nil
	})
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "console.log"))
		return nil, fmt.Errorf("%s: no console line matching %q (%w); its console ends:\n%s", filepath.Base(dir), re, err, tail(b, 2000))
	}
	return m, nil
}

// poll calls done every 5 ms until it returns true: it reads what other
// processes write to files, which nothing announces.
func poll(ctx context.Context, bound time.Duration, done func() bool) error {
	deadline := time.Now().Add(bound)
	for !done() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", bound)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
