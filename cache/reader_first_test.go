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

// closeCounter records whether a body was closed.
type closeCounter struct {
	io.Reader
	closed chan struct{}
}

func (c *closeCounter) Close() error { close(c.closed); return nil }

// TestReaderTakesTheLookupsFirstBytes: a reader given the body of a
// lookup's GET of the first bytes reads its first chunk from it, with no
// GET of its own for them, and goes on with GETs after them; one whose
// first read is elsewhere lets the body go.
func TestReaderTakesTheLookupsFirstBytes(t *testing.T) {
	mem := memory.New("b")
	data, obj := putRandom(t, mem, "k", 3<<20, 7)
	const n = 64 << 10
	first := &closeCounter{Reader: bytes.NewReader(data[:n]), closed: make(chan struct{})}
	log := &getLog{Bucket: mem}
	r := NewReader(log, obj, ReaderOptions{First: FirstBytes{Body: first, Length: n}})
	defer r.Close()
	if got := readSeq(t, r, len(data), 16<<10); !bytes.Equal(got, data) {
		t.Fatal("the bytes read differ from the object's")
	}
	for _, in := range log.log() {
		if in.Offset < n {
			t.Errorf("GET at %d: the first %d bytes came with the lookup", in.Offset, n)
		}
	}
	select {
	case <-first.closed:
	case <-time.After(2 * time.Second):
		t.Error("the first bytes' body was not closed")
	}

	unused := &closeCounter{Reader: bytes.NewReader(data[:n]), closed: make(chan struct{})}
	r2 := NewReader(log, obj, ReaderOptions{First: FirstBytes{Body: unused, Length: n}})
	defer r2.Close()
	buf := make([]byte, 4096)
	if _, err := r2.ReadAt(context.Background(), buf, 2<<20); err != nil || !bytes.Equal(buf, data[2<<20:2<<20+4096]) {
		t.Fatalf("a read at 2 MiB: %v", err)
	}
	select {
	case <-unused.closed:
	case <-time.After(2 * time.Second):
		t.Error("first bytes no read wanted were kept")
	}
}

// TestFirstReadStartsNoReadAhead: the first read of a reader asked for
// the read-ahead's next chunk at the same time as its own, and on a cold
// server the two GETs shared it (the first byte took 1.3 times as long);
// a reader of a file's first bytes only wanted none of it. The second
// read starts the read-ahead.
func TestFirstReadStartsNoReadAhead(t *testing.T) {
	r, data, log, _ := newTestReader(t, 4<<20, ReaderOptions{})
	buf := make([]byte, 16<<10)
	if _, err := r.ReadAt(context.Background(), buf, 0); err != nil || !bytes.Equal(buf, data[:len(buf)]) {
		t.Fatalf("first read: %v", err)
	}
	time.Sleep(50 * time.Millisecond) // a read-ahead GET would be on its way
	if gets := log.log(); len(gets) != 1 || gets[0].Offset != 0 {
		t.Fatalf("the first read sent %d GETs (%+v), want only its own", len(gets), gets)
	}
	if _, err := r.ReadAt(context.Background(), buf, int64(len(buf))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(log.log()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if gets := log.log(); len(gets) < 2 || gets[1].Offset < 1<<20 {
		t.Errorf("the second read started no read-ahead: GETs %+v", gets)
	}
}
