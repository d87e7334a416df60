package instance

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

const (
	// role is the shim's role (package proc); its arguments are the
	// instance's ID (for ps) and its spec file.
	role = "lifeguard-instance"
	// rootEnv tells stages where absolute write_files paths went.
	rootEnv = "LIFEGUARD_SANDBOX_ROOT"

	specName    = "instance.json"
	stopName    = "stop.json"
	consoleName = "console.log"
	rootName    = "root"

	// marker starts every console line the shim writes itself.
	marker = "lifeguard-sandbox: "

	// doneFD is the shim's end of the pipe on which it tells Start's
	// process that the user data has finished.
	doneFD = 3

	// defaultGrace is the time between SIGTERM and SIGKILL when the
	// sandbox dies without calling Stop.
	defaultGrace = 5 * time.Second

	// killPoll is how often the shim looks again for the instance's
	// processes while it waits for them to go.
	killPoll = 20 * time.Millisecond
)

// shimSpec is the spec file Start writes for the shim.
type shimSpec struct {
	ID        string        `json:"id"`
	UserData  []byte        `json:"userData"`
	Dir       string        `json:"dir"`
	Env       []string      `json:"env"` // the stages' whole environment
	Grace     time.Duration `json:"grace"`
	ParentPID int           `json:"parentPid"`
}

// stopRequest is the file Stop writes before it signals the shim.
type stopRequest struct {
	Grace time.Duration `json:"grace"`
}

// Start re-executes the current binary as the instance's supervisor;
// proc.Main (called first by the program's main, or a test binary's
// TestMain) turns that process into the shim.
func init() {
	proc.Register(role, func(args []string) int {
		if len(args) != 2 {
			fmt.Fprintf(os.Stderr, "%swant an instance ID and a spec file, got %q\n", marker, args)
			return 2
		}
		return runShim(args[1])
	})
}

// runShim is the supervisor's whole life; it returns the exit status.
func runShim(specPath string) int {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGCHLD)

	// Descendants that daemonize (double fork, setsid) are re-parented to
	// us rather than to init, so we can find them, and we reap them.
	if err := proc.BecomeSubreaper(); err != nil {
		fmt.Fprintf(os.Stderr, "%s%v\n", marker, err)
		return 1
	}
	syscall.CloseOnExec(doneFD)

	spec, err := readShimSpec(specPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s%v\n", marker, err)
		return 1
	}
	s, err := newShim(spec)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s%v\n", marker, err)
		return 1
	}
	// The parent-death signal may have come before signal.Notify, and so
	// killed a shim that had nothing to clean up; after it, a parent that
	// is already gone shows as a different parent PID.
	if os.Getppid() != spec.ParentPID {
		s.say("the sandbox is gone; not starting")
		return 0
	}
	s.begin()
	for sig := range sigs {
		switch sig {
		case syscall.SIGCHLD:
			s.reap()
			s.advance()
		case syscall.SIGTERM:
			s.terminate(sigs)
			return 0
		}
	}
	return 0
}

func readShimSpec(path string) (shimSpec, error) {
	var spec shimSpec
	b, err := os.ReadFile(path)
	if err != nil {
		return spec, fmt.Errorf("read instance spec: %w", err)
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return spec, fmt.Errorf("read instance spec %s: %w", path, err)
	}
	if spec.Grace <= 0 {
		spec.Grace = defaultGrace
	}
	return spec, nil
}

// stage is one step of the user data: a program to run, or files to write.
type stage struct {
	label string   // "user data script", "boothook", "bootcmd", "write_files"
	path  string   // the script, relative to the instance directory
	argv  []string // nil for a write_files stage
	env   []string // added to the stage's environment
	files []file
}

// shim supervises one instance. All of it runs on the shim's main
// goroutine, so a child cannot be reaped before its PID is recorded.
type shim struct {
	spec    shimSpec
	root    string
	console *os.File
	fds     []uintptr // stdin, stdout, stderr of every stage
	done    *os.File

	stages   []stage
	next     int
	cur      int // PID of the running stage, 0 when none
	curStage *stage
	finished bool
	stopping bool
}

func newShim(spec shimSpec) (*shim, error) {
	console, err := os.OpenFile(filepath.Join(spec.Dir, consoleName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open console: %w", err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, fmt.Errorf("open stdin: %w", err)
	}
	s := &shim{
		spec:    spec,
		root:    filepath.Join(spec.Dir, rootName),
		console: console,
		fds:     []uintptr{devnull.Fd(), console.Fd(), console.Fd()},
		done:    os.NewFile(doneFD, "user-data-done"),
	}
	return s, nil
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
		pid, err := syscall.ForkExec(st.argv[0], st.argv, &syscall.ProcAttr{
			Dir:   s.spec.Dir,
			Env:   mergeEnv(s.spec.Env, st.env),
			Files: s.fds,
		})
		if err != nil {
			s.say("%s could not run: %v (%s)", st.label, err, st.path)
			continue
		}
		s.cur, s.curStage = pid, st
	}
	if s.cur == 0 && s.next == len(s.stages) && !s.finished && !s.stopping {
		s.finished = true
		s.say("user data finished")
		_, _ = s.done.Write([]byte{'d'}) // the sandbox may be gone; nothing to do then
		_ = s.done.Close()
	}
}

// reap collects every child that has exited, the running stage and
// re-parented orphans alike, and reports whether a child is left.
func (s *shim) reap() (more bool) {
	return proc.Reap(func(pid int, ws syscall.WaitStatus) {
		if pid != s.cur {
			return
		}
		st := s.curStage
		s.cur, s.curStage = 0, nil
		switch {
		case ws.Exited():
			s.say("%s exited with status %d (%s)", st.label, ws.ExitStatus(), st.path)
		case ws.Signaled():
			s.say("%s was killed by signal %d (%v) (%s)", st.label, int(ws.Signal()), ws.Signal(), st.path)
		}
	})
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

// terminate stops every process of the instance: SIGTERM (and SIGCONT, for
// stopped ones) to each, then SIGKILL after the grace period, until the
// shim has no child left. The shim is a child subreaper whose process
// group only its descendants can join, so then no process is left in its
// group or below it.
func (s *shim) terminate(sigs <-chan os.Signal) {
	s.stopping = true
	grace := s.stopGrace()
	s.say("instance %s stopping", s.spec.ID)
	deadline := time.Now().Add(grace)
	self := os.Getpid()
	var sweep proc.Sweep
	tick := time.NewTicker(killPoll)
	defer tick.Stop()
	for s.reap() {
		if _, err := sweep.Signal(self, !time.Now().Before(deadline)); err != nil {
			// Without /proc the group is all we can find; we go with it.
			s.say("%v; killing the process group", err)
			_ = syscall.Kill(-syscall.Getpgrp(), syscall.SIGKILL)
			return
		}
		select {
		case <-tick.C:
		case <-sigs: // a child exited (or another SIGTERM): look again
		}
	}
}

// stopGrace is the grace period Stop asked for, else the spec's.
func (s *shim) stopGrace() time.Duration {
	b, err := os.ReadFile(filepath.Join(s.spec.Dir, stopName))
	if err != nil {
		return s.spec.Grace
	}
	var req stopRequest
	if err := json.Unmarshal(b, &req); err != nil {
		return s.spec.Grace
	}
	return max(req.Grace, 0)
}

// mergeEnv concatenates environments; a later entry replaces an earlier one
// with the same name, in its place.
func mergeEnv(envs ...[]string) []string {
	var out []string
	at := map[string]int{}
	for _, env := range envs {
		for _, kv := range env {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := at[k]; ok {
				out[i] = kv
				continue
			}
			at[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}
