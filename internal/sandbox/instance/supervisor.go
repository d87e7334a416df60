package instance

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

const (
	// role is the supervisor's role (package proc); its one argument is
	// the PID of the process that started it.
	role = "lifeguard-instances"
	// rootEnv tells stages where absolute write_files paths went. Its
	// value is unique to the instance, so it also marks the instance's
	// processes, daemons that left its process tree included.
	rootEnv = "LIFEGUARD_SANDBOX_ROOT"

	consoleName = "console.log"
	rootName    = "root"

	// marker starts every console line the supervisor writes itself.
	marker = "lifeguard-sandbox: "

	// eventsFD is the supervisor's end of the pipe on which it reports
	// to the Supervisor; commands come on its standard input.
	eventsFD = 3

	// defaultGrace is the time between SIGTERM and SIGKILL when the
	// sandbox dies without stopping its instances.
	defaultGrace = 5 * time.Second

	// killPoll is how often the supervisor looks again for the processes
	// of stopping instances while it waits for them to go.
	killPoll = 20 * time.Millisecond
)

// shimSpec is one instance to start, as the Supervisor sends it.
type shimSpec struct {
	ID       string        `json:"id"`
	UserData []byte        `json:"userData"`
	Dir      string        `json:"dir"`
	Env      []string      `json:"env"` // the stages' whole environment
	Grace    time.Duration `json:"grace"`
}

// command is one line the Supervisor writes to the supervisor.
type command struct {
	Start *shimSpec  `json:"start,omitempty"`
	Stop  *stopOrder `json:"stop,omitempty"`
}

// stopOrder asks for an instance to be stopped.
type stopOrder struct {
	ID    string        `json:"id"`
	Grace time.Duration `json:"grace"`
}

// event is one line the supervisor writes back.
type event struct {
	ID    string `json:"id"`
	Event string `json:"event"`
}

const (
	evUserData = "userdata" // every stage of the instance's user data has finished
	evExited   = "exited"   // no process of the instance is left
)

// The Supervisor re-executes the current binary as the supervisor; proc.Main
// (called first by the program's main, or a test binary's TestMain) turns
// that process into it.
func init() {
	proc.Register(role, func(args []string) int {
		parent := 0
		if len(args) == 1 {
			parent, _ = strconv.Atoi(args[0])
		}
		if parent <= 0 {
			fmt.Fprintf(os.Stderr, "%swant the PID of the sandbox, got %q\n", marker, args)
			return 2
		}
		return runSupervisor(parent)
	})
}

// runSupervisor is the supervisor's whole life; it returns the exit
// status. Everything runs on this goroutine, so a child cannot be reaped
// before its PID is recorded; commands are read on another.
func runSupervisor(parent int) int {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGCHLD)

	// Descendants that daemonize (double fork, setsid) are re-parented to
	// us rather than to init, so we can find them, and we reap them.
	if err := proc.BecomeSubreaper(); err != nil {
		fmt.Fprintf(os.Stderr, "%s%v\n", marker, err)
		return 1
	}
	syscall.CloseOnExec(eventsFD)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%sopen stdin for stages: %v\n", marker, err)
		return 1
	}
	// The parent-death signal may have come before signal.Notify, and so
	// killed a supervisor that had nothing to clean up; after it, a parent
	// that is already gone shows as a different parent PID.
	if os.Getppid() != parent {
		return 0
	}
	sv := &supervisor{
		self:    os.Getpid(),
		events:  os.NewFile(eventsFD, "events"),
		devnull: devnull,
		insts:   map[string]*shim{},
		byMark:  map[string]*shim{},
		stages:  map[int]*shim{},
		owners:  map[int]owner{},
	}
	cmds := make(chan command, 64)
	go readCommands(os.Stdin, cmds)

	var tick *time.Ticker
	var tickC <-chan time.Time
	for {
		select {
		case c, ok := <-cmds:
			switch {
			case !ok:
				cmds = nil
				sv.stopAll()
			case c.Start != nil:
				sv.start(*c.Start)
			case c.Stop != nil:
				sv.stop(c.Stop.ID, c.Stop.Grace)
			}
		case sig := <-sigs:
			if sig == syscall.SIGTERM {
				sv.stopAll()
			} else {
				sv.reap()
			}
		case <-tickC:
			// One pass over every stopping instance per tick, however
			// many stop at once: a pass per command or per exit would
			// cost the square of a storm.
			sv.sweep()
		}
		switch {
		case sv.nStopping > 0 && tick == nil:
			tick = time.NewTicker(killPoll)
			tickC = tick.C
		case sv.nStopping == 0 && tick != nil:
			tick.Stop()
			tick, tickC = nil, nil
		}
		if sv.closing && len(sv.insts) == 0 {
			sv.finish(sigs)
			return 0
		}
	}
}

