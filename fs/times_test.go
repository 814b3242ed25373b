package fs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend/memory"
)

func statTimes(t *testing.T, p string) (atime, mtime, ctime time.Time) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix()), time.Unix(st.Ctim.Unix())
}

// TestDirectoryTimesFollowEntries: creating, removing or renaming an
// entry moves its directory's mtime and ctime as the mount shows them
// (they stayed at the marker's); both directories of a rename move.
func TestDirectoryTimesFollowEntries(t *testing.T) {
	mem := memory.New("b")
	mnt := mountMemory(t, mem, func(c *Config) { c.StatTTL = 0 })
	d, e := filepath.Join(mnt, "d"), filepath.Join(mnt, "e")
	for _, p := range []string{d, e} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		what string
		do   func() error
		dirs []string
	}{
		{"create", func() error { return os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644) }, []string{d}},
		{"mkdir", func() error { return os.Mkdir(filepath.Join(d, "sub"), 0o755) }, []string{d}},
		{"rename", func() error { return os.Rename(filepath.Join(d, "f"), filepath.Join(e, "f")) }, []string{d, e}},
		{"unlink", func() error { return os.Remove(filepath.Join(e, "f")) }, []string{e}},
		{"rmdir", func() error { return os.Remove(filepath.Join(d, "sub")) }, []string{d}},
	}
	for _, s := range steps {
		before := map[string]time.Time{}
		for _, p := range s.dirs {
			_, before[p], _ = statTimes(t, p)
		}
		time.Sleep(10 * time.Millisecond)
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		for _, p := range s.dirs {
			_, mtime, ctime := statTimes(t, p)
			if !mtime.After(before[p]) || ctime.Before(mtime) {
				t.Errorf("%s: %s mtime %v (was %v), ctime %v; want both moved", s.what, filepath.Base(p), mtime, before[p], ctime)
			}
		}
	}
}

// TestReadsMoveAtimeLikeRelatime: a read moves a file's atime when it is
// not later than the mtime and the ctime (relatime), in the mount's view;
// the object is not rewritten for it, and the next change that rewrites
// the object anyway stores it.
func TestReadsMoveAtimeLikeRelatime(t *testing.T) {
	mem := memory.New("b")
	mnt := mountMemory(t, mem, func(c *Config) { c.StatTTL = 0 })
	p := filepath.Join(mnt, "f")
	if err := os.WriteFile(p, []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	atime0, mtime0, _ := statTimes(t, p)
	if atime0.After(mtime0) {
		t.Fatalf("a new file's atime %v is after its mtime %v", atime0, mtime0)
	}
	writes := mem.Requests("put") + mem.Requests("copy") + mem.Requests("upload")
	time.Sleep(10 * time.Millisecond)
	if _, err := os.ReadFile(p); err != nil {
		t.Fatal(err)
	}
	atime1, mtime1, _ := statTimes(t, p)
	if !atime1.After(mtime1) || mtime1 != mtime0 {
		t.Errorf("after a read: atime %v, mtime %v (was %v); want the atime moved past the mtime, the mtime kept", atime1, mtime1, mtime0)
	}
	if _, err := os.ReadFile(p); err != nil {
		t.Fatal(err)
	}
	if atime2, _, _ := statTimes(t, p); atime2 != atime1 {
		t.Errorf("a second read moved the atime from %v to %v; relatime keeps an atime later than mtime and ctime", atime1, atime2)
	}
	if now := mem.Requests("put") + mem.Requests("copy") + mem.Requests("upload"); now != writes {
		t.Errorf("reads wrote the object %d times", now-writes)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	obj, err := mem.Head(t.Context(), "f")
	if err != nil {
		t.Fatal(err)
	}
	if stored, ok := parseMtime(obj.Metadata["atime"]); !ok || !stored.Equal(atime1) {
		t.Errorf("after a chmod the object's atime is %q; want the read's %v", obj.Metadata["atime"], atime1)
	}
}
