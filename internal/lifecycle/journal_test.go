package lifecycle_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

var testKey = lifecycle.Key{Instance: instanceID, Transition: lifecycle.TransitionTerminating, Hook: "drain"}

func testRecord(k lifecycle.Key) lifecycle.Record {
	t0 := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	return lifecycle.Record{
		Key:   k,
		ID:    "RUN1",
		Token: token,
		Seen:  t0,
		Steps: []lifecycle.StepRecord{
			{Name: "deregister", State: lifecycle.StepFinished, Started: t0, Ended: t0.Add(time.Minute)},
			{Name: "flush", State: lifecycle.StepFinished, ExitCode: 3, TimedOut: true, Started: t0.Add(time.Minute), Ended: t0.Add(2 * time.Minute)},
			{Name: "upload", State: lifecycle.StepStarted, Started: t0.Add(2 * time.Minute)},
		},
		Completing: lifecycle.Abandon,
	}
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestJournalRoundTrip(t *testing.T) {
	j := openJournal(t)
	if _, ok, err := j.Load(testKey); ok || err != nil {
		t.Fatalf("Load of a missing record = ok %v, err %v; want false, nil", ok, err)
	}
	want := testRecord(testKey)
	if err := j.Save(want); err != nil {
		t.Fatal(err)
	}
	if got := load(t, j, testKey); !reflect.DeepEqual(got, want) {
		t.Errorf("Load = %+v\nwant %+v", got, want)
	}
	want.Completed, want.CompletedAt = true, want.Seen.Add(time.Hour)
	if err := j.Save(want); err != nil {
		t.Fatal(err)
	}
	if got := load(t, j, testKey); !reflect.DeepEqual(got, want) {
		t.Errorf("Load after a second Save = %+v\nwant %+v", got, want)
	}
	recs, err := j.List()
	if err != nil || len(recs) != 1 || !reflect.DeepEqual(recs[0], want) {
		t.Errorf("List() = %+v, %v; want the one record", recs, err)
	}
	if err := j.Remove(testKey); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := j.Load(testKey); ok || err != nil {
		t.Errorf("Load after Remove = ok %v, err %v; want false, nil", ok, err)
	}
	if err := j.Remove(testKey); err != nil {
		t.Errorf("Remove of a missing record = %v, want nil", err)
	}
	if names := dirNames(t, j.Dir()); len(names) != 0 {
		t.Errorf("journal directory holds %q after Remove, want nothing", names)
	}
}

func TestJournalSaveReplacesAtomically(t *testing.T) {
	t.Run("save renames a new file over the record", func(t *testing.T) {
		j := openJournal(t)
		rec := testRecord(testKey)
		if err := j.Save(rec); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(j.Dir(), testKey.String()+".json")
		// A hard link keeps the inode of the first version: writing in place
		// would change what it reads, renaming a new file over the record
		// does not.
		link := filepath.Join(t.TempDir(), "first-version")
		if err := os.Link(path, link); err != nil {
			t.Skipf("hard links unsupported here: %v", err)
		}
		before, err := os.ReadFile(link)
		if err != nil {
			t.Fatal(err)
		}
		rec.Completed = true
		if err := j.Save(rec); err != nil {
			t.Fatal(err)
		}
		after, err := os.ReadFile(link)
		if err != nil {
			t.Fatal(err)
		}
		if string(after) != string(before) {
			t.Errorf("Save rewrote the record file in place; want a new file renamed over it")
		}
		if got := load(t, j, testKey); !got.Completed {
			t.Errorf("Load after Save = %+v, want the new version", got)
		}
	})

	t.Run("no temporary file remains", func(t *testing.T) {
		j := openJournal(t)
		rec := testRecord(testKey)
		for i := range 20 {
			rec.Steps[0].ExitCode = i
			if err := j.Save(rec); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := dirNames(t, j.Dir()), []string{testKey.String() + ".json"}; !reflect.DeepEqual(got, want) {
			t.Errorf("journal directory holds %q, want %q", got, want)
		}
	})

	t.Run("a concurrent reader never sees a partial record", func(t *testing.T) {
		j := openJournal(t)
		rec := testRecord(testKey)
		rec.Token = strings.Repeat("t", 16<<10) // larger than one page
		if err := j.Save(rec); err != nil {
			t.Fatal(err)
		}
		const versions = 30
		done := make(chan struct{})
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() {
			defer close(done)
			for i := 1; i <= versions; i++ {
				rec.Steps[0].ExitCode = i
				if err := j.Save(rec); err != nil {
					t.Error(err)
					return
				}
			}
		})
		last := 0
		for finished := false; !finished; {
			select {
			case <-done:
				finished = true // one more Load after the last Save
			default:
			}
			got, ok, err := j.Load(testKey)
			if err != nil || !ok {
				t.Fatalf("Load during Saves = ok %v, err %v", ok, err)
			}
			v := got.Steps[0].ExitCode
			if v < last {
				t.Fatalf("Load went back from version %d to %d", last, v)
			}
			last = v
		}
		if last != versions {
			t.Errorf("last Load saw version %d, want %d", last, versions)
		}
	})

	t.Run("open removes what a crash left behind", func(t *testing.T) {
		dir := t.TempDir()
		j, err := lifecycle.OpenJournal(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Save(testRecord(testKey)); err != nil {
			t.Fatal(err)
		}
		// A crash between the write of the temporary file and the rename.
		stray := filepath.Join(dir, "tmp~"+testKey.String()+".1234567")
		if err := os.WriteFile(stray, []byte(`{"version":1,"rec`), 0o600); err != nil {
			t.Fatal(err)
		}
		if recs, err := j.List(); err != nil || len(recs) != 1 {
			t.Errorf("List() with a stray temporary file = %d records, %v; want 1, nil", len(recs), err)
		}
		if _, err := lifecycle.OpenJournal(dir); err != nil {
			t.Fatal(err)
		}
		if got, want := dirNames(t, dir), []string{testKey.String() + ".json"}; !reflect.DeepEqual(got, want) {
			t.Errorf("after OpenJournal the directory holds %q, want %q", got, want)
		}
		load(t, j, testKey)
	})
}

func TestJournalRejectsCorruptRecords(t *testing.T) {
	other := lifecycle.Key{Instance: "i-0fedcba9876543210", Transition: lifecycle.TransitionTerminating, Hook: "drain"}
	for _, c := range []struct {
		name    string
		content string
		want    string
	}{
		{"truncated file", `{"version":1,"record":{"key":`, "unexpected end of JSON input"},
		{"not json", "\x00\x00\x00", "invalid character"},
		{"unknown version", `{"version":2,"record":{"id":"X"}}`, "version 2, want 1"},
		{"record without id", `{"version":1,"record":{"key":{"instance":"i-0123456789abcdef0"}}}`, "no record id"},
		{"another key's record", mustRecordJSON(t, other), "holds the record of"},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := openJournal(t)
			path := filepath.Join(j.Dir(), testKey.String()+".json")
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, ok, err := j.Load(testKey)
			if ok || !errors.Is(err, lifecycle.ErrCorruptRecord) {
				t.Fatalf("Load = ok %v, err %v; want ErrCorruptRecord", ok, err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Load error %q: want it to name %s and say %q", err, path, c.want)
			}
			if _, err := j.List(); !errors.Is(err, lifecycle.ErrCorruptRecord) {
				t.Errorf("List() error = %v, want ErrCorruptRecord", err)
			}
		})
	}
}

// mustRecordJSON returns the file Save writes for a record of k.
func mustRecordJSON(t *testing.T, k lifecycle.Key) string {
	t.Helper()
	j := openJournal(t)
	if err := j.Save(testRecord(k)); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(j.Dir(), k.String()+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestJournalOddKeys(t *testing.T) {
	j := openJournal(t)
	keys := []lifecycle.Key{
		{Instance: "../../etc", Transition: lifecycle.TransitionTerminating, Hook: "passwd"},
		{Instance: "..", Transition: "..", Hook: "."},
		{Instance: "i-1", Transition: lifecycle.TransitionLaunching, Hook: "warm/pool:hook with spaces"},
		{Instance: "i-1", Transition: lifecycle.TransitionLaunching, Hook: "warm_2fpool_3ahook with spaces"},
		{Instance: "i-1", Transition: lifecycle.TransitionTerminating, Hook: "ünïcödé\x00\n"},
		{Instance: "i-1", Transition: lifecycle.TransitionTerminating, Hook: strings.Repeat("x", 255)},
		{Instance: "i-1", Transition: lifecycle.TransitionTerminating, Hook: strings.Repeat("/", 255)},
	}
	for i, k := range keys {
		rec := testRecord(k)
		rec.Steps[0].ExitCode = i
		if err := j.Save(rec); err != nil {
			t.Fatalf("Save(%q): %v", k, err)
		}
	}
	for i, k := range keys {
		if got := load(t, j, k); got.Key != k || got.Steps[0].ExitCode != i {
			t.Errorf("Load(%q) = record of %q, version %d; want its own record, version %d", k.Hook, got.Key.Hook, got.Steps[0].ExitCode, i)
		}
	}
	names := dirNames(t, j.Dir())
	if len(names) != len(keys) {
		t.Errorf("journal directory holds %d files, want %d: %q", len(names), len(keys), names)
	}
	for _, n := range names {
		if !safeName(n) || len(n) > 255 {
			t.Errorf("journal file name %q is not safe", n)
		}
	}
	if parent := dirNames(t, filepath.Dir(j.Dir())); len(parent) != 1 {
		t.Errorf("Save wrote outside the journal directory: %q", parent)
	}
}

func TestJournalSaveRejectsIncompleteRecords(t *testing.T) {
	j := openJournal(t)
	rec := testRecord(testKey)
	rec.ID = ""
	if err := j.Save(rec); err == nil || !strings.Contains(err.Error(), "no record id") {
		t.Errorf("Save without an id = %v, want an error", err)
	}
	rec = testRecord(lifecycle.Key{Instance: instanceID, Transition: lifecycle.TransitionTerminating})
	if err := j.Save(rec); err == nil || !strings.Contains(err.Error(), "empty field") {
		t.Errorf("Save without a hook = %v, want an error", err)
	}
	if names := dirNames(t, j.Dir()); len(names) != 0 {
		t.Errorf("journal directory holds %q, want nothing", names)
	}
}
