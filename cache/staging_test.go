package cache

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func newTestStaged(t *testing.T, key string) (*Staging, *StagedFile) {
	t.Helper()
	s, err := NewStaging(filepath.Join(t.TempDir(), "mount-1"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Remove() })
	return s, f
}

// stagedBytes reads the whole staged file through ReadAt.
func stagedBytes(t *testing.T, f *StagedFile) []byte {
	t.Helper()
	got := make([]byte, f.Size())
	if n, err := f.ReadAt(got, 0); err != nil && !(err == io.EOF && n == len(got)) {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	return got
}

func TestStagedFileEdits(t *testing.T) {
	type edit struct {
		off  int64
		data string // written at off; "" truncates to off instead
	}
	tests := []struct {
		name      string
		edits     []edit
		want      string
		wantDirty bool
		wantSeq   int64 // -1: not sequential
	}{
		{"untouched", nil, "", false, 0},
		{"appends", []edit{{0, "abc"}, {3, "def"}}, "abcdef", true, 6},
		{"sparse write leaves zeros", []edit{{5, "xy"}}, "\x00\x00\x00\x00\x00xy", true, -1},
		{"overwrite", []edit{{0, "abc"}, {1, "X"}}, "aXc", true, -1},
		{"rewrite from zero", []edit{{0, "abc"}, {0, "abc"}}, "abc", true, -1},
		{"truncate shrinks", []edit{{0, "abcdef"}, {3, ""}}, "abc", true, -1},
		{"truncate grows with zeros", []edit{{0, "ab"}, {4, ""}}, "ab\x00\x00", true, -1},
		{"truncate to same size (O_TRUNC)", []edit{{0, ""}, {0, "ab"}}, "ab", true, 2},
		{"hole then fill", []edit{{0, "ab"}, {4, "ef"}, {2, "cd"}}, "abcdef", true, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, f := newTestStaged(t, "dir/file")
			for _, e := range tt.edits {
				if e.data == "" {
					if err := f.Truncate(e.off); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if n, err := f.WriteAt([]byte(e.data), e.off); n != len(e.data) || err != nil {
					t.Fatalf("WriteAt: %d, %v", n, err)
				}
			}
			if got := stagedBytes(t, f); string(got) != tt.want {
				t.Errorf("content = %q, want %q", got, tt.want)
			}
			if f.Size() != int64(len(tt.want)) {
				t.Errorf("Size = %d, want %d", f.Size(), len(tt.want))
			}
			if fi, err := os.Stat(f.Path()); err != nil || fi.Size() != f.Size() {
				t.Errorf("on disk: %v, %v; want size %d", fi, err, f.Size())
			}
			if f.Dirty() != tt.wantDirty {
				t.Errorf("Dirty = %v, want %v", f.Dirty(), tt.wantDirty)
			}
			end, ok := f.Sequential()
			if ok != (tt.wantSeq >= 0) || ok && end != tt.wantSeq {
				t.Errorf("Sequential = %d, %v, want %d", end, ok, tt.wantSeq)
			}
		})
	}
}

func TestStagedFileReadAtEOF(t *testing.T) {
	_, f := newTestStaged(t, "k")
	f.WriteAt([]byte("hello"), 0)
	p := make([]byte, 4)
	if n, err := f.ReadAt(p, 3); n != 2 || err != io.EOF || string(p[:n]) != "lo" {
		t.Errorf("ReadAt across the end = %d %q, %v; want 2 \"lo\", EOF", n, p[:n], err)
	}
	if n, err := f.ReadAt(p, 10); n != 0 || err != io.EOF {
		t.Errorf("ReadAt past the end = %d, %v; want 0, EOF", n, err)
	}
}

func TestStagedFileFill(t *testing.T) {
	_, f := newTestStaged(t, "k")
	if err := f.Fill(strings.NewReader("existing")); err != nil {
		t.Fatal(err)
	}
	if f.Dirty() || f.Size() != 8 || string(stagedBytes(t, f)) != "existing" {
		t.Fatalf("after Fill: dirty %v size %d %q", f.Dirty(), f.Size(), stagedBytes(t, f))
	}
	if end, ok := f.Sequential(); !ok || end != 8 {
		t.Errorf("Sequential after Fill = %d, %v; want 8, true", end, ok)
	}
	f.WriteAt([]byte("+"), 8) // an append to the existing object still streams
	if end, ok := f.Sequential(); !ok || end != 9 || !f.Dirty() {
		t.Errorf("after append: Sequential = %d, %v, Dirty %v", end, ok, f.Dirty())
	}
	if err := f.Fill(strings.NewReader("other")); err == nil {
		t.Error("Fill over local changes succeeded")
	}

	_, g := newTestStaged(t, "k2")
	broken := io.MultiReader(strings.NewReader("half"), iotestErrReader{})
	if err := g.Fill(broken); err == nil {
		t.Fatal("Fill from a failing reader succeeded")
	}
	if g.Size() != 0 || len(stagedBytes(t, g)) != 0 || g.Dirty() {
		t.Errorf("after failed Fill: size %d, dirty %v; want empty and clean", g.Size(), g.Dirty())
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestStagedFileMarkClean(t *testing.T) {
	_, f := newTestStaged(t, "k")
	f.WriteAt([]byte("v1"), 0)
	v := f.Version()
	f.WriteAt([]byte("v2"), 0) // written while v was uploading
	if f.MarkClean(v) || !f.Dirty() {
		t.Error("MarkClean of a stale version cleared Dirty")
	}
	if !f.MarkClean(f.Version()) || f.Dirty() {
		t.Error("MarkClean of the current version left the file dirty")
	}
}

func TestStagingCreateAndRemove(t *testing.T) {
	// A key no file name could hold: too long, with slashes and odd bytes.
	key := strings.Repeat("a/b\n\x00é ", 300)
	s, f := newTestStaged(t, key)
	if fi, err := os.Stat(s.Dir()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("staging dir: %v, %v; want mode 0700", fi, err)
	}
	if f.Key() != key || filepath.Dir(f.Path()) != s.Dir() {
		t.Errorf("Key/Path = %q, %q", f.Key(), f.Path())
	}
	if e, err := readEntry(f.Path() + entrySuffix); err != nil || e.Put.Key != key || e.State != EntryOpen {
		t.Errorf("journal entry = %+v, %v", e, err)
	}
	g, err := s.Create(key) // the same key twice gets two files
	if err != nil || g.Path() == f.Path() {
		t.Fatalf("second Create: %v, path %s", err, g.Path())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.Path()); err != nil {
		t.Errorf("Close removed the staged data: %v", err)
	}
	for range 2 {
		if err := f.Remove(); err != nil {
			t.Fatal(err)
		}
	}
	g.Remove()
	if left, _ := os.ReadDir(s.Dir()); len(left) != 0 {
		t.Errorf("left after Remove: %v", left)
	}
}

func TestStagedFileConcurrentWriters(t *testing.T) {
	_, f := newTestStaged(t, "k")
	const writers, blocks, block = 8, 64, 4096
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			p := bytes.Repeat([]byte{byte('A' + w)}, block)
			for i := range blocks {
				if _, err := f.WriteAt(p, int64((i*writers+w)*block)); err != nil {
					t.Error(err)
				}
				f.ReadAt(make([]byte, block), int64(i*block)) // readers run alongside
				f.Size()
			}
		})
	}
	wg.Wait()
	got := stagedBytes(t, f)
	if len(got) != writers*blocks*block {
		t.Fatalf("size %d, want %d", len(got), writers*blocks*block)
	}
	for i := 0; i < len(got); i += block {
		want := byte('A' + (i/block)%writers)
		if !bytes.Equal(got[i:i+block], bytes.Repeat([]byte{want}, block)) {
			t.Fatalf("block at %d is not all %q", i, want)
		}
	}
}

