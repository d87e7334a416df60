package instance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

// Log attribute keys.
const (
	keyInstance = "instance"
	keyErr      = "err"
	keyPID      = "pid"
	keyGrace    = "grace"
)

// consoleLimit is how much console output EC2's GetConsoleOutput returns.
const consoleLimit = 64 << 10

// shimMemoryLimit bounds a shim's heap (GOMEMLIMIT): it collects only
// near it.
const shimMemoryLimit = "32MiB"

// stopMargin is how long Stop waits past the grace period for the shim to
// finish its own cleanup before it kills the process group itself.
const stopMargin = 2 * time.Second

// Spec describes one instance to start.
type Spec struct {
	ID       string   // "i-0123456789abcdef0"; used in logs and file names
	UserData []byte   // raw user data, already base64-decoded (may be gzip-compressed, as cloud-init accepts)
	Dir      string   // the instance's working directory; Start creates it (MkdirAll) if missing
	Env      []string // extra "K=V" entries appended to the sandbox's own environment (AWS_ENDPOINT_URL etc.)
}

// Process is a running instance. Safe for concurrent use.
type Process struct {
	id   string
	dir  string
	root string
	pid  int
	grp  *proc.Group
	log  *slog.Logger

	userDataDone chan struct{}
	exited       chan struct{}

	mu       sync.Mutex
	stopping bool
}

// Start launches the instance: it returns once the supervising process has
// started; the user data runs asynchronously. The instance's files
// (console.log, scripts, the root of write_files) live in spec.Dir, which
// Start creates if missing. The caller must Stop the instance.
func Start(spec Spec, log *slog.Logger) (*Process, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if spec.ID == "" {
		return nil, errors.New("start instance: empty id")
	}
	if spec.Dir == "" {
		return nil, fmt.Errorf("start instance %s: empty directory", spec.ID)
	}
	for _, kv := range spec.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("start instance %s: environment entry %q is not K=V", spec.ID, kv)
		}
	}
	p, err := start(spec, log)
	if err != nil {
		return nil, fmt.Errorf("start instance %s: %w", spec.ID, err)
	}
	log.Info("instance started", keyInstance, spec.ID, keyPID, p.pid)
	return p, nil
}

func start(spec Spec, log *slog.Logger) (*Process, error) {
	dir, err := filepath.Abs(spec.Dir)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create directory: %w", err)
	}
	// A stop request left by an earlier instance in the same directory
	// must not set this one's grace.
	if err := os.Remove(filepath.Join(dir, stopName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove old stop request: %w", err)
	}
	root := filepath.Join(dir, rootName)
	specPath := filepath.Join(dir, specName)
	b, err := json.Marshal(shimSpec{
		ID:        spec.ID,
		UserData:  spec.UserData,
		Dir:       dir,
		Env:       mergeEnv(withoutAWS(os.Environ()), spec.Env, []string{rootEnv + "=" + root}),
		Grace:     defaultGrace,
		ParentPID: os.Getpid(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	if err := os.WriteFile(specPath, b, 0o600); err != nil {
		return nil, fmt.Errorf("write spec: %w", err)
	}
	console, err := os.OpenFile(filepath.Join(dir, consoleName), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create console: %w", err)
	}
	defer console.Close() // the shim has its own copy once started
	doneR, doneW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create pipe: %w", err)
	}
	defer doneW.Close() // likewise

	cmd, err := proc.Command(role, spec.ID, specPath)
	if err != nil {
		doneR.Close()
		return nil, err
	}
	cmd.Dir = dir
	// The shim is this whole program started for a small job: its heap is
	// what package initialization left, and it allocates little after, so
	// it does not collect (a thousand shims starting at once would each
	// run a collection during their initialization) unless its heap nears
	// shimMemoryLimit. The user data gets spec.Env, not these.
	cmd.Env = append(cmd.Env, "GOGC=off", "GOMEMLIMIT="+shimMemoryLimit)
	cmd.Stdout, cmd.Stderr = console, console
	cmd.ExtraFiles = []*os.File{doneW} // fd 3 in the shim, doneFD
	// The shim gets SIGTERM when the sandbox dies, and cleans up.
	grp, err := proc.StartGroup(cmd, syscall.SIGTERM)
	if err != nil {
		doneR.Close()
		return nil, fmt.Errorf("start supervisor: %w", err)
	}
	p := &Process{
		id:           spec.ID,
		dir:          dir,
		root:         root,
		pid:          grp.Pid(),
		grp:          grp,
		log:          log,
		userDataDone: make(chan struct{}),
		exited:       make(chan struct{}),
	}
	go p.supervise(doneR)
	return p, nil
}

// supervise waits for the shim (and for the end of its user-data pipe)
// and closes exited; it returns once the shim has exited.
func (p *Process) supervise(doneR *os.File) {
	var wg sync.WaitGroup
	wg.Go(func() { p.watchUserData(doneR) })
	<-p.grp.Exited()
	wg.Wait() // the shim held the only write end, so the reader has seen EOF

	p.mu.Lock()
	stopping := p.stopping
	p.mu.Unlock()
	if !stopping {
		p.log.Warn("instance exited on its own", keyInstance, p.id, keyErr, p.grp.Err())
	}
	close(p.exited)
}

// watchUserData closes userDataDone when the shim says the user data has
// finished, and returns when the shim has exited.
func (p *Process) watchUserData(r *os.File) {
	defer r.Close()
	buf := make([]byte, 16)
	done := false
	for {
		n, err := r.Read(buf)
		if n > 0 && !done {
			done = true
			close(p.userDataDone)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				p.log.Warn("read user data status", keyInstance, p.id, keyErr, err)
			}
			return
		}
	}
}

// Console returns the instance's console output so far: at most the last
// 64 KiB, as EC2's GetConsoleOutput. It never returns nil: when the output
// cannot be read, it returns an empty slice.
func (p *Process) Console() []byte { return Console(p.dir) }

// Console returns the last 64 KiB of the console output of the instance
// whose directory is dir, whether it runs or has stopped; empty when it
// has none.
func Console(dir string) []byte {
	f, err := os.Open(filepath.Join(dir, consoleName))
	if err != nil {
		return []byte{}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return []byte{}
	}
	off := max(fi.Size()-consoleLimit, 0)
	buf := make([]byte, fi.Size()-off)
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return []byte{}
	}
	return buf[:n]
}

