package cache

import (
	"bytes"
	"testing"
)

// TestReadViewKeepsItsBuffers: a view is the reader's own buffers, not a
// copy, and they stay as read until Release, however far the reader goes
// on meanwhile (its buffers are pooled: one given back too soon would be
// refilled with other bytes while the FUSE reply is still being written
// from it). Release gives them back to the budget.
func TestReadViewKeepsItsBuffers(t *testing.T) {
	budget := NewBudget(4 << 20)
	opts := ReaderOptions{MinWindow: 128 << 10, ChunkSize: 128 << 10, MaxWindow: 512 << 10, RandomChunk: 128 << 10, Budget: budget}
	size := 8 << 20
	r, data, _, _ := newTestReader(t, size, opts)
	ctx := t.Context()

	p := make([]byte, 64<<10)
	view, err := r.ReadView(ctx, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if view.Len() != len(p) || !bytes.Equal(bytes.Join(view.Slices, nil), data[:len(p)]) {
		t.Fatalf("view of [0, %d): %d bytes, not the object's", len(p), view.Len())
	}
	if &view.Slices[0][0] == &p[0] {
		t.Error("the view was copied into the caller's buffer")
	}

	// Read on to the end, jump back and forth: the stream's old chunks
	// are dropped and their buffers reused.
	readSeq(t, r, size, 64<<10)
	for _, off := range []int64{5 << 20, 1 << 20, 7 << 20, 3 << 20} {
		if _, err := r.ReadAt(ctx, make([]byte, 4096), off); err != nil {
			t.Fatal(err)
		}
	}
	readSeq(t, r, size, 64<<10)
	if got := bytes.Join(view.Slices, nil); !bytes.Equal(got, data[:len(p)]) {
		t.Fatal("a view's bytes changed before its Release")
	}
	view.Release()
	view.Release() // a second Release is harmless
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if used := budget.inUse(); used != 0 {
		t.Errorf("after Release and Close the budget still counts %d bytes", used)
	}
}

// TestReadViewAtTheEnd: past the end a view is empty, and a short read's
// view stops at the end.
func TestReadViewAtTheEnd(t *testing.T) {
	r, data, _, _ := newTestReader(t, 100<<10, smallOpts)
	view, err := r.ReadView(t.Context(), make([]byte, 64<<10), 60<<10)
	if err != nil {
		t.Fatal(err)
	}
	if got := bytes.Join(view.Slices, nil); !bytes.Equal(got, data[60<<10:]) {
		t.Errorf("view of the last %d bytes: %d bytes, not the object's", len(data)-60<<10, len(got))
	}
	view.Release()
	view, err = r.ReadView(t.Context(), make([]byte, 4096), 100<<10)
	if err != nil || view.Len() != 0 {
		t.Errorf("view at the end: %d bytes, %v; want none", view.Len(), err)
	}
	view.Release()
}