// TestStagedFileENOSPC fills a 1 MiB tmpfs. It needs root and mount(8), and
// skips without them.
func TestStagedFileENOSPC(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	s, err := NewStaging(filepath.Join(dir, "mount-1"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Create("big")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Remove() // before the unmount
	p := bytes.Repeat([]byte{'x'}, 256<<10)
	var off int64
	for off = 0; off < 4<<20; off += int64(len(p)) {
		n, err := f.WriteAt(p, off)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("error %v does not wrap ENOSPC", err)
			}
			if f.Size() != off+int64(n) {
				t.Errorf("Size = %d after a short write of %d at %d", f.Size(), n, off)
			}
			return
		}
	}
	t.Fatal("4 MiB fit in a 1 MiB tmpfs")
}

// TestStagedFileStored checks that the pages of stored bytes leave memory
// past the writeback threshold, while the bytes stay on disk.
func TestStagedFileStored(t *testing.T) {
	_, f := newTestStaged(t, "k")
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(f.Path()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		t.Skip("tmpfs pages cannot leave memory")
	}
	data := bytes.Repeat([]byte("stored!!"), 1<<20) // 8 MiB
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	resident := func() int {
		mem, err := unix.Mmap(int(f.file.Fd()), 0, len(data), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(mem)
		vec := make([]byte, (len(data)+os.Getpagesize()-1)/os.Getpagesize())
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)),
			uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			t.Fatal(errno)
		}
		n := 0
		for _, v := range vec {
			n += int(v & 1)
		}
		return n
	}
	if resident() == 0 {
		t.Fatal("no page of a fresh write is in memory")
	}
	// A file below the kernel's writeback threshold keeps its pages.
	f.writeBehind = int64(len(data))
	f.Stored(0, int64(len(data)))
	if resident() == 0 {
		t.Error("a small file's pages left memory")
	}
	// Past it, stored pages leave: here the second half.
	half := len(data) / 2
	f.writeBehind = int64(half)
	f.Stored(0, int64(len(data)))
	if n := resident(); n == 0 || n > half/os.Getpagesize() {
		t.Errorf("%d pages in memory after Stored, want those of the first half only", n)
	}
	if !bytes.Equal(stagedBytes(t, f), data) {
		t.Error("the staged bytes changed")
	}
}

// TestStagedFileReadsBesideWriter checks that a read does not wait for the
// file's lock: a streaming upload reads while the writer holds it.
func TestStagedFileReadsBesideWriter(t *testing.T) {
	_, f := newTestStaged(t, "k")
	f.WriteAt([]byte("final"), 0)
	f.mu.Lock()
	defer f.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := f.ReadAt(make([]byte, 5), 0)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadAt waited for the writer's lock")
	}
}
