package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/config"
)

const (
	// maxProbeBody is how much of an HTTP probe's response body is read
	// (and searched for body_contains).
	maxProbeBody = 64 << 10
	// probeOutputTail is how much of a command probe's output is quoted
	// when it fails.
	probeOutputTail = 512
	// probeWaitDelay bounds the wait for a command probe's output after it
	// exited or was killed (a background child may hold the pipe).
	probeWaitDelay = time.Second
)

// probeResult is the outcome of one check of one probe.
type probeResult struct {
	result string // resultPass, resultFail or resultFatal
	detail string // why it did not pass
}

// prober checks one configured probe.
type prober struct {
	name   string
	cfg    config.Probe
	client *http.Client
}

// check runs the probe once.
func (p prober) check(ctx context.Context) probeResult {
	switch {
	case p.cfg.HTTP != nil:
		return p.checkHTTP(ctx, *p.cfg.HTTP)
	case p.cfg.TCP != nil:
		return p.checkTCP(ctx, *p.cfg.TCP)
	case p.cfg.Command != nil:
		return p.checkCommand(ctx, *p.cfg.Command)
	}
	return probeResult{resultFail, "probe has none of http, tcp, command"}
}

func failed(format string, args ...any) probeResult {
	return probeResult{result: resultFail, detail: fmt.Sprintf(format, args...)}
}

// checkHTTP passes when a GET of the URL answers the expected status (200
// when unset) with a body containing BodyContains. Redirects are not
// followed: a redirect's status is what is compared.
func (p prober) checkHTTP(ctx context.Context, h config.HTTPProbe) probeResult {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(h.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return failed("%v", err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return failed("%v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	want := h.Status
	if want == 0 {
		want = http.StatusOK
	}
	switch {
	case resp.StatusCode != want:
		return failed("GET %s: status %d, want %d", h.URL, resp.StatusCode, want)
	case err != nil:
		return failed("GET %s: read body: %v", h.URL, err)
	case h.BodyContains != "" && !bytes.Contains(body, []byte(h.BodyContains)):
		return failed("GET %s: body does not contain %q", h.URL, h.BodyContains)
	}
	return probeResult{result: resultPass}
}

// checkTCP passes when a connection to the address succeeds.
func (p prober) checkTCP(ctx context.Context, t config.TCPProbe) probeResult {
	d := net.Dialer{Timeout: time.Duration(t.Timeout)}
	conn, err := d.DialContext(ctx, "tcp", t.Address)
	if err != nil {
		return failed("%v", err)
	}
	_ = conn.Close() // the connection was made: that is the check
	return probeResult{result: resultPass}
}

// checkCommand runs argv directly (no shell) in a process group of its
// own, killed as a group at the timeout. Exit 0 passes; an exit code in
// FatalExitCodes is fatal; anything else fails.
func (p prober) checkCommand(ctx context.Context, c config.CommandProbe) probeResult {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.Timeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = probeWaitDelay
	err := cmd.Run()
	st := cmd.ProcessState
	switch {
	case st == nil: // it did not start
		return failed("%q: %v", c.Argv, err)
	case st.Exited() && st.ExitCode() == 0: // err may be exec.ErrWaitDelay: a child kept the output open
		return probeResult{result: resultPass}
	case st.Exited() && slices.Contains(c.FatalExitCodes, st.ExitCode()):
		return probeResult{result: resultFatal, detail: fmt.Sprintf("%q exited with fatal code %d%s", c.Argv, st.ExitCode(), out.quote())}
	case st.Exited():
		return failed("%q exited with code %d%s", c.Argv, st.ExitCode(), out.quote())
	case ctx.Err() != nil:
		return failed("%q timed out after %v%s", c.Argv, time.Duration(c.Timeout), out.quote())
	}
	return failed("%q: %v%s", c.Argv, st, out.quote())
}

// tailBuffer keeps the last probeOutputTail bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - probeOutputTail; over > 0 {
		b.buf = b.buf[over:]
	}
	return len(p), nil
}

// quote returns ": " and the output, if there is any.
func (b *tailBuffer) quote() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(string(b.buf))
	if s == "" {
		return ""
	}
	return ": " + s
}

// newProbeClient returns the HTTP client of HTTP probes: no proxy (probes
// check this instance), no kept-alive connections (nothing outlives a
// check), no redirects followed.
func newProbeClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
