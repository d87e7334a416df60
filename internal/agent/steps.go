package agent

import (
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

	"github.com/lifeguardhq/lifeguard/internal/jobs"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// stepOutputTail is how much of a step's output is logged when it ends.
const stepOutputTail = 4 << 10

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
// env (later entries win). When a step ends, Wait logs the last 4 KiB of
// its output. log may be nil.
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
	base := r.base(id)
	n, err := lastAttempt(base)
	if err != nil {
		return nil, fmt.Errorf("start step %s of %v: %w", id.Step, id.Key, err)
	}
	h, err := jobs.Start(jobs.Spec{
		Dir:     filepath.Join(base, strconv.Itoa(n+1)),
		Argv:    s.Argv,
		Env:     append(os.Environ(), env...),
		Timeout: s.Timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("start step %s of %v: %w", id.Step, id.Key, err)
	}
	return &jobsHandle{h: h, id: id, log: r.log}, nil
}

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
	return &jobsHandle{h: h, id: id, log: r.log}, true, nil
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
	h   *jobs.Handle
	id  lifecycle.StepID
	log *slog.Logger
}

// Wait waits for the supervisor's outcome and logs the step's output. A
// supervisor that died without recording one is an error (wrapping
// jobs.ErrSupervisorLost); the Executor then treats the step as
// interrupted on its next run.
func (h *jobsHandle) Wait(ctx context.Context) (lifecycle.StepOutcome, error) {
	o, err := h.h.Wait(ctx)
	if err != nil {
		return lifecycle.StepOutcome{}, err
	}
	level := slog.LevelInfo
	if o.ExitCode != 0 || o.TimedOut {
		level = slog.LevelWarn
	}
	h.log.Log(ctx, level, "step output",
		keyInstance, h.id.Key.Instance, keyHook, h.id.Key.Hook, keyStep, h.id.Step,
		keyExitCode, o.ExitCode, keySignal, o.Signal, keyTimedOut, o.TimedOut,
		keyDir, h.h.Dir(), keyOutput, string(h.h.Output(stepOutputTail)))
	return lifecycle.StepOutcome{ExitCode: o.ExitCode, TimedOut: o.TimedOut}, nil
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
