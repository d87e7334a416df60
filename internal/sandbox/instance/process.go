package instance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
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

// supervisorMemoryLimit bounds the supervisor's heap (GOMEMLIMIT).
const supervisorMemoryLimit = "64MiB"

// stopMargin is how long Stop waits past the grace period for the
// supervisor to report the instance gone before it kills the instance's
// processes itself.
const stopMargin = 2 * time.Second

// Spec describes one instance to start.
type Spec struct {
	ID       string   // "i-0123456789abcdef0"; used in logs and file names
	UserData []byte   // raw user data, already base64-decoded (may be gzip-compressed, as cloud-init accepts)
	Dir      string   // the instance's working directory; Start creates it (MkdirAll) if missing
	Env      []string // extra "K=V" entries appended to the sandbox's own environment (AWS_ENDPOINT_URL etc.)
}

// Supervisor runs instances: one supervising process, started with the
// first instance, runs the user data of them all. Safe for concurrent
// use. Close it once its instances are stopped.
type Supervisor struct {
	dir string // the supervising process's working directory
	log *slog.Logger

	wmu    sync.Mutex // held while a command is written
	closed bool
	cmds   *os.File
	life   *supervisorLife // nil until the first Start, and after the process died

	mu    sync.Mutex
	procs map[string]*Process // running instances, by ID
}

// supervisorLife is one supervising process, from its start until its
// events end.
type supervisorLife struct {
	grp  *proc.Group
	done chan struct{} // closed when its events have been read to the end and it exited
}

// NewSupervisor returns a Supervisor; it starts no process until Start.
// The supervising process runs in dir (created then if missing), where
// ps and lsof show it among the instances' files; "" is the caller's
// working directory.
func NewSupervisor(dir string, log *slog.Logger) *Supervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{dir: dir, log: log, procs: map[string]*Process{}}
}

// Process is a running instance. Safe for concurrent use.
type Process struct {
	id   string
	dir  string
	root string
	mark string // rootEnv=root, in the environment of every process of the instance
	sup  *Supervisor
	log  *slog.Logger

	userDataDone chan struct{}
	exited       chan struct{}

	mu       sync.Mutex
	stopping bool
	udClosed bool
	exClosed bool
}

// Start launches an instance: it returns once the supervisor has been
// asked to start it; the user data runs asynchronously. The instance's
// files (console.log, scripts, the root of write_files) live in spec.Dir,
// which Start creates if missing. The caller must Stop the instance.
func (s *Supervisor) Start(spec Spec) (*Process, error) {
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
	p, err := s.start(spec)
	if err != nil {
		return nil, fmt.Errorf("start instance %s: %w", spec.ID, err)
	}
	s.log.Info("instance started", keyInstance, spec.ID)
	return p, nil
}

func (s *Supervisor) start(spec Spec) (*Process, error) {
	dir, err := filepath.Abs(spec.Dir)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create directory: %w", err)
	}
	// A fresh console: an instance's directory is its own, but the
	// caller may start one again in the same place.
	console, err := os.OpenFile(filepath.Join(dir, consoleName), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create console: %w", err)
	}
	_ = console.Close()
	root := filepath.Join(dir, rootName)
	mark := rootEnv + "=" + root
	p := &Process{
		id:           spec.ID,
		dir:          dir,
		root:         root,
		mark:         mark,
		sup:          s,
		log:          s.log,
		userDataDone: make(chan struct{}),
		exited:       make(chan struct{}),
	}
	err = s.send(command{Start: &shimSpec{
		ID:       spec.ID,
		UserData: spec.UserData,
		Dir:      dir,
		Env:      proc.MergeEnv(withoutAWS(os.Environ()), spec.Env, []string{mark}),
		Grace:    defaultGrace,
	}}, p)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// send writes a command to the supervising process. A start command
// registers the instance it starts (start), starting a process if none
// runs.
func (s *Supervisor) send(c command, start *Process) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode command: %w", err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return errors.New("the sandbox is closing")
	}
	if s.life == nil {
		if start == nil {
			return errors.New("no supervisor runs")
		}
		if err := s.launchLocked(); err != nil {
			return err
		}
	}
	if start != nil {
		// Registered under wmu: the instances a supervisor's end finds
		// are its own.
		s.mu.Lock()
		_, dup := s.procs[start.id]
		if !dup {
			s.procs[start.id] = start
		}
		s.mu.Unlock()
		if dup {
			return errors.New("an instance of that ID is running")
		}
	}
	if _, err := s.cmds.Write(append(b, '\n')); err != nil {
		if start != nil {
			s.mu.Lock()
			delete(s.procs, start.id)
			s.mu.Unlock()
		}
		return fmt.Errorf("write to the supervisor: %w", err)
	}
	return nil
}

// launchLocked starts the supervising process, and the goroutine that
// reads its events.
func (s *Supervisor) launchLocked() error {
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("create pipe: %w", err)
	}
	evR, evW, err := os.Pipe()
	if err != nil {
		cmdR.Close()
		cmdW.Close()
		return fmt.Errorf("create pipe: %w", err)
	}
	// The supervisor holds its own copies once started.
	defer cmdR.Close()
	defer evW.Close()
	cmd, err := proc.Command(role, strconv.Itoa(os.Getpid()))
	if err == nil && s.dir != "" {
		cmd.Dir = s.dir
		err = os.MkdirAll(s.dir, 0o755)
	}
	if err != nil {
		cmdW.Close()
		evR.Close()
		return err
	}
	// The supervisor is this whole program started for one job; its heap
	// is what package initialization left plus a few kilobytes an
	// instance. The user data gets the instance's environment, not these.
	cmd.Env = append(cmd.Env, "GOGC=off", "GOMEMLIMIT="+supervisorMemoryLimit)
	cmd.Stdin, cmd.Stderr = cmdR, os.Stderr
	cmd.ExtraFiles = []*os.File{evW} // eventsFD
	// The supervisor gets SIGTERM when the sandbox dies, and cleans up.
	grp, err := proc.StartGroup(cmd, syscall.SIGTERM)
	if err != nil {
		cmdW.Close()
		evR.Close()
		return fmt.Errorf("start supervisor: %w", err)
	}
	life := &supervisorLife{grp: grp, done: make(chan struct{})}
	s.cmds, s.life = cmdW, life
	s.log.Debug("instance supervisor started", keyPID, grp.Pid())
	go s.read(life, evR)
	return nil
}

