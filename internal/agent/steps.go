package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/jobs"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// stepOutputTail is how much of a command's output is logged when it
// ends, where its output is not streamed (leader.on_elected, on_demoted).
const stepOutputTail = 4 << 10

const (
	// stepOutputFile is where a jobs supervisor writes the command's
	// combined output, in its run directory.
	stepOutputFile = "output.log"
	// stepOutputPoll is how often a running step's new output is read for
	// the log.
	stepOutputPoll = 200 * time.Millisecond
	// maxOutputLine bounds one logged line of a step's output; a longer
	// line is logged in pieces of this size.
	maxOutputLine = 4 << 10
	// maxOutputRead bounds one read of a step's new output.
	maxOutputRead = 1 << 20
)

// stepsDir is the subdirectory of the journal directory holding the step
// supervisors' run directories.
const stepsDir = "steps"

// NewStepRunner returns a lifecycle.StepRunner that runs each step under a
// supervisor of package jobs, which outlives the agent. A step's runs live
// in <journalDir>/steps/<key>/<action>/<step>/<attempt>: <key> is
// StepID.Key.String(), <action> and <step> are StepID.Action and
// StepID.Step made safe as file names, and <attempt> counts from 1, since a
// jobs run directory takes one run only and a step that Adopt found not
// adoptable may be started again (on_interrupt: rerun). Start uses the next
// attempt; Adopt the last one. A step gets the agent's environment plus
// env (later entries win). While Wait waits, the step's output is logged
// line by line as it is written ("step output", one record a line; of an
// adopted step, what it writes from its adoption on), and "step ended"
// when it ends. log may be nil.
//
// jobs.Start takes no context: Start blocks until the supervisor has
// recorded the running command, whatever ctx does.
func NewStepRunner(journalDir string, log *slog.Logger) lifecycle.StepRunner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &jobsRunner{dir: filepath.Join(journalDir, stepsDir), log: log}
}

type jobsRunner struct {
	dir string
	log *slog.Logger
}

// base is the directory holding the attempts of step id.
func (r *jobsRunner) base(id lifecycle.StepID) string {
	return filepath.Join(r.dir, id.Key.String(), fileName(id.Action), fileName(id.Step))
}

// Start starts the step's next attempt under a new supervisor.
func (r *jobsRunner) Start(_ context.Context, id lifecycle.StepID, s lifecycle.Step, env []string) (lifecycle.StepHandle, error) {
	spec, err := r.spec(id, s, env)
	if err != nil {
		return nil, err
	}
	h, err := jobs.Start(spec)
	if err != nil {
		return nil, fmt.Errorf("start step %s of %v: %w", id.Step, id.Key, err)
	}
	return &jobsHandle{h: h, id: id, log: r.log}, nil
}

// Prepare claims the step's next attempt and launches its supervisor,
// which waits for Go before it starts the step (jobs.Prepare): the
// supervisor's start-up overlaps the step's journal write.
func (r *jobsRunner) Prepare(_ context.Context, id lifecycle.StepID, s lifecycle.Step, env []string) (lifecycle.PreparedStep, error) {
	spec, err := r.spec(id, s, env)
	if err != nil {
		return nil, err
	}
	p, err := jobs.Prepare(spec)
	if err != nil {
		return nil, fmt.Errorf("prepare step %s of %v: %w", id.Step, id.Key, err)
	}
	return &jobsPrepared{p: p, id: id, log: r.log}, nil
}

// spec is the jobs.Spec of the step's next attempt.
func (r *jobsRunner) spec(id lifecycle.StepID, s lifecycle.Step, env []string) (jobs.Spec, error) {
	base := r.base(id)
	n, err := lastAttempt(base)
	if err != nil {
		return jobs.Spec{}, fmt.Errorf("start step %s of %v: %w", id.Step, id.Key, err)
	}
	return jobs.Spec{
		Dir:     filepath.Join(base, strconv.Itoa(n+1)),
		Argv:    s.Argv,
		Env:     append(os.Environ(), env...),
		Timeout: s.Timeout,
	}, nil
}

// jobsPrepared is a step whose supervisor waits for Go.
type jobsPrepared struct {
	p   *jobs.Prepared
	id  lifecycle.StepID
	log *slog.Logger
}

// Go starts the prepared step; jobs.Prepared.Go takes no context.
func (p *jobsPrepared) Go(context.Context) (lifecycle.StepHandle, error) {
	h, err := p.p.Go()
	if err != nil {
		return nil, fmt.Errorf("start step %s of %v: %w", p.id.Step, p.id.Key, err)
	}
	return &jobsHandle{h: h, id: p.id, log: p.log}, nil
}

// Release makes the waiting supervisor exit without starting the step.
func (p *jobsPrepared) Release() { p.p.Release() }

