package cache

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
)

// heldBody gives the first n bytes of body at once and the rest only once
// released: a server whose first bytes come before the rest.
type heldBody struct {
	io.ReadCloser
	n       int
	release <-chan struct{}
}

func (h *heldBody) Read(p []byte) (int, error) {
	if h.n <= 0 {
		<-h.release
		return h.ReadCloser.Read(p)
	}
	m, err := h.ReadCloser.Read(p[:min(len(p), h.n)])
	h.n -= m
	return m, err
}

type heldBodies struct {
	backend.Bucket
	first   int
	release chan struct{}
}

func (h heldBodies) Get(ctx context.Context, in backend.GetInput) (io.ReadCloser, backend.Object, error) {
	body, obj, err := h.Bucket.Get(ctx, in)
	if err == nil {
		body = &heldBody{ReadCloser: body, n: h.first, release: h.release}
	}
	return body, obj, err
}

// TestFirstReadNeedsOnlyItsBytes: the kernel's first read of a file is
// 16 KiB; it is answered once those bytes have arrived, not once the
// first 128 KiB of the chunk have (the time to first byte).
func TestFirstReadNeedsOnlyItsBytes(t *testing.T) {
	mem := memory.New("b")
	data, obj := putRandom(t, mem, "k", 1<<20, 9)
	release := make(chan struct{})
	r := NewReader(heldBodies{Bucket: mem, first: 16 << 10, release: release}, obj, ReaderOptions{})
	defer func() {
		close(release)
		r.Close()
	}()
	got := make([]byte, 16<<10)
	read := make(chan error, 1)
	go func() {
		_, err := r.ReadAt(context.Background(), got, 0)
		read <- err
	}()
	select {
	case err := <-read:
		if err != nil || !bytes.Equal(got, data[:16<<10]) {
			t.Fatalf("first read: %v, or wrong bytes", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the first 16 KiB read waited for more of the chunk than it needs")
	}
}
