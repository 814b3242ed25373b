package fs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend/memory"
)

// TestStatsFollowTheMount: Mounted.Stats, which the metrics show, counts
// open files and the uploads under way while they are, and none after.
func TestStatsFollowTheMount(t *testing.T) {
	mem := memory.New("b")
	server, dir := mountMemoryServer(t, mem, nil)
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
