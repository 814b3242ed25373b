package fs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend/memory"
	"github.com/bucketfs/bucketfs/cache"
)

// TestStatsFollowTheMount: Mounted.Stats, which the metrics show, counts
// open files and the uploads under way while they are, and none after.
func TestStatsFollowTheMount(t *testing.T) {
	mem := memory.New("b")
	dir := t.TempDir()
	staging, err := cache.NewStaging(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	server, err := Mount(dir, Config{UID: 1000, GID: 1000, FileMode: 0o644, DirMode: 0o755,
		StatTTL: time.Minute, NegativeTTL: 5 * time.Second, Logger: testLogger(t),
		Bucket: cache.NewMeta(mem, cache.MetaOptions{TTL: time.Minute}), Staging: staging})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Unmount() })
	release := make(chan struct{})
	mem.SetFault(func(op, key string) error {
		if op == "put" {
			<-release // the upload stays under way
		}
		return nil
	})
	w, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("data")
	closed := make(chan error)
	go func() { closed <- w.Close() }()
	if !waitFor(5*time.Second, func() bool { s := server.Stats(); return s.OpenFiles == 1 && s.UploadsInFlight == 1 }) {
		t.Errorf("while the upload is under way: %+v, want 1 open file and 1 upload", server.Stats())
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { s := server.Stats(); return s.OpenFiles == 0 && s.UploadsInFlight == 0 }) {
		t.Errorf("after the close: %+v, want nothing open or under way", server.Stats())
	}
}
