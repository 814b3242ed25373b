package fs

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend/memory"
	"github.com/bucketfs/bucketfs/cache"
)

// TestOpenReaderFollowsOwnChanges: a descriptor held open for reading
// must not hide what this mount changes afterwards. The kernel does not
// say whether a getattr comes from stat(path) or fstat(fd), so the FUSE
// library answers stat(path) with any open handle; a handle showing the
// version it opened made stat show the mode before a chmod and the size
// before a write (found by the model test). Reads through the held
// descriptor go on as on a local disk: the same bytes after a chmod,
// the new ones after a write.
func TestOpenReaderFollowsOwnChanges(t *testing.T) {
	mem := memory.New("b")
	put(t, mem, "f", []byte("old content"), nil, "")
	mnt := mountMemory(t, mem, nil)
	p := filepath.Join(mnt, "f")
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 64)
	if n, err := r.ReadAt(buf, 0); string(buf[:n]) != "old content" {
		t.Fatalf("first read = %q, %v", buf[:n], err)
	}

	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("stat after chmod with a reader open: %v, %v; want -rw-------", st.Mode(), err)
	}
	if st, err := r.Stat(); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("fstat of the reader after chmod: %v, %v; want -rw-------", st.Mode(), err)
	}
	if n, err := r.ReadAt(buf, 4); string(buf[:n]) != "content" {
		t.Errorf("read after chmod = %q, %v; want the same bytes", buf[:n], err)
	}

	longer := bytes.Repeat([]byte("new "), 1000)
	if err := os.WriteFile(p, longer, 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Size() != int64(len(longer)) {
		t.Errorf("stat after a write with a reader open: size %d, %v; want %d", st.Size(), err, len(longer))
	}
	if n, err := r.ReadAt(buf, 0); !bytes.Equal(buf[:n], longer[:len(buf)]) {
		t.Errorf("read after another descriptor's write = %q, %v; want the new bytes", buf[:n], err)
	}
}

// TestOpenReaderFollowsRename: a file renamed while a descriptor reads it
// goes on reading, past what was read ahead, as on a local disk (the old
// key is gone after the rename).
func TestOpenReaderFollowsRename(t *testing.T) {
	mem := memory.New("b")
	body := make([]byte, 24<<20)
	for i := range body {
		body[i] = byte(i / 4096)
	}
	put(t, mem, "d/f", body, nil, "")
	mnt := mountMemory(t, mem, nil)
	r, err := os.Open(filepath.Join(mnt, "d/f"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 4096)
	if _, err := r.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(mnt, "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(mnt, "d/f"), filepath.Join(mnt, "e/g")); err != nil {
		t.Fatal(err)
	}
	off := int64(20 << 20)
	if n, err := r.ReadAt(buf, off); err != nil || !bytes.Equal(buf[:n], body[off:off+4096]) {
		t.Errorf("read after rename at %d: %d bytes, %v", off, n, err)
	}
	if err := os.Rename(filepath.Join(mnt, "e"), filepath.Join(mnt, "e2")); err != nil {
		t.Fatal(err)
	}
	off = int64(10 << 20)
	if n, err := r.ReadAt(buf, off); err != nil || !bytes.Equal(buf[:n], body[off:off+4096]) {
		t.Errorf("read after renaming its directory at %d: %d bytes, %v", off, n, err)
	}
}

// readerOfReplaced mounts a bucket holding old at "f" with short TTLs,
// opens f, reads its first 4 KiB and lets the read-ahead take the rest;
// then another client replaces it with replacement and the TTLs pass. It
// returns the path, the open reader and what it read.
func readerOfReplaced(t *testing.T, old, replacement []byte) (string, *os.File, []byte) {
	t.Helper()
	mem := memory.New("b")
	put(t, mem, "f", old, nil, "")
	mnt := mountMemory(t, mem, func(c *Config) { c.StatTTL, c.NegativeTTL = 50*time.Millisecond, 50*time.Millisecond })
	p := filepath.Join(mnt, "f")
	r, head := openAndReadHead(t, p)
	time.Sleep(50 * time.Millisecond)
	put(t, mem, "f", replacement, nil, "")
	time.Sleep(60 * time.Millisecond)
	return p, r, head
}

func pattern(size int, seed byte) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = seed + byte(i/1000)
	}
	return b
}