// Adopt reattaches to the step's last attempt.
func (r *jobsRunner) Adopt(_ context.Context, id lifecycle.StepID) (lifecycle.StepHandle, bool, error) {
	base := r.base(id)
	n, err := lastAttempt(base)
	if err != nil {
		return nil, false, fmt.Errorf("adopt step %s of %v: %w", id.Step, id.Key, err)
	}
	if n == 0 {
		return nil, false, nil
	}
	h, ok, err := jobs.Adopt(filepath.Join(base, strconv.Itoa(n)))
	if err != nil || !ok {
		return nil, false, err
	}
	// The output written before is in output.log, and in the log of the
	// agent that started the step.
	var from int64
	if fi, err := os.Stat(filepath.Join(h.Dir(), stepOutputFile)); err == nil {
		from = fi.Size()
	}
	return &jobsHandle{h: h, id: id, log: r.log, from: from}, true, nil
}

// lastAttempt returns the highest attempt number under base, 0 if none.
func lastAttempt(base string) (int, error) {
	entries, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	last := 0
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() && n > last {
			last = n
		}
	}
	return last, nil
}

type jobsHandle struct {
	h    *jobs.Handle
	id   lifecycle.StepID
	log  *slog.Logger
	from int64 // the offset in output.log from which to log
}

// Wait waits for the supervisor's outcome, logging the step's output line
// by line as it is written, and how it ended. A supervisor that died
// without recording one is an error (wrapping jobs.ErrSupervisorLost); the
// Executor then treats the step as interrupted on its next run.
func (h *jobsHandle) Wait(ctx context.Context) (lifecycle.StepOutcome, error) {
	log := h.log.With(keyInstance, h.id.Key.Instance, keyTransition, string(h.id.Key.Transition), keyHook, h.id.Key.Hook, keyStep, h.id.Step)
	out := &outputStream{path: filepath.Join(h.h.Dir(), stepOutputFile), off: h.from, log: log}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(stepOutputPoll)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				out.read(false)
			}
		}
	}()
	o, err := h.h.Wait(ctx)
	close(stop)
	<-stopped
	out.read(err == nil) // what is left; once the step ended, a last line without a newline too
	if err != nil {
		return lifecycle.StepOutcome{}, err
	}
	level := slog.LevelInfo
	if o.ExitCode != 0 || o.TimedOut {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, "step ended", keyExitCode, o.ExitCode, keySignal, o.Signal, keyTimedOut, o.TimedOut, keyDir, h.h.Dir())
	return lifecycle.StepOutcome{ExitCode: o.ExitCode, TimedOut: o.TimedOut}, nil
}

// outputStream logs a step's output file line by line as it grows; only
// the goroutine of one Wait uses it.
type outputStream struct {
	path    string
	off     int64 // read up to here
	partial []byte
	log     *slog.Logger
}

// read logs the complete lines written since the last read; with final,
// also a last line without a newline.
func (s *outputStream) read(final bool) {
	f, err := os.Open(s.path)
	if err != nil {
		return // not written yet
	}
	defer f.Close()
	for {
		buf := make([]byte, maxOutputRead)
		n, _ := f.ReadAt(buf, s.off)
		s.off += int64(n)
		s.partial = append(s.partial, buf[:n]...)
		for {
			i := bytes.IndexByte(s.partial, '\n')
			if i < 0 {
				break
			}
			s.line(s.partial[:i])
			s.partial = s.partial[i+1:]
		}
		for len(s.partial) >= maxOutputLine {
			s.line(s.partial[:maxOutputLine])
			s.partial = s.partial[maxOutputLine:]
		}
		if n < maxOutputRead {
			break
		}
	}
	s.partial = bytes.Clone(s.partial)
	if final && len(s.partial) > 0 {
		s.line(s.partial)
		s.partial = nil
	}
}

func (s *outputStream) line(b []byte) {
	s.log.Info("step output", keyOutput, string(bytes.TrimSuffix(b, []byte("\r"))))
}

// maxFileName bounds the names fileName returns.
const maxFileName = 128

// fileName makes s safe as one path element, injectively: ASCII letters,
// digits, '-', '_' and '.' are kept, every other byte becomes '%' and two
// hex digits, and a name of dots only is escaped whole. Longer names are
// cut and end in a hash of the whole.
func fileName(s string) string {
	const hexDigits = "0123456789abcdef"
	allDots := strings.Trim(s, ".") == ""
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !allDots && ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
	name := b.String()
	if name == "" {
		return "%"
	}
	if len(name) <= maxFileName {
		return name
	}
	sum := sha256.Sum256([]byte(s))
	suffix := "%h" + hex.EncodeToString(sum[:16])
	return name[:maxFileName-len(suffix)] + suffix
}
