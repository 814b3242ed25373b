package fs

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
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
	dir := mountMemory(t, mem, func(cfg *Config) {
		cfg.Bucket = cache.NewMeta(held, cache.MetaOptions{TTL: cfg.StatTTL, NegativeTTL: cfg.NegativeTTL})
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