// TestReplacedWhileOpenIsANewNode: another client replaces a file that a
// descriptor is reading. The kernel keeps one size and one page cache per
// node; when a lookup reported the new, shorter version on the reader's
// node, the reader's reads stopped at the new size (a longer version
// padded them with zeros), found by the two-mount model test. Both the
// old reader and a new one must read one whole version each.
func TestReplacedWhileOpenIsANewNode(t *testing.T) {
	old, replacement := pattern(300_000, 'a'), pattern(100_000, 'A')
	p, r, head := readerOfReplaced(t, old, replacement)
	if st, err := os.Stat(p); err != nil || st.Size() != int64(len(replacement)) {
		t.Errorf("stat after the replacement: %v, %v; want size %d", st.Size(), err, len(replacement))
	}
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, replacement) {
		t.Errorf("a new reader: %d bytes, %v; want the replacement's %d", len(got), err, len(replacement))
	}
	rest, err := io.ReadAll(r)
	if got := append(head, rest...); !bytes.Equal(got, old) {
		t.Errorf("the old reader: %d bytes, %v; want the old version's %d, whole", len(got), err, len(old))
	}
}

// TestChmodOfAReplacedFileDoesNotMoveReaders: a chmod copies the version
// S3 has now. A reader that opened the version before it must not move to
// that copy (the first cut of readers following this mount's changes did:
// it mixed two versions in one read, found by the two-mount model test).
func TestChmodOfAReplacedFileDoesNotMoveReaders(t *testing.T) {
	old := pattern(300_000, 'a')
	p, r, head := readerOfReplaced(t, old, pattern(400_000, 'A'))
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	got := append(head, rest...)
	if err == nil && !bytes.Equal(got, old) || err != nil && !bytes.Equal(got, old[:len(got)]) {
		t.Errorf("the old reader after a chmod of the new version: %d bytes, %v; want the old version (or ESTALE), never the new one's bytes", len(got), err)
	}
}

// readerOfKnownReplaced is readerOfReplaced with long TTLs: the mount
// learns of the replacement (its cache forgets the old version) while the
// kernel's entry for the name, and so the reader's node, stays.
func readerOfKnownReplaced(t *testing.T, old, replacement []byte) (string, *os.File, []byte) {
	t.Helper()
	mem := memory.New("b")
	put(t, mem, "f", old, nil, "")
	meta := cache.NewMeta(mem, cache.MetaOptions{TTL: time.Minute, NegativeTTL: time.Minute})
	mnt := mountMemory(t, mem, func(c *Config) { c.Bucket = meta })
	p := filepath.Join(mnt, "f")
	r, head := openAndReadHead(t, p)
	time.Sleep(50 * time.Millisecond) // the read-ahead holds the rest
	put(t, mem, "f", replacement, nil, "")
	meta.Forget("f")
	return p, r, head
}

