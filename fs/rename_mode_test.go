package fs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
)

// TestRenameAfterChmodKeepsMode: the moved file shows what the mount last
// stored, not what an older listing said.
func TestRenameAfterChmodKeepsMode(t *testing.T) {
	for _, listHeaders := range []bool{true, false} {
		mem := memory.New("b")
		mem.ListHeaders = listHeaders
		mnt := mountMemory(t, mem, nil)
		d := filepath.Join(mnt, "d")
		os.Mkdir(d, 0o755)
		if err := os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		readDirNames(t, d)
		for _, e := range mustReadDir(t, d) {
			e.Info() // ls -l
		}
		if err := os.Chmod(filepath.Join(d, "f"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(d, "f"), filepath.Join(d, "g")); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(d, "g"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("listing headers %v: after chmod 600 and mv, stat = %v, %v", listHeaders, st.Mode(), err)
		}
		for _, e := range mustReadDir(t, d) {
			if info, _ := e.Info(); info != nil && info.Mode().Perm() != 0o600 {
				t.Errorf("listing headers %v: ls -l shows %s %v", listHeaders, e.Name(), info.Mode())
			}
		}
	}
}

func mustReadDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestInterruptedDirRenameCompletes: a directory rename stopped by a
// failed copy leaves files in both directories; the same mv again
// finishes it, and no key is left in both places.
func TestInterruptedDirRenameCompletes(t *testing.T) {
	mem := memory.New("b")
	for i := range 40 {
		put(t, mem, fmt.Sprintf("d/f%02d", i), []byte(fmt.Sprint(i)), nil, "")
	}
	mnt := mountMemory(t, mem, nil)
	var copies atomic.Int64
	mem.SetFault(func(op, key string) error {
		if op == "copy" && copies.Add(1) == 20 {
			return backend.ErrUnavailable
		}
		return nil
	})
	src, dst := filepath.Join(mnt, "d"), filepath.Join(mnt, "e")
	if err := os.Rename(src, dst); !errors.Is(err, syscall.EIO) {
		t.Fatalf("rename with a failing copy: %v, want EIO", err)
	}
	mem.SetFault(nil)
	if err := os.Rename(src, dst); err != nil {
		t.Fatalf("repeating the rename: %v", err)
	}
	keys := mem.Keys()
	if len(keys) != 40 {
		t.Errorf("%d keys after the rename: %q", len(keys), keys)
	}
	for i := range 40 {
		if got, _ := memBody(t, mem, fmt.Sprintf("e/f%02d", i)); got != fmt.Sprint(i) {
			t.Errorf("e/f%02d holds %q", i, got)
		}
	}
	if names := readDirNames(t, dst); len(names) != 40 {
		t.Errorf("ls e lists %d names", len(names))
	}
	if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat d after the rename: %v", err)
	}
}

// TestCopiesKeepConditions: a copy inside the mount (copy_file_range) and
// a rename with RENAME_NOREPLACE never replace a file another client
// created meanwhile.
func TestCopiesKeepConditions(t *testing.T) {
	mem := memory.New("b")
	put(t, mem, "src", []byte("source"), nil, "")
	put(t, mem, "moving", []byte("moving"), nil, "")
	mnt := mountMemory(t, mem, nil)
	r, err := os.Open(filepath.Join(mnt, "src"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.Create(filepath.Join(mnt, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	put(t, mem, "dst", []byte("theirs"), nil, "") // another client
	_, err = unix.CopyFileRange(int(r.Fd()), nil, int(w.Fd()), nil, 1<<20, 0)
	if !errors.Is(err, syscall.EEXIST) {
		t.Errorf("copy_file_range onto a key another client created: %v, want EEXIST", err)
	}
	w.Close()
	if got, _ := memBody(t, mem, "dst"); got != "theirs" {
		t.Errorf("dst holds %q: the other client's file was replaced", got)
	}

	os.Stat(filepath.Join(mnt, "taken")) // the mount believes the name is free
	put(t, mem, "taken", []byte("theirs"), nil, "")
	err = unix.Renameat2(unix.AT_FDCWD, filepath.Join(mnt, "moving"), unix.AT_FDCWD, filepath.Join(mnt, "taken"), unix.RENAME_NOREPLACE)
	if !errors.Is(err, syscall.EEXIST) {
		t.Errorf("RENAME_NOREPLACE onto a key another client created: %v, want EEXIST", err)
	}
	if got, _ := memBody(t, mem, "taken"); got != "theirs" {
		t.Errorf("taken holds %q: the other client's file was replaced", got)
	}
}
