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

// TestProbesTurnToHEADsWhileNothingIsOpened: a stat of many files that no
// listing covers fetched 64 KiB each for nothing (a GET per probe). Once
// a few probes went unopened, probes are HEADs; opens of files looked up
// so turn them back into GETs.
func TestProbesTurnToHEADsWhileNothingIsOpened(t *testing.T) {
	ctx := context.Background()
	mem := memory.New("b")
	objs := map[string]backend.Object{}
	for i := range 60 {
		key := fmt.Sprintf("big/f%02d", i)
		_, objs[key] = putRandom(t, mem, key, 100<<10, uint64(i))
	}
	m := NewMeta(mem, MetaOptions{TTL: time.Minute, NegativeTTL: time.Minute})
	probe := func(i int) string {
		key := fmt.Sprintf("big/f%02d", i)
		if _, err := m.Probe(key).Wait(ctx); err != nil {
			t.Fatal(err)
		}
		return key
	}
	for i := range 30 { // stats: nothing opened
		probe(i)
	}
	gets, heads := mem.Requests("get"), mem.Requests("head")
	if gets > maxProbeBodies+probeGrace+1 || heads < 30-(maxProbeBodies+probeGrace+1) {
		t.Errorf("30 probes, none opened: GET %d HEAD %d; want HEADs after the first %d", gets, heads, maxProbeBodies+probeGrace+1)
	}
	for i := 30; i < 60; i++ { // cats: each opened
		key := probe(i)
		if first, ok := m.TakeFirstBytes(key, objs[key].ETag); ok {
			first.Body.Close()
		}
	}
	if g := mem.Requests("get") - gets; g < 15 {
		t.Errorf("30 probes, each opened: %d GETs; want GETs again once opens take them", g)
	}
}