// TestChmodWhileAReaderHoldsAReplacedVersion: the kernel still takes the
// name for the reader's node (its entry has not expired) when the mount
// learns that another client replaced the object. A chmod of the path
// then changed the new version and reported its size on the reader's
// node, which cut the reader short (found by the two-mount model test).
// It must apply to the new version, on a node of its own, and leave the
// reader reading its version whole.
func TestChmodWhileAReaderHoldsAReplacedVersion(t *testing.T) {
	old, replacement := pattern(300_000, 'a'), pattern(100_000, 'A')
	p, r, head := readerOfKnownReplaced(t, old, replacement)
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatalf("chmod: %v", err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 || st.Size() != int64(len(replacement)) {
		t.Errorf("stat after the chmod: %v, %v", st, err)
	}
	rest, err := io.ReadAll(r)
	if got := append(head, rest...); !bytes.Equal(got, old) {
		t.Errorf("the reader after a chmod of the new version: %d bytes, %v; want the old version's %d, whole", len(got), err, len(old))
	}
}

// TestUnlinkWhileAReaderHoldsAReplacedVersion: rm of a file that a
// descriptor reads keeps a local copy for it, but the copy was made of
// what S3 had then, another client's newer version, and the reader went
// on with that version's bytes, cut to its size (found by the two-mount
// model test). The reader must go on with its own version or fail, never
// read another's.
func TestUnlinkWhileAReaderHoldsAReplacedVersion(t *testing.T) {
	old, replacement := pattern(300_000, 'a'), pattern(100_000, 'A')
	p, r, head := readerOfKnownReplaced(t, old, replacement)
	if err := os.Remove(p); err != nil {
		t.Fatalf("rm: %v", err)
	}
	rest, err := io.ReadAll(r)
	got := append(head, rest...)
	if err == nil && !bytes.Equal(got, old) || err != nil && !bytes.Equal(got, old[:min(len(got), len(old))]) {
		t.Errorf("the reader after rm: %d bytes, %v; want its own version (%d bytes) or an error, never another's", len(got), err, len(old))
	}
}

// openAndReadHead opens p for the rest of the test and reads its first
// 4 KiB.
func openAndReadHead(t *testing.T, p string) (*os.File, []byte) {
	t.Helper()
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	head := make([]byte, 4096)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	return r, head
}

// readerOfLocalCopy mounts an empty bucket with short TTLs, starts
// writing ours to "f" through a write-only descriptor and opens a reader
// while it is open: the reader reads the local copy.
func readerOfLocalCopy(t *testing.T, ours []byte) (mem *memory.Bucket, w, r *os.File, stagingDir string) {
	t.Helper()
	mem = memory.New("b")
	stagingDir = t.TempDir()
	mnt := mountMemory(t, mem, func(c *Config) {
		c.StatTTL, c.NegativeTTL = 50*time.Millisecond, 50*time.Millisecond
		c.Staging, _ = cache.NewStaging(stagingDir)
	})
	p := filepath.Join(mnt, "f")
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Write(ours); err != nil {
		t.Fatal(err)
	}
	r, head := openAndReadHead(t, p)
	if !bytes.Equal(head, ours[:len(head)]) {
		t.Fatal("the reader's first read is not the writer's data")
	}
	return mem, w, r, stagingDir
}

// readsOursOrESTALE checks a read of r far past what the kernel read
// ahead: our bytes or ESTALE, never another version's.
func readsOursOrESTALE(t *testing.T, r *os.File, ours []byte) {
	t.Helper()
	off := int64(20 << 20)
	buf := make([]byte, 4096)
	n, err := r.ReadAt(buf, off)
	if err == nil && !bytes.Equal(buf[:n], ours[off:off+4096]) {
		t.Errorf("read at %d after another client replaced the file: %d bytes of another version; want ours or ESTALE", off, n)
	}
	if err != nil && !errors.Is(err, syscall.ESTALE) {
		t.Errorf("read at %d: %v; want ours or ESTALE", off, err)
	}
}

// TestReaderOfALocalCopyKeepsItsVersion: a descriptor opened for reading
// while a writer held the file reads the local copy; once the writer
// closed (stored) and the copy was let go, it must go on with the version
// the copy became in S3, never with whatever S3 has by then. It read
// another client's version from where it was (a mixed or, on a shorter
// version, truncated read, found by the two-mount model test).
func TestReaderOfALocalCopyKeepsItsVersion(t *testing.T) {
	ours, theirs := pattern(24<<20, 'a'), pattern(24<<20, 'A')
	mem, w, r, stagingDir := readerOfLocalCopy(t, ours)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	waitNoStagedFiles(t, stagingDir)
	put(t, mem, "f", theirs, nil, "")
	time.Sleep(60 * time.Millisecond)
	readsOursOrESTALE(t, r, ours)
}

// TestReaderOfAConflictCopyGetsESTALE: the same reader, when another
// client's version wins the writer's upload (the copy is set aside), must
// not read on in that version.
func TestReaderOfAConflictCopyGetsESTALE(t *testing.T) {
	ours, theirs := pattern(24<<20, 'a'), pattern(24<<20, 'A')
	mem, w, r, _ := readerOfLocalCopy(t, ours)
	put(t, mem, "f", theirs, nil, "")
	if err := w.Close(); !errors.Is(err, syscall.EEXIST) && !errors.Is(err, syscall.ESTALE) {
		t.Fatalf("close after another client created the file: %v; want EEXIST or ESTALE", err)
	}
	time.Sleep(60 * time.Millisecond)
	readsOursOrESTALE(t, r, ours)
}

// waitNoStagedFiles waits until the staging directory holds no staged
// data: the mount let its local copies go.
func waitNoStagedFiles(t *testing.T, dir string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		files := 0
		filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files++
			}
			return nil
		})
		if files == 0 {
			return
		}
	}
	t.Fatal("the local copy is still staged after 5s")
}
