package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
)

// heldBucket answers Head and List at once but hands the first answer of
// each back only when released: a fill that raced a write.
type heldBucket struct {
	backend.Bucket
	held    chan struct{} // one value per answer being held
	release chan struct{}
	once    sync.Map
}

func (h *heldBucket) hold(op string) {
	if _, loaded := h.once.LoadOrStore(op, true); !loaded {
		h.held <- struct{}{}
		<-h.release
	}
}

func (h *heldBucket) Head(ctx context.Context, key string) (backend.Object, error) {
	obj, err := h.Bucket.Head(ctx, key)
	h.hold("head")
	return obj, err
}

func (h *heldBucket) List(ctx context.Context, in backend.ListInput) (backend.ListPage, error) {
	page, err := h.Bucket.List(ctx, in)
	h.hold("list")
	return page, err
}

func putString(t *testing.T, b backend.Bucket, key, body string) backend.Object {
	t.Helper()
	obj, err := b.Put(context.Background(), backend.PutInput{Key: key, Body: strings.NewReader(body), Size: int64(len(body))})
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// TestMetaFillDoesNotUndoWrites: a listing or HEAD that started before this
// client's write and ended after it must not replace what the write
// recorded.
func TestMetaFillDoesNotUndoWrites(t *testing.T) {
	ctx := context.Background()
	mem := memory.New("b")
	putString(t, mem, "d/old", "old")
	putString(t, mem, "k", "one")
	held := &heldBucket{Bucket: mem, held: make(chan struct{}), release: make(chan struct{})}
	m := NewMeta(held, MetaOptions{TTL: 60e9, NegativeTTL: 5e9})

	listed := make(chan struct{})
	go func() {
		m.List(ctx, backend.ListInput{Prefix: "d/", Delimiter: "/"})
		close(listed)
	}()
	<-held.held // the listing has d/old and not d/new
	putString(t, m, "d/new", "new")
	if err := m.Delete(ctx, "d/old"); err != nil {
		t.Fatal(err)
	}
	headed := make(chan struct{})
	go func() {
		m.Fresh(ctx, "k")
		close(headed)
	}()
	<-held.held // the HEAD has version one
	two := putString(t, m, "k", "two")
	close(held.release)
	<-listed
	<-headed

	page, err := m.List(ctx, backend.ListInput{Prefix: "d/", Delimiter: "/"})
	var keys []string
	for _, o := range page.Objects {
		keys = append(keys, o.Key)
	}
	if err != nil || !slices.Equal(keys, []string{"d/new"}) {
		t.Errorf("listing after the race = %q, %v; want [d/new]", keys, err)
	}
	if _, err := m.Head(ctx, "d/old"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Head(d/old) after its delete = %v, want ErrNotFound", err)
	}
	if obj, err := m.Head(ctx, "k"); err != nil || obj.ETag != two.ETag {
		t.Errorf("Head(k) = %q, %v; want the ETag of this client's last write %q", obj.ETag, err, two.ETag)
	}
}

// TestMetaFillRacingAWriteKeepsIt: a fill that checked for this client's
// writes before one landed, and stored its answer after the write
// recorded itself, hid the new file until its entry expired (a file
// missing from readdir, found by posixtest.DirSeek). Each round races a
// fill of every kind against a create in a new directory; whatever the
// interleaving, the cache must show the file afterwards.
func TestMetaFillRacingAWriteKeepsIt(t *testing.T) {
	ctx := context.Background()
	fills := map[string]func(m *Meta, dir, key string){
		"List":      func(m *Meta, dir, _ string) { m.List(ctx, backend.ListInput{Prefix: dir, Delimiter: "/"}) },
		"Fresh":     func(m *Meta, _, key string) { m.Fresh(ctx, key) },
		"HasPrefix": func(m *Meta, dir, _ string) { m.HasPrefix(ctx, dir) },
		"Pages": func(m *Meta, dir, _ string) {
			p := m.Pages(dir)
			for _, last, err := p.Next(ctx); !last && err == nil; _, last, err = p.Next(ctx) {
			}
		},
	}
	for name, fill := range fills {
		t.Run(name, func(t *testing.T) {
			var m *Meta
			for i := range 20000 {
				if i%500 == 0 { // a small bucket: lists stay cheap
					m = NewMeta(memory.New("b"), MetaOptions{TTL: time.Minute, NegativeTTL: time.Minute})
				}
				dir := fmt.Sprintf("d%d/", i)
				key := dir + "f"
				var wg sync.WaitGroup
				wg.Go(func() { fill(m, dir, key) })
				putString(t, m, key, "x")
				wg.Wait()
				if _, err := m.Head(ctx, key); err != nil {
					t.Fatalf("round %d: Head(%s) after its create = %v", i, key, err)
				}
				page, err := m.List(ctx, backend.ListInput{Prefix: dir, Delimiter: "/"})
				if err != nil || len(page.Objects) != 1 {
					t.Fatalf("round %d: listing of %s after the create of %s = %d objects, %v; want 1", i, dir, key, len(page.Objects), err)
				}
			}
		})
	}
}

// TestMetaFillOutlivingManyWrites: the table of recent writes is bounded;
// a fill that outlived so many writes that its directory's was pushed out
// must still count as raced, not store a listing without the new file.
func TestMetaFillOutlivingManyWrites(t *testing.T) {
	ctx := context.Background()
	mem := memory.New("b")
	held := &heldBucket{Bucket: mem, held: make(chan struct{}), release: make(chan struct{})}
	m := NewMeta(held, MetaOptions{TTL: time.Minute, NegativeTTL: time.Minute, Entries: 8})
	listed := make(chan struct{})
	go func() {
		m.List(ctx, backend.ListInput{Prefix: "d/", Delimiter: "/"})
		close(listed)
	}()
	<-held.held // the listing of d/ is empty
	putString(t, m, "d/new", "x")
	for i := range 20 {
		putString(t, m, fmt.Sprintf("e%d/f", i), "x")
	}
	close(held.release)
	<-listed
	page, err := m.List(ctx, backend.ListInput{Prefix: "d/", Delimiter: "/"})
	if err != nil || len(page.Objects) != 1 {
		t.Errorf("listing of d/ after its create = %d objects, %v; want d/new", len(page.Objects), err)
	}
	// A fill that began after those writes is cached as usual.
	m.List(ctx, backend.ListInput{Prefix: "e3/", Delimiter: "/"})
	_, misses := m.CacheStats()
	m.List(ctx, backend.ListInput{Prefix: "e3/", Delimiter: "/"})
	if _, after := m.CacheStats(); after != misses {
		t.Error("a listing begun after the writes was not cached")
	}
}
