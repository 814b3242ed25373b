package fs

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
	"github.com/bucketfs/bucketfs/cache"
)

// heldBucket is a bucket whose op ("head" or "put") of one key waits for
// release, or gives up when its context is done, as the S3 backend's
// requests do.
type heldBucket struct {
	backend.Bucket
	op, key string
	started chan struct{}
	release chan struct{}
}

func (b *heldBucket) hold(ctx context.Context, op, key string) error {
	if op != b.op || key != b.key {
		return nil
	}
	select {
	case b.started <- struct{}{}:
	default:
	}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *heldBucket) Head(ctx context.Context, key string) (backend.Object, error) {
	if err := b.hold(ctx, "head", key); err != nil {
		return backend.Object{}, err
	}
	return b.Bucket.Head(ctx, key)
}

func (b *heldBucket) Get(ctx context.Context, in backend.GetInput) (io.ReadCloser, backend.Object, error) {
	if err := b.hold(ctx, "get", in.Key); err != nil {
		return nil, backend.Object{}, err
	}
	return b.Bucket.Get(ctx, in)
}

func (b *heldBucket) Put(ctx context.Context, in backend.PutInput) (backend.Object, error) {
	if err := b.hold(ctx, "put", in.Key); err != nil {
		return backend.Object{}, err
	}
	return b.Bucket.Put(ctx, in)
}

// TestSignalsDoNotFailCalls signals a thread blocked on the mount, as the
// Go runtime's preemption and any handled signal do: the kernel interrupts
// the request, and the call must still succeed. Once for a lookup (stat),
// once for an upload (close).
func TestSignalsDoNotFailCalls(t *testing.T) {
	mem := memory.New("b")
	put(t, mem, "slow.txt", []byte("data"), nil, "")
	for _, tt := range []struct {
		name    string
		op, key string
		call    func(mnt string) error
	}{
		{"stat", "get", "slow.txt", func(mnt string) error { // a lookup asks with a GET of the first bytes
			var st unix.Stat_t
			return unix.Stat(filepath.Join(mnt, "slow.txt"), &st) // no EINTR retry, as in C
		}},
		{"close", "put", "new.txt", func(mnt string) error {
			fd, err := unix.Open(filepath.Join(mnt, "new.txt"), unix.O_WRONLY|unix.O_CREAT, 0o644)
			if err != nil {
				return err
			}
			unix.Write(fd, []byte("data"))
			return unix.Close(fd) // the upload
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			held := &heldBucket{Bucket: mem, op: tt.op, key: tt.key, started: make(chan struct{}, 1), release: make(chan struct{})}
			mnt := mountMemory(t, mem, func(cfg *Config) {
				cfg.Bucket = cache.NewMeta(held, cache.MetaOptions{TTL: cfg.StatTTL, NegativeTTL: cfg.NegativeTTL})
			})
			tid := make(chan int, 1)
			done := make(chan error, 1)
			go func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				tid <- unix.Gettid()
				done <- tt.call(mnt)
			}()
			thread := <-tid
			select {
			case <-held.started:
			case <-time.After(10 * time.Second):
				close(held.release)
				t.Fatalf("%s sent no %s of %s", tt.name, tt.op, tt.key)
			}
			// A handled signal interrupts the blocked request; a few, to be
			// sure one lands while the thread waits in the kernel.
			for range 5 {
				unix.Tgkill(os.Getpid(), thread, unix.SIGURG)
				time.Sleep(20 * time.Millisecond)
			}
			close(held.release)
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s interrupted by a signal: %v", tt.name, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s did not return", tt.name)
			}
		})
	}
}