// readCommands decodes commands from r until it ends, then closes cmds. A
// line it cannot decode ends it too: the Supervisor and the supervisor
// are the same binary, so that is a broken pipe, not a version skew.
func readCommands(r io.Reader, cmds chan<- command) {
	defer close(cmds)
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var c command
		if err := dec.Decode(&c); err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintf(os.Stderr, "%sread command: %v\n", marker, err)
			}
			return
		}
		cmds <- c
	}
}

// owner is the instance a process below the supervisor belongs to, as
// found from its environment (nil: none), for the process started at
// start.
type owner struct {
	start uint64
	sh    *shim
}

// supervisor runs every instance of one sandbox.
type supervisor struct {
	self    int
	events  *os.File
	devnull *os.File

	insts  map[string]*shim // by instance ID
	byMark map[string]*shim // by its rootEnv entry
	stages map[int]*shim    // running stages, by PID
	owners map[int]owner    // processes re-parented to us, by PID

	nStopping int
	closing   bool
}

func (sv *supervisor) emit(id, ev string) {
	b, _ := json.Marshal(event{ID: id, Event: ev})
	// The sandbox may be gone; then nobody is waiting for it.
	_, _ = sv.events.Write(append(b, '\n'))
}

func (sv *supervisor) start(spec shimSpec) {
	if _, ok := sv.insts[spec.ID]; ok || sv.closing {
		// The Supervisor never does this; report it so that no one waits.
		fmt.Fprintf(os.Stderr, "%sinstance %s: already running, or the sandbox is closing\n", marker, spec.ID)
		sv.emit(spec.ID, evExited)
		return
	}
	sh, err := newShim(spec, sv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%sinstance %s: %v\n", marker, spec.ID, err)
		sv.emit(spec.ID, evExited)
		return
	}
	sv.insts[spec.ID] = sh
	sv.byMark[sh.mark] = sh
	sh.begin()
}

// stop starts stopping an instance, with grace between SIGTERM and
// SIGKILL. Stopping one that is not there reports it gone.
func (sv *supervisor) stop(id string, grace time.Duration) {
	sh, ok := sv.insts[id]
	if !ok {
		sv.emit(id, evExited)
		return
	}
	if sh.stopping {
		return
	}
	sh.stopping = true
	now := time.Now()
	sh.deadline = now.Add(max(grace, 0))
	sh.signalled = map[proc.ID]bool{}
	sv.nStopping++
	sh.say("instance %s stopping", sh.spec.ID)
	// The running stage and what is below it hear at once; processes
	// that left it are found by the next sweep.
	if sh.cur != 0 {
		sh.signalFamily(sh.cur, now)
	}
}

// stopAll stops every instance with its default grace: the sandbox is
// closing, or gone.
func (sv *supervisor) stopAll() {
	sv.closing = true
	for id, sh := range sv.insts {
		sv.stop(id, sh.spec.Grace)
	}
}

// reap collects every child that has exited, running stages and
// re-parented orphans alike, and starts the next stage of an instance
// whose stage ended.
func (sv *supervisor) reap() {
	proc.Reap(func(pid int, ws syscall.WaitStatus) {
		delete(sv.owners, pid)
		sh, ok := sv.stages[pid]
		if !ok {
			return
		}
		delete(sv.stages, pid)
		sh.exited(ws)
		sh.advance()
	})
}

// ownerOf returns the instance a child of the supervisor belongs to: the
// one whose stage it is, else the one whose mark is in its environment.
func (sv *supervisor) ownerOf(pid int) *shim {
	if sh, ok := sv.stages[pid]; ok {
		return sh
	}
	st, err := proc.ReadStat(pid)
	if err != nil {
		return nil
	}
	if o, ok := sv.owners[pid]; ok && o.start == st.Start {
		return o.sh
	}
	var sh *shim
	if env, err := proc.Environ(pid); err == nil {
		for _, kv := range env {
			if s, ok := sv.byMark[kv]; ok {
				sh = s
				break
			}
		}
	}
	sv.owners[pid] = owner{start: st.Start, sh: sh}
	return sh
}

