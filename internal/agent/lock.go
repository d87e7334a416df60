package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile is the file in paths.journal_dir that the agent holds an
// exclusive flock on for its whole life; it holds the holder's pid.
const lockFile = "agent.lock"

// ErrJournalLocked means another agent holds the journal directory: two
// agents on one journal would both run the same steps.
var ErrJournalLocked = errors.New("journal directory is in use by another agent")

// journalLock is an exclusive flock on <journal_dir>/agent.lock. The lock
// belongs to the open file description, so a second lock of the same
// directory fails also within one process, and the kernel releases it when
// the process dies, however it dies.
type journalLock struct {
	f *os.File
}

// lockJournal takes the journal directory's lock without waiting. When
// another agent holds it, the error wraps ErrJournalLocked and names the
// directory and the holder's pid.
func lockJournal(dir string) (*journalLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock journal directory: %w", err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock journal directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "unknown"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = strconv.Itoa(pid)
			}
		}
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: paths.journal_dir %s is locked by the agent with pid %s (%s); run one agent per journal directory, or give each its own paths.journal_dir",
				ErrJournalLocked, dir, holder, path)
		}
		return nil, fmt.Errorf("lock journal directory %s: %w", dir, err)
	}
	// The pid is written only by the holder, so a reader that fails to
	// take the lock reads the holder's pid.
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock journal directory %s: write pid: %w", dir, err)
	}
	return &journalLock{f: f}, nil
}

// release drops the lock. The file stays: removing it would let a third
// agent lock a new file while a second one holds the old.
func (l *journalLock) release() {
	_ = l.f.Close() // closing the last descriptor releases the flock
}
