package cache

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
)

// TestMetaListingsStayWithinEntries: a directory bigger than MaxListing
// is never cached whole (each listing asks the server again), and all
// cached listings together hold at most Entries, the oldest going first.
func TestMetaListingsStayWithinEntries(t *testing.T) {
	mem := memory.New("test")
	ctx := context.Background()
	dirs := map[string]int{"big/": 30, "d1/": 20, "d2/": 20, "d3/": 20, "d4/": 20, "d5/": 20, "d6/": 20}
	for dir, n := range dirs {
		for i := range n {
			if _, err := mem.Put(ctx, backend.PutInput{Key: fmt.Sprintf("%sf%02d", dir, i), Body: strings.NewReader("")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := NewMeta(mem, MetaOptions{TTL: time.Minute, NegativeTTL: time.Second, Entries: 100}) // MaxListing 25
	list := func(dir string) int64 {
		t.Helper()
		before := mem.Requests("list")
		for p := m.Pages(dir); ; {
			_, last, err := p.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if last {
				return mem.Requests("list") - before
			}
		}
	}
	list("big/")
	if n := list("big/"); n == 0 {
		t.Error("a listing of 30 entries, above MaxListing 25, was cached")
	}
	for _, dir := range []string{"d1/", "d2/", "d3/", "d4/", "d5/", "d6/"} {
		list(dir)
	}
	if n := list("d6/"); n != 0 {
		t.Errorf("the last listing stored was asked again: %d LISTs", n)
	}
	if n := list("d1/"); n == 0 {
		t.Error("six listings of 20 all stayed cached; want at most 100 entries in all, the oldest evicted")
	}
	if got := m.listed.Load(); got > 100 {
		t.Errorf("cached listings hold %d entries; want at most Entries (100)", got)
	}
}
