package fs

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend/memory"
)

// TestModelWithWriteBack is the model test on a mount with --write-back:
// closes, unlinks and rmdirs return before S3 has them, and every answer
// must still agree with the local directory. Once the uploads and deletes
// are done, a fresh mount of the bucket shows the model's tree.
func TestModelWithWriteBack(t *testing.T) {
	ops, seed := modelOps(), modelSeed(t)
	mem := memory.New("b")
	mem.MinPartSize = 1 << 20
	mnt := mountMemory(t, mem, func(c *Config) {
		c.Logger = slog.New(slog.DiscardHandler)
		c.WriteBack = true
		smallParts(mem)(c)
	})
	local := t.TempDir()
	m := newModel(seed, mnt, local, 3<<20)
	if err := m.run(ops); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	if !waitFor(30*time.Second, func() bool { return pendingXattrOf(t, mnt) == "" }) {
		t.Fatalf("seed %d: still pending after 30 s:\n%s", seed, pendingXattrOf(t, mnt))
	}
	fresh := mountMemory(t, mem, nil)
	if got, want := tree(fresh), tree(local); !slices.Equal(got, want) {
		t.Fatalf("seed %d: a fresh mount after the write-back shows\n%q\nthe model\n%q", seed, got, want)
	}
	t.Logf("%d operations, errors by errno %v, mismatches 0", ops, m.errnos)
}
