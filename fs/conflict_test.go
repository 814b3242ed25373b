package fs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
	"github.com/bucketfs/bucketfs/cache"
)

// lostReply stores a Put, then answers as S3 does to the SDK's retry of a
// request whose first reply was lost: the retry finds the object there,
// and a conditional Put fails its condition.
type lostReply struct{ *memory.Bucket }

func (b lostReply) Put(ctx context.Context, in backend.PutInput) (backend.Object, error) {
	if _, err := b.Bucket.Put(ctx, in); err != nil {
		return backend.Object{}, err
	}
	in.Body, in.Size = strings.NewReader(""), 0
	return b.Bucket.Put(ctx, in) // the retry
}

// TestOwnRetryIsNoConflict: a 412 caused by the SDK retrying our own
// conditional write is success, not EEXIST.
func TestOwnRetryIsNoConflict(t *testing.T) {
	mem := memory.New("b")
	mnt := mountMemory(t, mem, func(c *Config) {
		c.Bucket = cache.NewMeta(lostReply{mem}, cache.MetaOptions{TTL: time.Minute, NegativeTTL: time.Second})
	})
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("mine"), 0o644); err != nil {
		t.Errorf("close after a retried create: %v, want success", err)
	}
	if got, _ := memBody(t, mem, "f"); got != "mine" {
		t.Errorf("S3 has %q", got)
	}
}

// TestDirRenameMovesOpenFilesBase: a file open for writing under a
// renamed directory is saved to its new key, over the moved copy (whose
// ETag differs from the original's), without a false ESTALE.
func TestDirRenameMovesOpenFilesBase(t *testing.T) {
	mem := memory.New("b")
	mem.MinPartSize = 1
	ctx := t.Context()
	id, _ := mem.StartUpload(ctx, backend.PutInput{Key: "d/f"})
	var parts []backend.Part
	for i, body := range []string{"multi", "part"} {
		etag, err := mem.UploadPart(ctx, backend.PartInput{Key: "d/f", UploadID: id, Number: i + 1, Body: strings.NewReader(body), Size: int64(len(body))})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, backend.Part{Number: i + 1, ETag: etag})
	}
	if _, err := mem.CompleteUpload(ctx, backend.CompleteInput{Key: "d/f", UploadID: id, Parts: parts}); err != nil {
		t.Fatal(err)
	}
	mnt := mountMemory(t, mem, nil)
	w, err := os.OpenFile(filepath.Join(mnt, "d", "f"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteAt([]byte("MULTI"), 0)
	if err := os.Rename(filepath.Join(mnt, "d"), filepath.Join(mnt, "e")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("close after the directory moved: %v", err)
	}
	if got, _ := memBody(t, mem, "e/f"); got != "MULTIpart" {
		t.Errorf("e/f holds %q", got)
	}
	if _, ok := memBody(t, mem, "d/f"); ok {
		t.Error("d/f is back")
	}
}
