package fs

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/cache"
)

// heldHead is a bucket whose HEAD of one key waits for release, or gives
// up when its context is done, as the S3 backend's requests do.
type heldHead struct {
	backend.Bucket
	key     string
	started chan struct{}
	release chan struct{}
}

func (b *heldHead) Head(ctx context.Context, key string) (backend.Object, error) {
	if key == b.key {
		close(b.started)
		select {
		case <-b.release:
		case <-ctx.Done():
			return backend.Object{}, ctx.Err()
		}
	}
	return b.Bucket.Head(ctx, key)
}

// TestSignalsDoNotFailLookups signals a thread blocked in stat on the
// mount, as the Go runtime's preemption and any handled signal do: the
// kernel interrupts the request, and the stat must still succeed.
func TestSignalsDoNotFailLookups(t *testing.T) {
	mem := backend.NewMemory("b")
	put(t, mem, "slow.txt", []byte("data"), nil, "")
	held := &heldHead{Bucket: mem, key: "slow.txt", started: make(chan struct{}), release: make(chan struct{})}
	dir := t.TempDir()
	cfg := Config{UID: 1000, GID: 1000, FileMode: 0o644, DirMode: 0o755, StatTTL: time.Minute,
		NegativeTTL: 5 * time.Second, ReadAhead: 8 << 20, Logger: testLogger(t)}
	cfg.Bucket = cache.NewMeta(held, cache.MetaOptions{TTL: cfg.StatTTL, NegativeTTL: cfg.NegativeTTL})
	staging, err := cache.NewStaging(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Staging = staging
	server, err := Mount(dir, cfg)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})

	tid := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- unix.Gettid()
		var st unix.Stat_t
		done <- unix.Stat(filepath.Join(dir, "slow.txt"), &st) // no EINTR retry, as in C
	}()
	thread := <-tid
	<-held.started
	// A handled signal interrupts the blocked request; a few, to be sure
	// one lands while the thread waits in the kernel.
	for range 5 {
		unix.Tgkill(os.Getpid(), thread, unix.SIGURG)
		time.Sleep(20 * time.Millisecond)
	}
	close(held.release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stat of a file whose lookup was interrupted: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stat did not return")
	}
}
