package fs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bucketfs/bucketfs/backend"
)

// TestRenameAfterChmodKeepsMode: the moved file shows what the mount last
// stored, not what an older listing said.
func TestRenameAfterChmodKeepsMode(t *testing.T) {
	for _, listHeaders := range []bool{true, false} {
		mem := backend.NewMemory("b")
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
