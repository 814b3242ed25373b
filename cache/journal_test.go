package cache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bucketfs/bucketfs/backend"
)

func openTestJournal(t *testing.T, root string) *Journal {
	t.Helper()
	j, err := OpenJournal(root, "ep-bucket")
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestJournalRecovery: what a dead mount left is taken over by the next
// one: pending files to upload, unfinished writes and damaged entries set
// aside, never replayed. A live mount's journal is left alone.
func TestJournalRecovery(t *testing.T) {
	root := t.TempDir()
	dead := openTestJournal(t, root)

	pending, _ := dead.Create("dir/pending")
	pending.WriteAt([]byte("must reach S3"), 0)
	entry := Entry{Bucket: "bucket", State: EntryPending, Size: 13, Reason: "server unavailable",
		Put: backend.PutInput{Key: "dir/pending", ContentType: "text/plain", Metadata: map[string]string{"mode": "33188"}, IfMatch: "abc"}}
	if err := pending.Record(entry, true); err != nil {
		t.Fatal(err)
	}
	open, _ := dead.Create("half/written")
	open.WriteAt([]byte("half"), 0)
	open.Record(Entry{State: EntryOpen, UploadID: "up-1", Put: backend.PutInput{Key: "half/written"}}, false)
	damaged, _ := dead.Create("damaged")
	damaged.WriteAt([]byte("data of a damaged entry"), 0)
	os.WriteFile(damaged.Path()+entrySuffix, []byte(`{"state":"pend`), 0o600) // a crash mid-write
	dead.lock.Close()                                                         // the mount died: its lock is free

	live := openTestJournal(t, root)
	defer live.Close()
	liveFile, _ := live.Create("live/file")
	liveFile.Record(Entry{State: EntryPending, Put: backend.PutInput{Key: "live/file"}}, true)

	next := openTestJournal(t, root)
	defer next.Close()
	got := next.Recover()
	if len(got.Pending) != 1 {
		t.Fatalf("recovered %d pending files, want 1: %+v", len(got.Pending), got)
	}
	r := got.Pending[0]
	if r.Entry.Put.Key != "dir/pending" || r.Entry.Put.IfMatch != "abc" || r.Entry.Put.Metadata["mode"] != "33188" || r.Entry.Reason == "" {
		t.Errorf("entry = %+v", r.Entry)
	}
	if filepath.Dir(r.File.Path()) != next.Dir() || r.File.Size() != 13 {
		t.Errorf("recovered file at %s, %d bytes", r.File.Path(), r.File.Size())
	}
	if data := stagedBytes(t, r.File); string(data) != "must reach S3" {
		t.Errorf("recovered data %q", data)
	}
	if len(got.Unfinished) != 1 || got.Unfinished[0].UploadID != "up-1" {
		t.Errorf("unfinished = %+v", got.Unfinished)
	}
	if len(got.Problems) != 1 || !strings.Contains(got.Problems[0], "damaged journal entry") {
		t.Errorf("problems = %q", got.Problems)
	}
	lost, _ := filepath.Glob(filepath.Join(next.LostDir(), "*"))
	var kept []string
	for _, p := range lost {
		if !strings.HasSuffix(p, entrySuffix) {
			b, _ := os.ReadFile(p)
			kept = append(kept, string(b))
		}
	}
	if strings.Join(kept, "|") != "half|data of a damaged entry" && strings.Join(kept, "|") != "data of a damaged entry|half" {
		t.Errorf("lost+found holds %q", kept)
	}
	if _, err := os.Stat(dead.Dir()); !os.IsNotExist(err) {
		t.Errorf("the dead mount's journal is still there: %v", err)
	}
	if _, err := os.Stat(liveFile.Path()); err != nil {
		t.Errorf("a live mount's journal was touched: %v", err)
	}
	// Nothing is replayed twice.
	again := openTestJournal(t, root)
	defer again.Close()
	if r := again.Recover(); len(r.Pending)+len(r.Unfinished)+len(r.Problems) != 0 {
		t.Errorf("second recovery found %+v", r)
	}
}

func TestJournalSetAside(t *testing.T) {
	j := openTestJournal(t, t.TempDir())
	defer j.Close()
	f, _ := j.Create("a/b/report.txt")
	f.WriteAt([]byte("mine"), 0)
	path, err := f.SetAside(j.ConflictDir(), Entry{State: EntryConflict, Put: backend.PutInput{Key: "a/b/report.txt"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, "-report.txt") || filepath.Dir(path) != j.ConflictDir() {
		t.Errorf("conflict copy at %s", path)
	}
	if b, _ := os.ReadFile(path); string(b) != "mine" {
		t.Errorf("conflict copy holds %q", b)
	}
	f.WriteAt([]byte("MINE"), 0) // a descriptor open on it still works
	f.Remove()                   // and removing the staged file leaves the copy
	if b, _ := os.ReadFile(path); string(b) != "MINE" {
		t.Errorf("conflict copy holds %q after Remove", b)
	}
	aside, err := j.Aside()
	if err != nil || aside[path].Put.Key != "a/b/report.txt" {
		t.Errorf("Aside = %+v, %v", aside, err)
	}
}

func TestPrepareCacheDir(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "new", "cache")
	if err := PrepareCacheDir(dir, os.Getuid()); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("created with mode %v", st.Mode())
	}
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o1777)
	link := filepath.Join(base, "link")
	os.Symlink(dir, link)
	for name, tc := range map[string]struct {
		dir string
		uid int
	}{
		"world-writable": {open, os.Getuid()},
		"symlink":        {link, os.Getuid()},
		"another owner":  {dir, os.Getuid() + 1},
	} {
		if err := PrepareCacheDir(tc.dir, tc.uid); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
