package cache

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Deletes a dead mount deferred and did not do are taken over, in the
// order they were asked for, by the next mount, which journals them
// again; done ones and a line cut by the crash are left out.
func TestDeferredDeletesAreTakenOver(t *testing.T) {
	root := t.TempDir()
	dead := openTestJournal(t, root)
	now := time.Now()
	for _, key := range []string{"a", "b", "c", "b"} {
		if err := dead.RecordDelete(DeferredDelete{Bucket: "bkt", Key: key, Since: now}); err != nil {
			t.Fatal(err)
		}
	}
	dead.DeleteDone("bkt", "a")
	dead.SyncDeletes()
	f, _ := os.OpenFile(filepath.Join(dead.Dir(), deleteLogName), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"bucket":"bkt","key":"d"`) // cut by the crash
	f.Close()
	dead.lock.Close()

	next := openTestJournal(t, root)
	got := next.Recover()
	var keys []string
	for _, d := range got.Deletes {
		keys = append(keys, d.Bucket+"/"+d.Key)
	}
	if want := []string{"bkt/b", "bkt/c"}; !slices.Equal(keys, want) {
		t.Fatalf("took over deletes %q, want %q (problems %q)", keys, want, got.Problems)
	}
	if _, err := os.Stat(dead.Dir()); err == nil {
		t.Errorf("the dead journal %s is still there", dead.Dir())
	}
	// Still undone at this mount's end: its journal stays for the next.
	next.Close()
	again, err := recoverDeletes(next.Dir())
	if err != nil || len(again) != 2 {
		t.Fatalf("the taking-over journal keeps %d deletes (%v), want 2", len(again), err)
	}
}
