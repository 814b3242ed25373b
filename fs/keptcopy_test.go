package fs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
	"github.com/bucketfs/bucketfs/cache"
)

// slowCloseBucket answers GETs whose body takes delay to close: a reader
// has every byte of a range while its fetch is still finishing.
type slowCloseBucket struct {
	backend.Bucket
	delay time.Duration
}

func (b slowCloseBucket) Get(ctx context.Context, in backend.GetInput) (io.ReadCloser, backend.Object, error) {
	body, obj, err := b.Bucket.Get(ctx, in)
	if err == nil {
		body = slowClose{body, b.delay}
	}
	return body, obj, err
}

type slowClose struct {
	io.ReadCloser
	delay time.Duration
}

func (s slowClose) Close() error {
	time.Sleep(s.delay)
	return s.ReadCloser.Close()
}

// TestUnmountKeepsWhatReadersFetched: a file read to its end just before
// the mount ends must be kept whole by --cache-size, also when the
// kernel's release of its descriptor does not reach the mount before the
// end. The data cache saved the copy while the last fetches, their bytes
// already read, were still on their way into it, and the next mount
// fetched their ranges again (TestCacheSizeKeepsDataAcrossMounts failed
// in CI: 1 GET after a remount).
func TestUnmountKeepsWhatReadersFetched(t *testing.T) {
	mem := memory.New("b")
	data := pattern(20<<20+77, 'k')
	put(t, mem, "movie.mkv", data, nil, "")
	root := t.TempDir()
	dc, err := cache.OpenDataCache(root, "b", cache.DataOptions{Keep: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	staging, err := cache.NewStaging(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	server, err := Mount(dir, Config{
		UID: 1000, GID: 1000, FileMode: 0o644, DirMode: 0o755, StatTTL: time.Minute, NegativeTTL: time.Second,
		ReadAhead: 8 << 20, Logger: testLogger(t), Staging: staging, DataCache: dc, DataSpace: "b",
		Bucket: cache.NewMeta(slowCloseBucket{mem, 300 * time.Millisecond}, cache.MetaOptions{TTL: time.Minute}),
	})
	if err != nil {
		t.Fatal(err)
	}
	unmounted := false
	t.Cleanup(func() {
		if !unmounted {
			server.Unmount()
		}
	})
	f, err := os.Open(filepath.Join(dir, "movie.mkv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %v or wrong bytes", err)
	}
	// What bucketfs does at the end of a mount that a descriptor keeps
	// busy: detach it, and finish without waiting for its release.
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	unmounted = true
	server.Drain()
	server.Close()
	if err := dc.Close(); err != nil {
		t.Fatal(err)
	}

	again, err := cache.OpenDataCache(root, "b", cache.DataOptions{Keep: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if kept := again.KeptBytes(); kept < int64(len(data)) {
		t.Fatalf("the next mount finds %d bytes kept of %d read", kept, len(data))
	}
}
