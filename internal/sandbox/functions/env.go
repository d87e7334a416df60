package functions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/proc"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// maxPayload is Lambda's limit on a synchronous request or response.
const maxPayload = 6 * 1024 * 1024

// runtimePrefix is the Runtime API's path prefix.
const runtimePrefix = "/2018-06-01/runtime/"

// env is one execution environment: the function's bootstrap as a
// process group, and the Runtime API it polls.
type env struct {
	f       *Functions
	fn      *function
	id      string
	version int // the function's version it was started for
	cfg     Function
	codeDir string
	started time.Time

	group   *proc.Group
	srv     *http.Server
	srvDone chan struct{}
	out     *os.File // read end of the bootstrap's stdout and stderr
	readEnd chan struct{}

	invq       chan *invocation // the invocation /next hands out
	initFailed chan struct{}    // closed by POST /runtime/init/error
	gone       chan struct{}    // closed by stop
	stopOnce   sync.Once

	mu       sync.Mutex
	cur      *invocation // handed out by /next, not answered yet
	tail     *invocation // the invocation whose log lines are collected
	initErr  []byte
	initDone time.Time // first /next
	drainW   chan struct{}
	broken   bool // timed out, exited or failed to initialise: never reused

	idleTimer simclock.Timer // guarded by Functions.mu
}

// invocation is one request to a function.
type invocation struct {
	id            string
	payload       []byte
	clientContext string
	done          chan outcome // the runtime's answer (buffered)
	tail          bytes.Buffer // log lines while it ran (guarded by env.mu)
}

// outcome is how an invocation ended.
type outcome struct {
	payload []byte
	// errType is set for a function error: the runtime's error type, or
	// Sandbox.Timedout, Runtime.ExitError, Runtime.InvalidEntrypoint.
	errType string
	failed  bool
	logTail []byte
}

// startEnv starts an execution environment for fn: its Runtime API on a
// loopback port, then its bootstrap. Called without f.mu.
func (f *Functions) startEnv(fn *function, cfg Function, codeDir string, version int, id string) (*env, error) {
	bootstrap := filepath.Join(codeDir, "bootstrap")
	if st, err := os.Stat(bootstrap); err != nil || st.IsDir() {
		return nil, fmt.Errorf("Couldn't find valid bootstrap(s): [%s]", bootstrap)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("runtime API: %w", err)
	}
	e := &env{
		f: f, fn: fn, id: id, version: version, cfg: cfg, codeDir: codeDir, started: time.Now(),
		srvDone: make(chan struct{}), readEnd: make(chan struct{}),
		invq: make(chan *invocation, 1), initFailed: make(chan struct{}), gone: make(chan struct{}),
	}
	e.srv = &http.Server{Handler: http.HandlerFunc(e.serveRuntime), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(e.srvDone)
		_ = e.srv.Serve(ln)
	}()
	r, w, err := os.Pipe()
	if err != nil {
		_ = e.srv.Close()
		<-e.srvDone
		return nil, err
	}
	cmd := exec.Command(bootstrap)
	cmd.Dir = codeDir
	cmd.Env = f.environ(cfg, codeDir, ln.Addr().String(), id)
	cmd.Stdout, cmd.Stderr = w, w
	g, err := proc.StartGroup(cmd, syscall.SIGKILL)
	_ = w.Close()
	if err != nil {
		_ = r.Close()
		_ = e.srv.Close()
		<-e.srvDone
		return nil, fmt.Errorf("exec %s: %w", bootstrap, err)
	}
	e.group, e.out = g, r
	go e.readLoop()
	f.events.Append(eventlog.Event{Service: "lambda", Kind: EvEnvironment, Resource: cfg.ARN,
		Detail: fmt.Sprintf("environment %s of %s started (pid %d, runtime API %s)", id, cfg.Name, g.Pid(), ln.Addr())})
	return e, nil
}