// UserDataDone is closed when every stage of the user data has finished
// (the instance itself keeps running, as on EC2). It is never closed if the
// instance stops before then; select on Exited too.
func (p *Process) UserDataDone() <-chan struct{} { return p.userDataDone }

// Exited is closed when the supervising process has exited, after Stop or
// because it died.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// RootDir returns the directory under which absolute write_files paths are
// placed: <Dir>/root. Stages find it in LIFEGUARD_SANDBOX_ROOT.
func (p *Process) RootDir() string { return p.root }

// Pid returns the process ID of the instance's supervising process, which
// is also the ID of its process group.
func (p *Process) Pid() int { return p.pid }

// Stop terminates the instance: the supervisor sends SIGTERM to every
// process the instance started and SIGKILL to what is left after grace.
// Stop returns nil when no process of the instance remains. If the
// supervisor has not exited grace + 2 s after the SIGTERM, Stop kills it and
// its process group itself. If ctx ends first, Stop returns ctx's error
// and the supervisor carries on with its cleanup. Calling Stop again, or
// concurrently, is fine.
func (p *Process) Stop(ctx context.Context, grace time.Duration) error {
	grace = max(grace, 0)
	select {
	case <-p.exited:
		return nil
	default:
	}
	p.mu.Lock()
	first := !p.stopping
	p.stopping = true
	p.mu.Unlock()
	if first {
		p.requestStop(grace)
	}

	timer := time.NewTimer(grace + stopMargin)
	defer timer.Stop()
	select {
	case <-p.exited:
		if first {
			p.log.Info("instance stopped", keyInstance, p.id)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop instance %s: %w", p.id, ctx.Err())
	case <-timer.C:
	}

	p.log.Warn("instance supervisor did not exit in time; killing its processes", keyInstance, p.id, keyGrace, grace)
	p.killAll()
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop instance %s: %w", p.id, ctx.Err())
	}
}

// requestStop tells the shim the grace period, then signals it.
func (p *Process) requestStop(grace time.Duration) {
	b, err := json.Marshal(stopRequest{Grace: grace})
	if err == nil {
		tmp := filepath.Join(p.dir, stopName+".tmp")
		err = os.WriteFile(tmp, b, 0o600)
		if err == nil {
			err = os.Rename(tmp, filepath.Join(p.dir, stopName))
		}
	}
	if err != nil {
		p.log.Warn("write stop request; the supervisor uses its default grace", keyInstance, p.id, keyErr, err)
	}
	// Signal goes through a pidfd, so it cannot reach a process that
	// reused the PID.
	if err := p.grp.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.log.Warn("signal instance supervisor", keyInstance, p.id, keyErr, err)
	}
}

// killAll SIGKILLs the shim, its process group and every process below it.
func (p *Process) killAll() { p.grp.Kill() }

// withoutAWS drops every inherited AWS_* variable: an instance starts like
// an EC2 host, with no credentials or endpoints of the operator's own; its
// AWS settings come from Spec.Env and its IMDS.
func withoutAWS(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return out
}