// read dispatches the supervisor's events until it exits. Then every
// instance it did not report gone is over: read kills what is left of
// them and reports them exited.
func (s *Supervisor) read(life *supervisorLife, r *os.File) {
	defer close(life.done)
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var ev event
		if err := dec.Decode(&ev); err != nil {
			break
		}
		s.mu.Lock()
		p := s.procs[ev.ID]
		if ev.Event == evExited && p != nil {
			delete(s.procs, ev.ID)
		}
		s.mu.Unlock()
		if p == nil {
			continue
		}
		switch ev.Event {
		case evUserData:
			p.closeUserDataDone()
		case evExited:
			p.closeExited()
		}
	}
	_ = r.Close()
	<-life.grp.Exited()

	s.wmu.Lock()
	if s.life == life {
		_ = s.cmds.Close()
		s.cmds, s.life = nil, nil
	}
	closing := s.closed
	s.mu.Lock()
	left := s.procs
	s.procs = map[string]*Process{}
	s.mu.Unlock()
	s.wmu.Unlock()
	if len(left) == 0 {
		return
	}
	if !closing {
		s.log.Warn("instance supervisor exited; killing what is left of its instances", keyErr, life.grp.Err(), "instances", len(left))
	}
	// Every process of its instances, stages and daemons alike, carries
	// its instance's mark.
	marks := map[string]bool{}
	for _, p := range left {
		marks[p.mark] = true
	}
	// The supervisor is gone, and its instances' daemons with it from
	// its tree: look at every process of the host.
	var pids []int
	if all, err := proc.Scan(); err == nil {
		for _, st := range all {
			pids = append(pids, st.PID)
		}
	}
	killMarked(marks, pids)
	for _, p := range left {
		p.closeExited()
	}
}

// killMarked SIGKILLs every process of pids started with one of marks in
// its environment.
func killMarked(marks map[string]bool, pids []int) {
	for _, pid := range pids {
		id, err := proc.Identify(pid)
		if err != nil {
			continue
		}
		env, err := proc.Environ(pid)
		if err != nil {
			continue
		}
		for _, kv := range env {
			if marks[kv] {
				_ = id.Signal(syscall.SIGKILL)
				break
			}
		}
	}
}

// Close stops the supervising process: it stops every instance still
// running with the default grace period (5 s), and returns once the
// process has exited, or kills it and everything below it when ctx ends
// first. Close it after stopping its instances; Start fails after it.
func (s *Supervisor) Close(ctx context.Context) error {
	s.wmu.Lock()
	s.closed = true
	life := s.life
	if s.cmds != nil {
		_ = s.cmds.Close() // the supervisor reads the end of its commands
	}
	s.wmu.Unlock()
	if life == nil {
		return nil
	}
	select {
	case <-life.done:
		return nil
	case <-ctx.Done():
	}
	life.grp.Kill()
	<-life.done
	return fmt.Errorf("close instance supervisor: %w", context.Cause(ctx))
}

// Pid returns the supervising process's PID, 0 when none runs.
func (s *Supervisor) Pid() int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.life == nil {
		return 0
	}
	return s.life.grp.Pid()
}

func (p *Process) closeUserDataDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.udClosed {
		p.udClosed = true
		close(p.userDataDone)
	}
}

func (p *Process) closeExited() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.exClosed {
		p.exClosed = true
		close(p.exited)
	}
	if !p.stopping {
		p.log.Warn("instance exited on its own", keyInstance, p.id)
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

// Exited is closed when no process of the instance is left, after Stop or
// because its supervisor died.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// RootDir returns the directory under which absolute write_files paths are
// placed: <Dir>/root. Stages find it in LIFEGUARD_SANDBOX_ROOT.
func (p *Process) RootDir() string { return p.root }

// Stop terminates the instance: the supervisor sends SIGTERM to every
// process of the instance and SIGKILL to what is left after grace. Stop
// returns nil when no process of the instance remains. If the supervisor
// has not reported the instance gone grace + 2 s after the SIGTERM, Stop
// kills its processes itself. If ctx ends first, Stop returns ctx's error
// and the supervisor carries on. Calling Stop again, or concurrently, is
// fine.
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
		if err := p.sup.send(command{Stop: &stopOrder{ID: p.id, Grace: grace}}, nil); err != nil {
			// No supervisor, so nothing of the instance runs under one:
			// its events have ended, or are about to.
			p.log.Debug("stop instance", keyInstance, p.id, keyErr, err)
		}
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

	p.log.Warn("instance supervisor did not stop the instance in time; killing its processes", keyInstance, p.id, keyGrace, grace)
	if pid := p.sup.Pid(); pid != 0 {
		pids, _ := proc.Descendants(pid)
		killMarked(map[string]bool{p.mark: true}, pids)
	}
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop instance %s: %w", p.id, ctx.Err())
	}
}

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
