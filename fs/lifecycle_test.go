package fs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
)

// errDown is the fault of a server that does not answer.
var errDown = backend.ErrUnavailable

// failWrites makes every upload of mem fail until the returned func is
// called.
func failWrites(mem *memory.Bucket) (restore func()) {
	mem.SetFault(func(op, key string) error {
		if op == "put" || op == "upload" || op == "copy" {
			return errDown
		}
		return nil
	})
	return func() { mem.SetFault(nil) }
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		} else if time.Now().After(deadline) {
			return false
		}
	}
}

// TestFailedUploadIsRetried: a close that fails with EIO leaves the file
// pending; it stays listed and readable, and is stored once the server
// takes uploads again, with nobody touching it.
func TestFailedUploadIsRetried(t *testing.T) {
	mem := memory.New("b")
	mnt := mountMemory(t, mem, nil)
	restore := failWrites(mem)
	p := filepath.Join(mnt, "f")
	err := os.WriteFile(p, []byte("precious"), 0o644)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("write while the server is down: %v, want EIO", err)
	}
	// A shell redirection ignores close()'s error: the data must not depend on it.
	if out, err := exec.Command("bash", "-c", "printf also > "+filepath.Join(mnt, "g")).CombinedOutput(); err != nil {
		t.Fatalf("redirection: %v %s", err, out)
	}
	time.Sleep(100 * time.Millisecond) // the releases
	if names := readDirNames(t, mnt); !slices.Equal(names, []string{"f", "g"}) {
		t.Errorf("ls while pending = %q, want both files", names)
	}
	if got, err := os.ReadFile(p); string(got) != "precious" {
		t.Errorf("read while pending = %q, %v", got, err)
	}
	if st, err := os.Stat(p); err != nil || st.Size() != 8 {
		t.Errorf("stat while pending: %v, %v", st, err)
	}
	restore()
	if !waitFor(15*time.Second, func() bool {
		f, _ := memBody(t, mem, "f")
		g, _ := memBody(t, mem, "g")
		return f == "precious" && g == "also"
	}) {
		f, _ := memBody(t, mem, "f")
		g, _ := memBody(t, mem, "g")
		t.Fatalf("after the server came back S3 has f=%q g=%q", f, g)
	}
}

// TestRedirectionStoresOnce: bash closes a duplicate of the descriptor
// before writing; that flush must not store an empty object first.
func TestRedirectionStoresOnce(t *testing.T) {
	mem := memory.New("b")
	mnt := mountMemory(t, mem, nil)
	before := mem.Requests("put")
	if out, err := exec.Command("bash", "-c", "printf x > "+filepath.Join(mnt, "f")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if got, _ := memBody(t, mem, "f"); got != "x" {
		t.Errorf("S3 has %q", got)
	}
	time.Sleep(100 * time.Millisecond)
	if n := mem.Requests("put") - before; n != 1 {
		t.Errorf("printf x > f sent %d PUTs, want 1", n)
	}
	// touch and `: > f` store the empty file all the same.
	sh := func(line string) {
		if out, err := exec.Command("bash", "-c", line).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", line, err, out)
		}
	}
	sh("touch " + filepath.Join(mnt, "new"))
	sh(": > " + filepath.Join(mnt, "f"))
	if !waitFor(5*time.Second, func() bool {
		n, ok := memBody(t, mem, "new")
		f, _ := memBody(t, mem, "f")
		return ok && n == "" && f == ""
	}) {
		n, ok := memBody(t, mem, "new")
		f, _ := memBody(t, mem, "f")
		t.Errorf("after touch and : > f, S3 has new=%q (%v), f=%q", n, ok, f)
	}
}

// TestUnlinkedOpenFileStaysReadable: POSIX keeps an unlinked file's data
// for the descriptors open on it.
func TestUnlinkedOpenFileStaysReadable(t *testing.T) {
	mem := memory.New("b")
	put(t, mem, "f", []byte("still here"), nil, "")
	mnt := mountMemory(t, mem, nil)
	p := filepath.Join(mnt, "f")
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, ok := memBody(t, mem, "f"); ok {
		t.Error("the object is still in S3 after rm")
	}
	buf := make([]byte, 64)
	n, err := r.ReadAt(buf, 0)
	if string(buf[:n]) != "still here" {
		t.Errorf("read after unlink = %q, %v", buf[:n], err)
	}
}

// TestFailedUnlinkKeepsWrites: a delete the server refuses leaves the file
// in place, and its writer's close still stores what it wrote.
func TestFailedUnlinkKeepsWrites(t *testing.T) {
	mem := memory.New("b")
	mnt := mountMemory(t, mem, nil)
	p := filepath.Join(mnt, "f")
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("kept")
	mem.SetFault(func(op, key string) error {
		if op == "delete" {
			return backend.ErrAccessDenied
		}
		return nil
	})
	if err := os.Remove(p); !errors.Is(err, syscall.EACCES) {
		t.Errorf("rm refused by the server: %v, want EACCES", err)
	}
	mem.SetFault(nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := memBody(t, mem, "f"); got != "kept" {
		t.Errorf("after a refused rm and close, S3 has %q", got)
	}
}

// TestConflictDoesNotStick: after a save refused because another client
// changed the object, the file shows what S3 has and can be saved again.
func TestConflictDoesNotStick(t *testing.T) {
	mem := memory.New("b")
	put(t, mem, "f", []byte("one"), nil, "")
	mnt := mountMemory(t, mem, nil)
	p := filepath.Join(mnt, "f")
	w, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteAt([]byte("mine!"), 0)
	put(t, mem, "f", []byte("theirs, longer"), nil, "") // another client
	if err := w.Close(); !errors.Is(err, syscall.ESTALE) {
		t.Fatalf("close after another client's change: %v, want ESTALE", err)
	}
	if got, _ := memBody(t, mem, "f"); got != "theirs, longer" {
		t.Fatalf("S3 has %q: the other client's version was overwritten", got)
	}
	time.Sleep(100 * time.Millisecond)
	if got, err := os.ReadFile(p); string(got) != "theirs, longer" {
		t.Errorf("after the conflict the file reads %q, %v; want S3's version", got, err)
	}
	if err := os.WriteFile(p, []byte("saved again"), 0o644); err != nil {
		t.Errorf("a later save: %v", err)
	}
	if got, _ := memBody(t, mem, "f"); got != "saved again" {
		t.Errorf("after a later save S3 has %q", got)
	}
}

// TestPendingRetriedAfterRelease: a file whose uploads failed while it was
// open (fsync, then close) is retried once released, although the retrier
// looked at it while it was still open.
func TestPendingRetriedAfterRelease(t *testing.T) {
	mem := memory.New("b")
	mnt := mountMemory(t, mem, nil)
	restore := failWrites(mem)
	f, err := os.Create(filepath.Join(mnt, "f"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("kept open while failing")
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync while the server is down: %v, want EIO", err)
	}
	time.Sleep(300 * time.Millisecond) // the retrier looks, and leaves the open file alone
	if err := f.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("close while the server is down: %v, want EIO", err)
	}
	time.Sleep(300 * time.Millisecond)
	restore()
	if !waitFor(10*time.Second, func() bool { got, _ := memBody(t, mem, "f"); return got == "kept open while failing" }) {
		t.Fatal("not stored after its release")
	}
}
