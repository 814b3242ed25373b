package fs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend/memory"
	"github.com/bucketfs/bucketfs/cache"
)

// TestDroppedLocalFileMakesNoDirectory: a release lets a file's local
// copy go (dropped) a moment before it leaves the table of local files.
// In that moment it must not make its directory exist: after `mv d e`,
// `mkdir d` got EEXIST (found by TestModelAgainstLocalDir under -race:
// the release of d/y ran while the directory was moved).
func TestDroppedLocalFileMakesNoDirectory(t *testing.T) {
	mem := memory.New("b")
	meta := cache.NewMeta(mem, cache.MetaOptions{TTL: time.Minute})
	server, dir := mountMemoryServer(t, mem, func(c *Config) { c.Bucket = meta })
	f := server.filesystems()[0]
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := os.Create(filepath.Join(dir, "d", "y"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := meta.Delete(t.Context(), "d/"); err != nil { // only the local file holds d now
		t.Fatal(err)
	}
	l := f.localAt("d/y")
	if l == nil {
		t.Fatal("no local file for d/y")
	}
	if has, err := f.hasDir(t.Context(), "d/"); !has || err != nil {
		t.Fatalf("a live local file under d/: hasDir = %v, %v", has, err)
	}
	l.mu.Lock()
	state := l.state
	l.state = stateDropped // as dropIfDone leaves it until it unregisters it
	l.mu.Unlock()
	has, err := f.hasDir(t.Context(), "d/")
	l.mu.Lock()
	l.state = state
	l.mu.Unlock()
	if has || err != nil {
		t.Errorf("only a dropped local file under d/: hasDir = %v, %v; want false", has, err)
	}
}