// sweep signals the live processes of every stopping instance (SIGTERM
// and SIGCONT once each, SIGKILL every time once the grace is over) and
// ends each instance that has none left. An instance's processes are its
// stages, the processes re-parented to the supervisor that carry its
// mark, and everything below those.
func (sv *supervisor) sweep() {
	if sv.nStopping == 0 {
		return
	}
	now := time.Now()
	live := map[*shim]int{}
	kids, err := proc.Children(sv.self)
	if err != nil {
		// Without /proc the stages' process groups are all we can find:
		// each stage leads its own, its ID pinned until we reap it.
		fmt.Fprintf(os.Stderr, "%s%v; killing the stopping instances' stage groups\n", marker, err)
		for pid, sh := range sv.stages {
			if sh.stopping {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
	}
	for _, kid := range kids {
		if sh := sv.ownerOf(kid); sh != nil && sh.stopping {
			live[sh] += sh.signalFamily(kid, now)
		}
	}
	for id, sh := range sv.insts {
		if sh.stopping && live[sh] == 0 && sh.cur == 0 {
			sv.end(id, sh)
		}
	}
}

// end forgets an instance none of whose processes is left.
func (sv *supervisor) end(id string, sh *shim) {
	delete(sv.insts, id)
	delete(sv.byMark, sh.mark)
	sv.nStopping--
	_ = sh.console.Close()
	sv.emit(id, evExited)
}

// finish SIGKILLs whatever is still below the supervisor once every
// instance has ended (processes no instance's mark was found on), and
// returns when nothing is left.
func (sv *supervisor) finish(sigs <-chan os.Signal) {
	tick := time.NewTicker(killPoll)
	defer tick.Stop()
	for proc.Reap(nil) {
		if pids, err := proc.Descendants(sv.self); err == nil {
			for _, pid := range pids {
				if id, err := proc.Identify(pid); err == nil {
					_ = id.Signal(syscall.SIGKILL)
				}
			}
		}
		select {
		case <-tick.C:
		case <-sigs:
		}
	}
}

// stage is one step of the user data: a program to run, or files to write.
type stage struct {
	label string   // "user data script", "boothook", "bootcmd", "write_files"
	path  string   // the script, relative to the instance directory
	argv  []string // nil for a write_files stage
	env   []string // added to the stage's environment
	files []file
}

// shim is one instance in the supervisor.
type shim struct {
	sv      *supervisor
	spec    shimSpec
	root    string
	mark    string // rootEnv=root: in the environment of its every process
	console *os.File
	fds     []uintptr // stdin, stdout, stderr of every stage

	stages   []stage
	next     int
	cur      int // PID of the running stage, 0 when none
	curStage *stage
	finished bool

	stopping  bool
	deadline  time.Time // SIGKILL from then on
	signalled map[proc.ID]bool
}

func newShim(spec shimSpec, sv *supervisor) (*shim, error) {
	console, err := os.OpenFile(filepath.Join(spec.Dir, consoleName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open console: %w", err)
	}
	if spec.Grace <= 0 {
		spec.Grace = defaultGrace
	}
	root := filepath.Join(spec.Dir, rootName)
	return &shim{
		sv:      sv,
		spec:    spec,
		root:    root,
		mark:    rootEnv + "=" + root,
		console: console,
		fds:     []uintptr{sv.devnull.Fd(), console.Fd(), console.Fd()},
	}, nil
}

// say writes a marker line to the console.
func (s *shim) say(format string, args ...any) {
	fmt.Fprintf(s.console, marker+format+"\n", args...)
}

// begin plans the user data, writes its scripts and starts the first stage.
func (s *shim) begin() {
	dir := s.spec.Dir
	s.say("instance %s starting", s.spec.ID)
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		s.say("create %s: %v", s.root, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "user-data.txt"), s.spec.UserData, 0o600); err != nil {
		s.say("save user data: %v", err)
	}
	p := parseUserData(s.spec.UserData)
	for _, n := range p.notes {
		s.say("%s", n)
	}
	instanceID := []string{"INSTANCE_ID=" + s.spec.ID}
	for _, bh := range p.boothooks {
		if abs, ok := s.writeScript(bh); ok {
			s.stages = append(s.stages, stage{label: "boothook", path: bh.path, argv: []string{abs}, env: instanceID})
		}
	}
	if p.bootcmd != nil {
		bc := script{path: "bootcmd", content: p.bootcmd}
		if abs, ok := s.writeScript(bc); ok {
			s.stages = append(s.stages, stage{label: "bootcmd", path: bc.path, argv: []string{"/bin/sh", abs}, env: instanceID})
		}
	}
	if len(p.writeFiles) > 0 {
		s.stages = append(s.stages, stage{label: "write_files", files: p.writeFiles})
	}
	if len(p.deferred) > 0 {
		s.stages = append(s.stages, stage{label: "write_files (deferred)", files: p.deferred})
	}
	for _, sc := range p.scripts {
		if abs, ok := s.writeScript(sc); ok {
			s.stages = append(s.stages, stage{label: "user data script", path: sc.path, argv: []string{abs}})
		}
	}
	s.advance()
}

// writeScript writes an executable file under the instance directory. All
// scripts are written before the first stage starts, so no child can hold
// one open for writing when it is executed (ETXTBSY).
func (s *shim) writeScript(sc script) (string, bool) {
	abs := filepath.Join(s.spec.Dir, sc.path)
	err := os.MkdirAll(filepath.Dir(abs), 0o755)
	if err == nil {
		err = os.WriteFile(abs, sc.content, 0o700)
	}
	if err == nil {
		err = os.Chmod(abs, 0o700)
	}
	if err != nil {
		s.say("write %s: %v; not run", sc.path, err)
		return "", false
	}
	return abs, true
}

// advance starts stages until one is running or none is left.
func (s *shim) advance() {
	for s.cur == 0 && s.next < len(s.stages) && !s.stopping {
		st := &s.stages[s.next]
		s.next++
		if st.argv == nil {
			s.writeFiles(st)
			continue
		}
		s.say("running %s (%s)", st.label, st.path)
		// Each stage leads a process group of its own, so that a script's
		// "kill 0" (or a terminal's signal to its group) reaches its own
		// processes, not the supervisor and every other instance.
		pid, err := syscall.ForkExec(st.argv[0], st.argv, &syscall.ProcAttr{
			Dir:   s.spec.Dir,
			Env:   proc.MergeEnv(s.spec.Env, st.env),
			Files: s.fds,
			Sys:   &syscall.SysProcAttr{Setpgid: true},
		})
		if err != nil {
			s.say("%s could not run: %v (%s)", st.label, err, st.path)
			continue
		}
		s.cur, s.curStage = pid, st
		s.sv.stages[pid] = s
	}
	if s.cur == 0 && s.next == len(s.stages) && !s.finished && !s.stopping {
		s.finished = true
		s.say("user data finished")
		s.sv.emit(s.spec.ID, evUserData)
	}
}

// exited records the end of the running stage.
func (s *shim) exited(ws syscall.WaitStatus) {
	st := s.curStage
	s.cur, s.curStage = 0, nil
	switch {
	case ws.Exited():
		s.say("%s exited with status %d (%s)", st.label, ws.ExitStatus(), st.path)
	case ws.Signaled():
		s.say("%s was killed by signal %d (%v) (%s)", st.label, int(ws.Signal()), ws.Signal(), st.path)
	}
}

// signalFamily signals root and every live process below it (signal), and
// returns how many it found alive. Each process is pinned once, its
// signals sent through the pin.
func (s *shim) signalFamily(root int, now time.Time) (live int) {
	below, _ := proc.Descendants(root)
	for _, pid := range append([]int{root}, below...) {
		p, err := proc.Pin(pid)
		if err != nil {
			continue
		}
		if !p.Stat.Exited() {
			live++
			s.signal(p, now)
		}
		p.Release()
	}
	return live
}

// signal sends a live process of the stopping instance what it is due:
// SIGTERM and SIGCONT (for a stopped one) once, SIGKILL every time once
// the grace is over.
func (s *shim) signal(p proc.Pinned, now time.Time) {
	id := p.Stat.ID()
	switch {
	case !now.Before(s.deadline):
		_ = p.Signal(syscall.SIGKILL)
	case !s.signalled[id]:
		s.signalled[id] = true
		_ = p.Signal(syscall.SIGTERM)
		_ = p.Signal(syscall.SIGCONT)
	}
}

// writeFiles runs a write_files stage. Like cloud-init, it stops at the
// first entry that fails.
func (s *shim) writeFiles(st *stage) {
	s.say("running %s", st.label)
	for _, f := range st.files {
		target := s.hostPath(f.path)
		err := f.err
		if err == nil {
			err = writeFile(target, f)
		}
		if err != nil {
			s.say("%s: %s: %v; the files after it are not written", st.label, f.path, err)
			return
		}
		s.say("%s: wrote %s to %s", st.label, f.path, target)
	}
}

// hostPath maps a write_files path into the instance: absolute paths under
// RootDir, relative ones under the instance directory.
func (s *shim) hostPath(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Join(s.root, filepath.Clean(p))
	}
	return filepath.Join(s.spec.Dir, filepath.Clean("/"+p))
}

func writeFile(path string, f file) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if f.append {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	fh, err := os.OpenFile(path, flags, os.FileMode(f.perm))
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	_, err = fh.Write(f.content)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := os.Chmod(path, os.FileMode(f.perm)&os.ModePerm|modeBits(f.perm)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}

// modeBits turns the setuid, setgid and sticky bits of a Unix mode into
// Go's.
func modeBits(perm uint32) os.FileMode {
	var m os.FileMode
	if perm&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if perm&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if perm&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}
