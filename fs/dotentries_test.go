package fs

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bucketfs/bucketfs/backend/memory"
)

// TestListingsShowDotEntries: `ls -a` shows "." and ".." in every
// directory, as on a local filesystem and in s3fs; they were missing.
func TestListingsShowDotEntries(t *testing.T) {
	mem := memory.New("b")
	put(t, mem, "f", []byte("x"), nil, "")
	put(t, mem, "d/g", []byte("y"), nil, "")
	mnt := mountMemory(t, mem, nil)
	for dir, want := range map[string][]string{"": {".", "..", "d", "f"}, "d": {".", "..", "g"}} {
		out, err := exec.Command("ls", "-a", filepath.Join(mnt, dir)).Output()
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Fields(string(out))
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("ls -a %s = %q, want %q", dir, got, want)
		}
	}
	if names := readDirNames(t, mnt); slices.Contains(names, ".") || len(names) != 2 {
		t.Errorf("ReadDir of the root = %q; want d and f (Go leaves the dot entries out)", names)
	}
}
