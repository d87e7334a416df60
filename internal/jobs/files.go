package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

// The files of a run, in its directory.
const (
	specFile       = "spec.json"
	lockFile       = "lock"
	pidFile        = "supervisor.pid"
	statusFile     = "status.json"
	outputFile     = "output.log"
	supervisorFile = "supervisor.log"
)

// States of status.json.
const (
	stateRunning = "running"
	stateExited  = "exited"
)

// specRecord is spec.json: everything the supervisor needs.
type specRecord struct {
	Path    string        `json:"path"` // Argv[0] resolved as execvp would
	Argv    []string      `json:"argv"`
	Env     []string      `json:"env"`
	WorkDir string        `json:"workDir"` // the agent's working directory at Start
	Timeout time.Duration `json:"timeout"`
	Grace   time.Duration `json:"grace"`
}

// pidRecord is supervisor.pid.
type pidRecord struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"` // field 22 of /proc/<pid>/stat
}

func (r pidRecord) id() proc.ID { return proc.ID{PID: r.PID, Start: r.StartTime} }

// statusRecord is status.json. PID, PGID and StartTime are the command's;
// PGID is 0 if the command never started.
type statusRecord struct {
	State     string         `json:"state"`
	PID       int            `json:"pid,omitempty"`
	PGID      int            `json:"pgid,omitempty"`
	StartTime uint64         `json:"startTime,omitempty"`
	Started   time.Time      `json:"started"`
	Outcome   *outcomeRecord `json:"outcome,omitempty"`
}

type outcomeRecord struct {
	ExitCode int       `json:"exitCode"`
	Signal   string    `json:"signal,omitempty"`
	TimedOut bool      `json:"timedOut,omitempty"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"`
}

func (o outcomeRecord) outcome() Outcome {
	return Outcome{ExitCode: o.ExitCode, Signal: o.Signal, TimedOut: o.TimedOut, Started: o.Started, Ended: o.Ended}
}

// errDecode is wrapped by readJSON's errors for a file that is not the
// JSON expected (empty, cut short, or garbage).
var errDecode = errors.New("decode")

// readJSON decodes a file; a missing file's error satisfies
// errors.Is(err, fs.ErrNotExist).
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w %s: %w", errDecode, path, err)
	}
	return nil
}

// readStatus reads status.json; ok is false when there is none.
func readStatus(dir string) (st statusRecord, ok bool, err error) {
	err = readJSON(filepath.Join(dir, statusFile), &st)
	if errors.Is(err, os.ErrNotExist) {
		return st, false, nil
	}
	if err == nil && st.State == stateExited && st.Outcome == nil {
		err = fmt.Errorf("decode %s: exited without an outcome", filepath.Join(dir, statusFile))
	}
	return st, err == nil, err
}

// writeAtomic replaces path with a file holding v as JSON, durably: a
// temporary file in the same directory is written and fsynced, renamed
// over path, and the directory is fsynced.
func writeAtomic(path string, v any) error { return writeJSON(path, v, true) }

// writeVolatile replaces path with a file holding v as JSON, atomically
// but not durably: the same without fsync. Readers within one boot see
// the old file or the new one, never a mix; after a power loss the file
// may be missing, empty or cut short. For supervisor.pid, which only says
// which process of this boot supervises the run.
func writeVolatile(path string, v any) error { return writeJSON(path, v, false) }

// writeJSON writes v to a temporary file beside path and renames it over
// path; durable fsyncs the file before the rename and the directory after.
func writeJSON(path string, v any, durable bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if !durable {
		return nil
	}
	return syncDir(dir)
}

// createExclusive creates path holding v as JSON, durably; it fails with
// an error satisfying errors.Is(err, fs.ErrExist) if path exists.
func createExclusive(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// lockHeld reports whether some process holds the run's lock.
func lockHeld(dir string) (bool, error) {
	f, err := os.Open(filepath.Join(dir, lockFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open lock: %w", err)
	}
	defer f.Close()
	err = flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("test lock: %w", err)
	}
	return false, nil // closing f releases it
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// tail returns the last n bytes of a file; never nil.
func tail(path string, n int) []byte {
	if n <= 0 {
		return []byte{}
	}
	f, err := os.Open(path)
	if err != nil {
		return []byte{}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return []byte{}
	}
	off := max(fi.Size()-int64(n), 0)
	buf := make([]byte, fi.Size()-off)
	k, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return []byte{}
	}
	return buf[:k]
}