// environ is the environment a function's bootstrap gets: Lambda's
// reserved variables, the function's own, and the sandbox's endpoint and
// dummy credentials so that the function's SDK calls reach the sandbox.
func (f *Functions) environ(cfg Function, codeDir, runtimeAPI, envID string) []string {
	out := []string{
		"PATH=" + os.Getenv("PATH"),
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"LAMBDA_TASK_ROOT=" + codeDir,
		"LAMBDA_RUNTIME_DIR=" + codeDir,
		"AWS_LAMBDA_RUNTIME_API=" + runtimeAPI,
		"_HANDLER=" + cfg.Handler,
		"AWS_REGION=" + f.cfg.Region,
		"AWS_DEFAULT_REGION=" + f.cfg.Region,
		"AWS_LAMBDA_FUNCTION_NAME=" + cfg.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(cfg.MemorySize),
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + cfg.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME=" + time.Now().UTC().Format("2006/01/02") + "/[$LATEST]" + strings.ReplaceAll(envID, "-", ""),
		"AWS_ACCESS_KEY_ID=ASIASANDBOXLAMBDA000",
		"AWS_SECRET_ACCESS_KEY=sandbox-lambda-secret",
		"AWS_SESSION_TOKEN=sandbox-lambda-session",
	}
	if f.cfg.Endpoint != nil {
		if ep := f.cfg.Endpoint(); ep != "" {
			out = append(out, "AWS_ENDPOINT_URL="+ep)
		}
	}
	for k, v := range cfg.Environment {
		out = append(out, k+"="+v)
	}
	return out
}

// readLoop copies the bootstrap's output, line by line, to the function's
// console and to the tail of the invocation running. A drain request
// (a read deadline in the past) makes it report once the pipe is empty.
func (e *env) readLoop() {
	defer close(e.readEnd)
	buf := make([]byte, 32<<10)
	var partial []byte
	flush := func() {
		if len(partial) > 0 {
			e.line(partial)
			partial = nil
		}
	}
	for {
		n, err := e.out.Read(buf)
		if n > 0 {
			partial = append(partial, buf[:n]...)
			for {
				i := bytes.IndexByte(partial, '\n')
				if i < 0 {
					break
				}
				e.line(partial[:i])
				partial = partial[i+1:]
			}
			if len(partial) > 64<<10 {
				flush()
			}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			flush()
			e.mu.Lock()
			w := e.drainW
			e.drainW = nil
			_ = e.out.SetReadDeadline(time.Time{})
			e.mu.Unlock()
			if w != nil {
				close(w)
			}
			continue
		}
		if err != nil {
			flush()
			_ = e.out.Close()
			e.mu.Lock()
			w := e.drainW
			e.drainW = nil
			e.mu.Unlock()
			if w != nil {
				close(w)
			}
			return
		}
	}
}

// drain waits until every line the bootstrap wrote so far has been read.
// One caller at a time (the invocation's).
func (e *env) drain() {
	ch := make(chan struct{})
	e.mu.Lock()
	select {
	case <-e.readEnd:
		e.mu.Unlock()
		return
	default:
	}
	e.drainW = ch
	_ = e.out.SetReadDeadline(time.Now())
	e.mu.Unlock()
	select {
	case <-ch:
	case <-e.readEnd:
	}
}

// line records one line of output.
func (e *env) line(b []byte) {
	e.mu.Lock()
	if e.tail != nil {
		e.tail.tail.Write(b)
		e.tail.tail.WriteByte('\n')
	}
	e.mu.Unlock()
	e.f.mu.Lock()
	e.fn.console.add(b)
	e.f.mu.Unlock()
}

