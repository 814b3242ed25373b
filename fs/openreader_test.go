package fs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/bucketfs/bucketfs/backend/memory"
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
