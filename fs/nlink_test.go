package fs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

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
