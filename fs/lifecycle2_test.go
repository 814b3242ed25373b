package fs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend/memory"
	"github.com/bucketfs/bucketfs/cache"
)

// smallParts makes uploads stream in 1 MiB parts.
func smallParts(mem *memory.Bucket) func(*Config) {
	mem.MinPartSize = 1 << 20
	return func(c *Config) { c.Upload = cache.UploadOptions{PartSize: 1 << 20, Concurrency: 2} }
}

// TestAbortDoesNotBlockStat: a writer that seeks back aborts its stream,
// which waits for the parts in flight; nobody else waits for that.
func TestAbortDoesNotBlockStat(t *testing.T) {
	mem := memory.New("b")
	tweak := smallParts(mem)
	mnt := mountMemory(t, mem, func(c *Config) { tweak(c); c.StatTTL = time.Millisecond })
	p := filepath.Join(mnt, "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	f.Write(chunk)
	mem.SetFault(func(op, key string) error {
		if op == "upload" {
			time.Sleep(2 * time.Second) // a slow part
		}
		return nil
	})
	f.Write(chunk) // the first part is under way, and slow
	time.Sleep(100 * time.Millisecond)
	wrote := make(chan struct{})
	go func() {
		f.WriteAt([]byte("x"), 0) // no longer sequential: the stream is aborted
		close(wrote)
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if _, err := f.Stat(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("stat waited %v for a stream's abort", d)
	}
	<-wrote
	mem.SetFault(nil)
}

// TestTimesAndXattrsOfStreamedFile: a file big enough to stream keeps the
// mtime and xattrs set on it while open, as cp -p and rsync set them.
func TestTimesAndXattrsOfStreamedFile(t *testing.T) {
	mem := memory.New("b")
	mnt := mountMemory(t, mem, smallParts(mem))
	p := filepath.Join(mnt, "big")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for range 3 {
		f.Write(chunk)
	}
	if !waitFor(5*time.Second, func() bool { return mem.Uploads() > 0 }) {
		t.Fatal("no multipart upload started: the test shows nothing")
	}
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 700, time.UTC)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setxattr(p, "user.origin", []byte("cp -p"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	obj, err := mem.Head(t.Context(), "big")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d.%09d", mtime.Unix(), mtime.Nanosecond()); obj.Metadata["mtime"] != want {
		t.Errorf("stored mtime %q, want %q", obj.Metadata["mtime"], want)
	}
	if obj.Metadata["origin"] != "cp -p" {
		t.Errorf("stored metadata %v, want origin", obj.Metadata)
	}
	if obj.Size != 3<<20 {
		t.Errorf("stored %d bytes", obj.Size)
	}
}

// TestReaddirPagesThroughListing: without the cache in front, a bucket
// answers 1,000 keys a page; a listing shows them all.
func TestReaddirPagesThroughListing(t *testing.T) {
	mem := memory.New("b")
	for i := range 2500 {
		put(t, mem, "d/f"+strconv.Itoa(i), nil, nil, "")
	}
	mnt := mountMemory(t, mem, func(c *Config) { c.Bucket = mem })
	if names := readDirNames(t, filepath.Join(mnt, "d")); len(names) != 2500 || !strings.HasPrefix(names[0], "f") {
		t.Errorf("ls lists %d names, want 2500", len(names))
	}
}

// TestCloseDuringShutdownIsJournaled: a file closed after shutdown began
// is complete; it is journaled as pending for the next mount, not left as
// an unfinished write.
func TestCloseDuringShutdownIsJournaled(t *testing.T) {
	mem := memory.New("b")
	stagingDir := t.TempDir()
	staging, err := cache.NewStaging(stagingDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	server, err := Mount(dir, Config{UID: 1000, GID: 1000, FileMode: 0o644, DirMode: 0o755,
		StatTTL: time.Minute, NegativeTTL: time.Second, Logger: testLogger(t), Staging: staging,
		Bucket: cache.NewMeta(mem, cache.MetaOptions{TTL: time.Minute})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("complete")
	server.Drain()
	if err := f.Close(); !errors.Is(err, syscall.EIO) {
		t.Errorf("close during shutdown: %v, want EIO", err)
	}
	entries, _ := filepath.Glob(filepath.Join(stagingDir, "*.entry"))
	if len(entries) != 1 {
		t.Fatalf("journal entries: %q", entries)
	}
	b, _ := os.ReadFile(entries[0])
	if !strings.Contains(string(b), `"state":"pending"`) || !strings.Contains(string(b), `"Key":"f"`) {
		t.Errorf("journal entry %s", b)
	}
	if _, ok := memBody(t, mem, "f"); ok {
		t.Error("uploaded after shutdown began")
	}
}

// TestRenameRacingTheLastRelease: a rename that found a file's local copy
// just before the last release let it go (a close is followed by its
// release asynchronously) failed with EBADF from the flush of the
// dropped copy, and would have put the dropped copy back in the table
// under the new name (found by the two-mount model test). A dropped copy
// has nothing to flush, and moving it moves nothing.
func TestRenameRacingTheLastRelease(t *testing.T) {
	mem := memory.New("b")
	staging, err := cache.NewStaging(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := newFilesystem(Config{Bucket: cache.NewMeta(mem, cache.MetaOptions{TTL: time.Minute}), Staging: staging, FileMode: 0o644})
	l, err := f.newCreated("a", f.newHeaders(0o644, 0, 0, "a"))
	if err != nil {
		t.Fatal(err)
	}
	f.replaceLocal(l)
	if etag, errno := l.flush(t.Context()); errno != 0 || etag == "" {
		t.Fatalf("first flush: %q, %v", etag, errno)
	}
	if last, _ := l.release(); !last || !l.dropIfDone(false) {
		t.Fatal("the released, stored copy was not dropped")
	}
	if _, errno := l.flush(t.Context()); errno != 0 {
		t.Errorf("flush of a dropped copy: %v, want nothing to do", errno)
	}
	l.moved("b", "")
	if got := f.localsUnder(""); len(got) != 0 {
		t.Errorf("the table after moving a dropped copy: %v", got)
	}
}