// serveRuntime is the Runtime API.
func (e *env) serveRuntime(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, runtimePrefix)
	switch {
	case !ok:
	case path == "invocation/next" && r.Method == http.MethodGet:
		e.next(w, r)
		return
	case path == "init/error" && r.Method == http.MethodPost:
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxPayload))
		e.mu.Lock()
		first := e.initErr == nil
		if first {
			e.initErr = errorBody(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"), "Runtime.Unknown")
		}
		e.mu.Unlock()
		if first {
			close(e.initFailed)
		}
		writeRuntime(w, http.StatusAccepted, map[string]string{"status": "OK"})
		return
	case strings.HasPrefix(path, "invocation/") && r.Method == http.MethodPost:
		id, kind, _ := strings.Cut(strings.TrimPrefix(path, "invocation/"), "/")
		if kind == "response" || kind == "error" {
			e.answer(w, r, id, kind == "error")
			return
		}
	}
	writeRuntime(w, http.StatusNotFound, map[string]string{"errorType": "InvalidRequest", "errorMessage": "The Runtime API has no " + r.Method + " " + r.URL.Path})
}

func writeRuntime(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// next hands the runtime the next invocation, waiting for one.
func (e *env) next(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	if e.initDone.IsZero() {
		e.initDone = time.Now()
	}
	e.mu.Unlock()
	var inv *invocation
	select {
	case inv = <-e.invq:
	case <-r.Context().Done():
		return
	case <-e.gone:
		return
	}
	e.mu.Lock()
	e.cur = inv
	e.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Duration(e.cfg.Timeout)*time.Second).UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", e.cfg.ARN)
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-"+strconv.FormatInt(time.Now().Unix(), 16)+"-"+strings.ReplaceAll(inv.id, "-", "")[:24]+";Sampled=0")
	if inv.clientContext != "" {
		h.Set("Lambda-Runtime-Client-Context", inv.clientContext)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

// answer takes the runtime's response or error for an invocation.
func (e *env) answer(w http.ResponseWriter, r *http.Request, id string, isErr bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	if err != nil {
		writeRuntime(w, http.StatusBadRequest, map[string]string{"errorType": "InvalidRequest", "errorMessage": err.Error()})
		return
	}
	e.mu.Lock()
	inv := e.cur
	if inv == nil || inv.id != id {
		e.mu.Unlock()
		writeRuntime(w, http.StatusBadRequest, map[string]string{"errorType": "InvalidRequestID", "errorMessage": "Invalid request ID"})
		return
	}
	e.cur = nil
	e.mu.Unlock()
	o := outcome{payload: body}
	// A streamed error comes as trailers (aws-lambda-go sends its errors so).
	if t := r.Trailer.Get("Lambda-Runtime-Function-Error-Type"); t != "" {
		isErr = true
		if b, err := decodeBase64(r.Trailer.Get("Lambda-Runtime-Function-Error-Body")); err == nil {
			o.payload = b
		}
		r.Header.Set("Lambda-Runtime-Function-Error-Type", t)
	}
	switch {
	case isErr:
		o.failed = true
		o.errType = r.Header.Get("Lambda-Runtime-Function-Error-Type")
		o.payload = errorBody(o.payload, o.errType, "Unhandled")
	case len(body) > maxPayload:
		o.failed, o.errType = true, "Function.ResponseSizeTooLarge"
		o.payload = fmt.Appendf(nil, `{"errorMessage":"Response payload size exceeded maximum allowed payload size (%d bytes).","errorType":"Function.ResponseSizeTooLarge"}`, maxPayload)
	}
	e.drain()
	inv.done <- o
	writeRuntime(w, http.StatusAccepted, map[string]string{"status": "OK"})
}

// errorBody is the payload a caller gets for an error the runtime posted:
// the runtime's JSON as it is, or, when it is not JSON, an error object
// of the given type.
func errorBody(body []byte, errType, def string) []byte {
	if len(bytes.TrimSpace(body)) > 0 && json.Valid(body) {
		return body
	}
	if errType == "" {
		errType = def
	}
	b, _ := json.Marshal(map[string]string{"errorMessage": string(body), "errorType": errType})
	return b
}

// run hands an invocation to the environment and waits for its outcome:
// the runtime's answer, the timeout (which kills the environment), an
// init error, or the bootstrap's exit.
func (e *env) run(inv *invocation, cold bool) outcome {
	start := time.Now()
	e.mu.Lock()
	e.tail = inv
	e.mu.Unlock()
	e.log("START RequestId: %s Version: $LATEST", inv.id)
	timeout := time.Duration(e.cfg.Timeout) * time.Second
	timedOut := make(chan struct{})
	t := e.f.clock.AfterFunc(timeout, func() { close(timedOut) })
	e.invq <- inv
	var o outcome
	select {
	case o = <-inv.done:
	case <-timedOut:
		e.markBroken()
		e.group.Kill()
		<-e.group.Exited()
		e.drain()
		now := time.Now().UTC()
		msg := fmt.Sprintf("Task timed out after %.2f seconds", timeout.Seconds())
		e.log("%s %s %s", now.Format("2006-01-02T15:04:05.000Z"), inv.id, msg)
		o = e.failure(inv, "Sandbox.Timedout", msg)
	case <-e.initFailed:
		e.markBroken()
		e.mu.Lock()
		body := e.initErr
		e.mu.Unlock()
		e.drain()
		o = outcome{payload: body, failed: true, errType: "Runtime.InitError"}
		e.log("INIT_REPORT Init Duration: %.2f ms Phase: init Status: error Error Type: Runtime.InitError", msSince(e.started))
	case <-e.group.Exited():
		e.markBroken()
		e.drain()
		o = e.failure(inv, "Runtime.ExitError", "Runtime exited with error: "+exitText(e.group.Err()))
	case <-e.gone:
		e.markBroken()
		o = e.failure(inv, "Runtime.Unknown", "The execution environment was stopped: the sandbox is shutting down.")
	}
	t.Stop()
	e.mu.Lock()
	if e.cur == inv {
		e.cur = nil
	}
	initDur := e.initDone.Sub(e.started)
	e.mu.Unlock()
	e.log("END RequestId: %s", inv.id)
	dur := msSince(start)
	report := fmt.Sprintf("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB",
		inv.id, dur, int64(dur)+1, e.cfg.MemorySize, e.maxMemoryMB())
	if cold && initDur > 0 {
		report += fmt.Sprintf("\tInit Duration: %.2f ms", float64(initDur.Microseconds())/1000)
	}
	e.log("%s", report)
	e.mu.Lock()
	e.tail = nil
	o.logTail = bytes.Clone(inv.tail.Bytes())
	e.mu.Unlock()
	return o
}

// failure is an error the platform reports for an invocation, in
// Lambda's shape.
func (e *env) failure(inv *invocation, errType, msg string) outcome {
	b, _ := json.Marshal(map[string]string{"errorType": errType, "errorMessage": "RequestId: " + inv.id + " Error: " + msg})
	return outcome{payload: b, failed: true, errType: errType}
}

func (e *env) markBroken() {
	e.mu.Lock()
	e.broken = true
	e.mu.Unlock()
}

func (e *env) isBroken() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.broken
}

// log writes a platform line (START, END, REPORT) to the console and tail.
func (e *env) log(format string, args ...any) { e.line(fmt.Appendf(nil, format, args...)) }

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

func exitText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "signal: " + ws.Signal().String()
		}
		return fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// maxMemoryMB reads the bootstrap's peak resident memory.
func (e *env) maxMemoryMB() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.group.Pid()))
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return (kb + 1023) / 1024
		}
	}
	return 0
}

// stop kills the environment's processes and closes its Runtime API.
func (e *env) stop(why string) {
	e.stopOnce.Do(func() {
		close(e.gone)
		e.group.Kill()
		<-e.group.Exited()
		_ = e.srv.Close()
		<-e.srvDone
		<-e.readEnd
		e.f.events.Append(eventlog.Event{Service: "lambda", Kind: EvEnvironment, Resource: e.cfg.ARN,
			Detail: fmt.Sprintf("environment %s of %s stopped: %s", e.id, e.cfg.Name, why)})
	})
}

func decodeBase64(s string) ([]byte, error) {
	return base64Std.DecodeString(s)
}
