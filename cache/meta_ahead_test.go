package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
)

// TestProbeLooksUpWithAGETOfTheFirstBytes: Probe answers what a HEAD
// would with one GET, caches it, and keeps the GET's body for the open
// of the same version; a key the cache knows is not asked for; a GET the
// server refuses is followed by a HEAD.
func TestProbeLooksUpWithAGETOfTheFirstBytes(t *testing.T) {
	ctx := context.Background()
	mem := memory.New("b")
	data, obj := putRandom(t, mem, "dir/file", 200<<10, 3)
	m := NewMeta(mem, MetaOptions{TTL: time.Minute, NegativeTTL: time.Minute})

	got, err := m.Probe("dir/file").Wait(ctx)
	if err != nil || got.ETag != obj.ETag || got.Size != obj.Size || !got.HasHeaders {
		t.Fatalf("Probe = %+v, %v; want the object with its headers", got, err)
	}
	if g, h := mem.Requests("get"), mem.Requests("head"); g != 1 || h != 0 {
		t.Errorf("Probe sent GET %d HEAD %d, want one GET", g, h)
	}
	if p := m.Probe("dir/file"); p != nil {
		t.Error("a key the cache knows was probed again")
	}
	if _, err := m.Head(ctx, "dir/file"); err != nil || mem.Requests("head") != 0 {
		t.Errorf("Head after Probe: %v, %d HEADs; want it cached", err, mem.Requests("head"))
	}
	if _, ok := m.TakeFirstBytes("dir/file", "other-etag"); ok {
		t.Error("first bytes of another version were handed out")
	}
	first, ok := m.TakeFirstBytes("dir/file", obj.ETag)
	if !ok || first.Length != probeBytes {
		t.Fatalf("TakeFirstBytes = %+v, %v; want %d bytes", first, ok, probeBytes)
	}
	body, _ := io.ReadAll(first.Body)
	first.Body.Close()
	if !bytes.Equal(body, data[:probeBytes]) {
		t.Error("the first bytes differ from the object's")
	}
	if _, ok := m.TakeFirstBytes("dir/file", obj.ETag); ok {
		t.Error("the same body was handed out twice")
	}

	if _, err := m.Probe("dir/none").Wait(ctx); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Probe of a missing key: %v", err)
	}
	if _, err := m.Head(ctx, "dir/none"); !errors.Is(err, backend.ErrNotFound) || mem.Requests("head") != 0 {
		t.Errorf("Head after a missing Probe: %v, %d HEADs; want the miss cached", err, mem.Requests("head"))
	}

	putRandom(t, mem, "dir/archived", 10, 4)
	mem.SetFault(func(op, key string) error {
		if op == "get" {
			return fmt.Errorf("object in an archive class: %w", backend.ErrAccessDenied)
		}
		return nil
	})
	if got, err := m.Probe("dir/archived").Wait(ctx); err != nil || got.Size != 10 {
		t.Errorf("Probe of an object a GET is refused: %+v, %v; want the HEAD's answer", got, err)
	}
	if h := mem.Requests("head"); h != 1 {
		t.Errorf("%d HEADs after the refused GET, want 1", h)
	}
}
