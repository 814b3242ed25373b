package fs

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/bucketfs/bucketfs/backend"
)

func memBody(t *testing.T, mem *backend.Memory, key string) (string, bool) {
	t.Helper()
	body, _, err := mem.Get(context.Background(), backend.GetInput{Key: key, Length: -1})
	if err != nil {
		return "", false
	}
	defer body.Close()
	data, _ := io.ReadAll(body)
	return string(data), true
}

// TestLockFileRenames is git's lock-file pattern: create NAME.lock
// exclusively, write, close, rename over NAME, again and again.
func TestLockFileRenames(t *testing.T) {
	mem := backend.NewMemory("b")
	mnt := mountMemory(t, mem, nil)
	dir := filepath.Join(mnt, "lk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		want := fmt.Sprintf("v%d\n", i)
		f, err := os.OpenFile(filepath.Join(dir, "config.lock"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		f.WriteString(want)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "config.lock"), filepath.Join(dir, "config")); err != nil {
			t.Fatal(err)
		}
		if got, _ := memBody(t, mem, "lk/config"); got != want {
			t.Errorf("round %d: S3 has %q", i, got)
		}
		if _, ok := memBody(t, mem, "lk/config.lock"); ok {
			t.Errorf("round %d: the lock file is still in S3", i)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "config")); string(got) != want {
			t.Errorf("round %d: reads %q, %v", i, got, err)
		}
	}
}
