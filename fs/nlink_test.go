package fs

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend/memory"
)

// TestUnlinkedOpenFileHasNoLinks: a file removed while a descriptor holds
// it shows nlink 0 through that descriptor, as on a local disk, and stays
// readable and writable through it. It showed nlink 1; and a file opened
// for writing whose object had not been fetched yet lost its content at
// the unlink (its writes and reads then failed with ENOENT).
func TestUnlinkedOpenFileHasNoLinks(t *testing.T) {
	mem := memory.New("b")
	put(t, mem, "kept", []byte("content"), nil, "")
	mnt := mountMemory(t, mem, nil)
	for _, name := range []string{"kept", "new"} {
		p := filepath.Join(mnt, name)
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Nlink != 0 {
			t.Errorf("%s: fstat after unlink: nlink %d, %v; want 0", name, st.Nlink, err)
		}
		if _, err := f.WriteAt([]byte("more"), 7); err != nil {
			t.Errorf("%s: write after unlink: %v", name, err)
		}
		buf := make([]byte, 4)
		if _, err := f.ReadAt(buf, 7); err != nil || string(buf) != "more" {
			t.Errorf("%s: read after unlink = %q, %v", name, buf, err)
		}
	}
}

// TestUnlinkDuringUploadLeavesNoObject: `: > f; rm f` where the close's
// upload is still on its way when the unlink comes. The delete went out
// first and the upload after it, so the removed file came back in S3.
// The unlink now waits for the upload under way, then deletes.
func TestUnlinkDuringUploadLeavesNoObject(t *testing.T) {
	mem := memory.New("b")
	mnt := mountMemory(t, mem, nil)
	p := filepath.Join(mnt, "f")
	gate := make(chan struct{})
	var held atomic.Bool
	mem.SetFault(func(op, key string) error {
		if op == "put" && key == "f" && held.CompareAndSwap(false, true) {
			<-gate
		}
		return nil
	})
	f, err := os.Create(p) // created, never written: its release uploads it
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for deadline := time.Now().Add(5 * time.Second); !held.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the release's upload never started")
		}
	}
	removed := make(chan error, 1)
	go func() { removed <- os.Remove(p) }()
	time.Sleep(100 * time.Millisecond)
	close(gate)
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // any upload left has landed
	if _, err := mem.Head(t.Context(), "f"); err == nil {
		t.Error("the removed file is in S3: its upload landed after the delete")
	}
}
