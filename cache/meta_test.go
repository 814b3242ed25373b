package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestMeta(t *testing.T, keys ...string) (*Meta, *memory.Bucket, *fakeClock) {
	t.Helper()
	mem := memory.New("test")
	putKeys(t, mem, keys...)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	m := NewMeta(mem, MetaOptions{TTL: time.Minute, NegativeTTL: 5 * time.Second, Entries: 1000, Now: clock.Now})
	return m, mem, clock
}

func requests(mem *memory.Bucket) map[string]int64 {
	out := map[string]int64{}
	for _, op := range []string{"head", "list", "get", "put", "delete"} {
		if n := mem.Requests(op); n > 0 {
			out[op] = n
		}
	}
	return out
}

func TestMetaListingAnswersLookups(t *testing.T) {
	m, mem, _ := newTestMeta(t, "d/a", "d/b", "d/sub/x", "d/sub/", "other")
	ctx := context.Background()
	page, err := m.List(ctx, backend.ListInput{Prefix: "d/", Delimiter: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 2 || len(page.Prefixes) != 1 || page.NextToken != "" {
		t.Fatalf("listing = %+v", page)
	}
	before := requests(mem)
	for _, key := range []string{"d/a", "d/b"} {
		obj, err := m.Head(ctx, key)
		if err != nil || obj.Key != key || obj.HasHeaders {
			t.Errorf("Head(%q) = %+v, %v; want the listing's object", key, obj, err)
		}
	}
	if _, err := m.Head(ctx, "d/missing"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Head(d/missing) = %v, want ErrNotFound", err)
	}
	for prefix, want := range map[string]bool{"d/sub/": true, "d/a/": false, "d/nope/": false} {
		if got, err := m.HasPrefix(ctx, prefix); err != nil || got != want {
			t.Errorf("HasPrefix(%q) = %v, %v; want %v", prefix, got, err, want)
		}
	}
	if after := requests(mem); after["head"] != before["head"] || after["list"] != before["list"] {
		t.Errorf("requests went from %v to %v; a fresh listing should answer all", before, after)
	}
}

func TestMetaTTLs(t *testing.T) {
	m, mem, clock := newTestMeta(t, "f")
	ctx := context.Background()
	if _, err := m.Head(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Head(ctx, "g"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatal(err)
	}
	if got := mem.Requests("head"); got != 2 {
		t.Fatalf("heads = %d, want 2", got)
	}
	// Within both TTLs: no requests.
	m.Head(ctx, "f")
	m.Head(ctx, "g")
	if got := mem.Requests("head"); got != 2 {
		t.Fatalf("heads = %d, want 2 (cached)", got)
	}
	// Another client creates g; the negative entry expires after 5s.
	mem.Put(ctx, backend.PutInput{Key: "g", Body: strings.NewReader("g"), Size: 1})
	clock.Advance(6 * time.Second)
	if _, err := m.Head(ctx, "g"); err != nil {
		t.Fatalf("Head(g) after the negative TTL = %v", err)
	}
	m.Head(ctx, "f")
	if got := mem.Requests("head"); got != 3 {
		t.Fatalf("heads = %d, want 3 (f still cached)", got)
	}
	clock.Advance(time.Minute)
	m.Head(ctx, "f")
	if got := mem.Requests("head"); got != 4 {
		t.Fatalf("heads = %d, want 4 (f expired)", got)
	}
}

func TestMetaListingExpires(t *testing.T) {
	m, mem, clock := newTestMeta(t, "a", "b")
	ctx := context.Background()
	list := func() int {
		page, err := m.List(ctx, backend.ListInput{Delimiter: "/"})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Objects)
	}
	if n := list(); n != 2 {
		t.Fatalf("listed %d", n)
	}
	mem.Put(ctx, backend.PutInput{Key: "c", Body: strings.NewReader(""), Size: 0})
	if n := list(); n != 2 {
		t.Fatalf("listed %d within the TTL, want the cached 2", n)
	}
	clock.Advance(61 * time.Second)
	if n := list(); n != 3 {
		t.Fatalf("listed %d after the TTL, want 3", n)
	}
	if got := mem.Requests("list"); got != 2 {
		t.Fatalf("lists = %d, want 2", got)
	}
}

func TestMetaListingPages(t *testing.T) {
	var keys []string
	for i := range 2500 {
		keys = append(keys, "big/"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String())
	}
	m, mem, _ := newTestMeta(t, keys...)
	page, err := m.List(context.Background(), backend.ListInput{Prefix: "big/", Delimiter: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 2500 || page.NextToken != "" {
		t.Fatalf("got %d objects, token %q", len(page.Objects), page.NextToken)
	}
	if got := mem.Requests("list"); got != 3 {
		t.Errorf("lists = %d, want 3 pages", got)
	}
}

func TestMetaMarkerFromOwnListing(t *testing.T) {
	m, mem, _ := newTestMeta(t, "dir/", "dir/f", "implicit/f")
	ctx := context.Background()
	for _, p := range []string{"dir/", "implicit/"} {
		if _, err := m.List(ctx, backend.ListInput{Prefix: p, Delimiter: "/"}); err != nil {
			t.Fatal(err)
		}
	}
	heads := mem.Requests("head")
	if _, err := m.Head(ctx, "dir/"); err != nil {
		t.Errorf("Head(dir/) = %v", err)
	}
	if _, err := m.Head(ctx, "implicit/"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Head(implicit/) = %v, want ErrNotFound", err)
	}
	if got := mem.Requests("head"); got != heads {
		t.Errorf("heads went from %d to %d", heads, got)
	}
}

func TestMetaWritesInvalidate(t *testing.T) {
	m, _, _ := newTestMeta(t, "d/a")
	ctx := context.Background()
	m.List(ctx, backend.ListInput{Prefix: "d/", Delimiter: "/"})
	if _, err := m.Head(ctx, "d/b"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := m.Put(ctx, backend.PutInput{Key: "d/b", Body: strings.NewReader("x"), Size: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Head(ctx, "d/b"); err != nil {
		t.Errorf("Head after our own Put = %v", err)
	}
	if err := m.Delete(ctx, "d/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Head(ctx, "d/a"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Head after our own Delete = %v", err)
	}
}

func TestMetaFreshHasHeaders(t *testing.T) {
	m, _, _ := newTestMeta(t, "d/a")
	ctx := context.Background()
	m.List(ctx, backend.ListInput{Prefix: "d/", Delimiter: "/"})
	obj, _ := m.Head(ctx, "d/a")
	if obj.HasHeaders {
		t.Fatal("listing object claims headers")
	}
	obj, err := m.Fresh(ctx, "d/a")
	if err != nil || !obj.HasHeaders {
		t.Fatalf("Fresh = %+v, %v", obj, err)
	}
	// Headers now cached: Head returns them.
	if obj, _ := m.Head(ctx, "d/a"); !obj.HasHeaders {
		t.Error("Head after Fresh lost the headers")
	}
}

func TestMetaLookupPageServesListing(t *testing.T) {
	var keys []string
	keys = append(keys, "small/", "small/a", "small/b")
	for i := range 2500 {
		keys = append(keys, fmt.Sprintf("big/f%04d", i))
	}
	m, mem, _ := newTestMeta(t, keys...)
	ctx := context.Background()

	// A small directory: the lookup's page is the whole listing, marker
	// included.
	if ok, err := m.HasPrefix(ctx, "small/"); !ok || err != nil {
		t.Fatalf("HasPrefix(small/) = %v, %v", ok, err)
	}
	lists, heads := mem.Requests("list"), mem.Requests("head")
	if _, err := m.Head(ctx, "small/"); err != nil {
		t.Errorf("marker: %v", err)
	}
	if page, _ := m.List(ctx, backend.ListInput{Prefix: "small/", Delimiter: "/"}); len(page.Objects) != 3 {
		t.Errorf("listing = %+v", page)
	}
	if mem.Requests("list") != lists || mem.Requests("head") != heads {
		t.Errorf("the small directory's lookup page did not serve the listing and marker")
	}

	// A big directory: the listing goes on from the lookup's page.
	if ok, err := m.HasPrefix(ctx, "big/"); !ok || err != nil {
		t.Fatalf("HasPrefix(big/) = %v, %v", ok, err)
	}
	lists, heads = mem.Requests("list"), mem.Requests("head")
	if _, err := m.Head(ctx, "big/"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("absent marker: %v", err)
	}
	page, err := m.List(ctx, backend.ListInput{Prefix: "big/", Delimiter: "/"})
	if err != nil || len(page.Objects) != 2500 {
		t.Fatalf("listing: %d objects, %v", len(page.Objects), err)
	}
	if got := mem.Requests("list") - lists; got != 2 {
		t.Errorf("the listing sent %d pages, want the 2 after the lookup's", got)
	}
	if mem.Requests("head") != heads {
		t.Error("the marker needed a HEAD")
	}
}

// putKeys stores each key with itself as its content.
func putKeys(t *testing.T, b backend.Bucket, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, err := b.Put(context.Background(), backend.PutInput{Key: k, Body: strings.NewReader(k), Size: int64(len(k))}); err != nil {
			t.Fatal(err)
		}
	}
}
