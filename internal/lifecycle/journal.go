package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// StepState is how far a step of an action got.
type StepState string

// Step states, in the order a step goes through them.
const (
	StepStarted  StepState = "started"  // recorded just before StepRunner.Start
	StepFinished StepState = "finished" // the step ended; ExitCode and TimedOut say how
	StepSkipped  StepState = "skipped"  // interrupted and not rerun (InterruptSkip)
)

// StepRecord is the journaled progress of one step.
type StepRecord struct {
	Name     string    `json:"name"`
	State    StepState `json:"state"`
	ExitCode int       `json:"exit_code"`
	TimedOut bool      `json:"timed_out,omitempty"`
	// Error is why the step could not be started (then ExitCode is -1).
	Error   string    `json:"error,omitempty"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
}

// failed reports whether the finished step counts as a failure.
func (s StepRecord) failed() bool {
	return s.State == StepFinished && (s.ExitCode != 0 || s.TimedOut || s.Error != "")
}

// Record is the journaled progress of one lifecycle action.
type Record struct {
	Key Key `json:"key"`
	// ID tells this action apart from earlier ones with the same Key; it
	// names the action's steps for the StepRunner (StepID.Action).
	ID    string `json:"id"`
	Token string `json:"token,omitempty"`
	// Seen is when the agent first learned of the action.
	Seen  time.Time    `json:"seen"`
	Steps []StepRecord `json:"steps,omitempty"`
	// Completing is the result decided for the action, saved before
	// CompleteLifecycleAction is first called.
	Completing Result `json:"completing,omitempty"`
	// Completed says the action needs nothing more: it was completed with
	// Completing, or, when Gone is set, Auto Scaling no longer had it.
	Completed bool `json:"completed,omitempty"`
	// Gone says Auto Scaling reported no active action (ErrNoActiveAction):
	// it was completed elsewhere or timed out.
	Gone        bool      `json:"gone,omitempty"`
	CompletedAt time.Time `json:"completed_at,omitzero"`

	// pending says that the end of the step that ended the plan (and
	// Completing) is not journaled yet: the Executor journals it with the
	// completion, or as soon as the completion is delayed. Never saved.
	pending bool
}

// step returns the index of the step named name in r.Steps, or -1.
func (r *Record) step(name string) int {
	for i := range r.Steps {
		if r.Steps[i].Name == name {
			return i
		}
	}
	return -1
}

// setStep replaces the record of s.Name, or appends it.
func (r *Record) setStep(s StepRecord) {
	if i := r.step(s.Name); i >= 0 {
		r.Steps[i] = s
		return
	}
	r.Steps = append(r.Steps, s)
}

// journalVersion is the version of the file format Save writes.
const journalVersion = 1

// journalFile is the on-disk form of a Record.
type journalFile struct {
	Version int    `json:"version"`
	Record  Record `json:"record"`
}

const (
	recordExt  = ".json"
	tempPrefix = "tmp~" // '~' never appears in a Key's file name
)

// ErrCorruptRecord means a journal file could not be read as a record; the
// error also names the file.
var ErrCorruptRecord = errors.New("corrupt journal record")

// Journal stores one Record per Key as a JSON file in a directory. Save
// writes a temporary file, syncs it, renames it over the record and syncs
// the directory, so a reader (or an agent restarted after a crash or power
// loss) sees either the old record or the new one, never a mix.
//
// A Journal is safe for concurrent use on different keys; the directory
// belongs to one agent at a time (the Executor serializes work per key).
type Journal struct {
	dir string
}

// OpenJournal opens the journal in dir, creating the directory (mode 0700)
// if needed and removing temporary files a crash left behind.
func OpenJournal(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("open journal: remove leftover temporary file: %w", err)
			}
		}
	}
	return &Journal{dir: dir}, nil
}

// Dir returns the journal's directory.
func (j *Journal) Dir() string { return j.dir }

// path returns the file holding k's record.
func (j *Journal) path(k Key) string { return filepath.Join(j.dir, k.String()+recordExt) }

// Load returns k's record; ok is false when there is none. A file that
// cannot be read as k's record yields an error wrapping ErrCorruptRecord
// and naming the file.
func (j *Journal) Load(k Key) (r Record, ok bool, err error) {
	path := j.path(k)
	r, err = readRecord(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Record{}, false, nil
	case err != nil:
		return Record{}, false, err
	case r.Key != k:
		return Record{}, false, fmt.Errorf("%w %s: holds the record of %v, not of %v", ErrCorruptRecord, path, r.Key, k)
	}
	return r, true, nil
}

// List returns every record in the journal, in file name order.
func (j *Journal) List() ([]Record, error) {
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("list journal: %w", err)
	}
	var recs []Record
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), tempPrefix) || !strings.HasSuffix(e.Name(), recordExt) {
			continue
		}
		path := filepath.Join(j.dir, e.Name())
		r, err := readRecord(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // removed since ReadDir
		case err != nil:
			return nil, err
		case path != j.path(r.Key):
			return nil, fmt.Errorf("%w %s: holds the record of %v", ErrCorruptRecord, path, r.Key)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

func readRecord(path string) (Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Record{}, fmt.Errorf("read journal record: %w", err)
	}
	var f journalFile
	if err := json.Unmarshal(data, &f); err != nil {
		return Record{}, fmt.Errorf("%w %s: %w", ErrCorruptRecord, path, err)
	}
	if f.Version != journalVersion {
		return Record{}, fmt.Errorf("%w %s: version %d, want %d", ErrCorruptRecord, path, f.Version, journalVersion)
	}
	if f.Record.ID == "" {
		return Record{}, fmt.Errorf("%w %s: no record id", ErrCorruptRecord, path)
	}
	return f.Record, nil
}

// Save writes r as the record of r.Key, atomically and durably: when Save
// returns nil the record survives a crash or power loss.
func (j *Journal) Save(r Record) (err error) {
	k := r.Key
	if k.Instance == "" || k.Transition == "" || k.Hook == "" {
		return fmt.Errorf("save journal record: key (instance %q, transition %q, hook %q) has an empty field", k.Instance, k.Transition, k.Hook)
	}
	if r.ID == "" {
		return fmt.Errorf("save journal record %v: no record id", k)
	}
	data, err := json.MarshalIndent(journalFile{Version: journalVersion, Record: r}, "", "  ")
	if err != nil {
		return fmt.Errorf("save journal record %v: %w", k, err)
	}
	data = append(data, '\n')
	f, err := os.CreateTemp(j.dir, tempPrefix+k.String()+".*")
	if err != nil {
		return fmt.Errorf("save journal record %v: %w", k, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close() // may already be closed; the write error is the one to report
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("save journal record %v: %w", k, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save journal record %v: %w", k, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save journal record %v: %w", k, err)
	}
	if err := os.Rename(tmp, j.path(k)); err != nil {
		return fmt.Errorf("save journal record %v: %w", k, err)
	}
	if err := j.syncDir(); err != nil {
		return fmt.Errorf("save journal record %v: %w", k, err)
	}
	return nil
}

// Remove deletes k's record; removing a missing record is not an error.
func (j *Journal) Remove(k Key) error {
	if err := os.Remove(j.path(k)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove journal record %v: %w", k, err)
	}
	if err := j.syncDir(); err != nil {
		return fmt.Errorf("remove journal record %v: %w", k, err)
	}
	return nil
}

// syncDir makes renames and removals in the directory durable.
func (j *Journal) syncDir() error {
	d, err := os.Open(j.dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
