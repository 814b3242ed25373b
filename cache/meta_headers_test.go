package cache

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
)

// TestListHeadersOnDemand: with PlainListings, listings ask for no
// headers until ListHeaders; then the directory is listed again with them
// where the server can list headers, and not at all where it cannot.
func TestListHeadersOnDemand(t *testing.T) {
	for _, canList := range []bool{true, false} {
		mem := memory.New("test")
		mem.ListHeaders = canList
		ctx := context.Background()
		putKeys(t, mem, "d/a", "d/b", "e/c")
		m := NewMeta(mem, MetaOptions{TTL: time.Minute, PlainListings: true})
		page, err := m.List(ctx, backend.ListInput{Prefix: "d/", Delimiter: "/"})
		if err != nil || len(page.Objects) != 2 || page.Objects[0].HasHeaders {
			t.Fatalf("plain listing: %+v, %v", page, err)
		}
		if got := m.ListHeaders(ctx, "d/"); got != canList {
			t.Errorf("server lists headers %v: ListHeaders says %v", canList, got)
		}
		wantLists := map[bool]int64{true: 2, false: 1}[canList] // listed again only where it helps
		if lists := mem.Requests("list"); lists != wantLists {
			t.Errorf("server lists headers %v: %d LISTs, want %d", canList, lists, wantLists)
		}
		obj, err := m.Head(ctx, "d/a")
		if err != nil || obj.HasHeaders != canList || mem.Requests("head") != 0 {
			t.Errorf("server lists headers %v: Head from the listing %+v, %v, %d HEADs", canList, obj, err, mem.Requests("head"))
		}
		if _, err := m.List(ctx, backend.ListInput{Prefix: "e/", Delimiter: "/"}); err != nil {
			t.Fatal(err)
		}
		if got := mem.ListedWithHeaders(); got != map[bool]int64{true: 3, false: 0}[canList] { // d/ again, then e/
			t.Errorf("server lists headers %v: %d objects listed with headers", canList, got)
		}
	}
}

// plainServer hides the memory bucket's ListsHeaders: a server that takes
// the request for headers and answers a plain listing, as versitygw does.
type plainServer struct{ backend.Bucket }

// TestListHeadersOnAServerThatIgnoresThem: versitygw answers a request for
// listing headers with a plain listing. The listing fetched again mixed in
// the sample's headers, so it looked like one with headers, and its
// objects (a directory's marker among them) showed no ACL or mode; now
// the plain answer is not stored, the listing keeps its sample, and the
// server is not asked again.
func TestListHeadersOnAServerThatIgnoresThem(t *testing.T) {
	mem := memory.New("test")
	ctx := context.Background()
	for _, k := range []string{"d/", "d/new"} {
		if _, err := mem.Put(ctx, backend.PutInput{Key: k, Body: strings.NewReader(""), Metadata: map[string]string{"mode": "33188"}}); err != nil {
			t.Fatal(err)
		}
	}
	m := NewMeta(plainServer{mem}, MetaOptions{TTL: time.Minute, PlainListings: true})
	if _, err := m.List(ctx, backend.ListInput{Prefix: "d/", Delimiter: "/"}); err != nil {
		t.Fatal(err)
	}
	sample, ok := m.HeaderSample(ctx, "d/")
	if !ok || len(sample) != 2 {
		t.Fatalf("sample %v, %v", sample, ok)
	}
	if m.ListHeaders(ctx, "d/") {
		t.Error("ListHeaders says the listing carries headers; the server sent none")
	}
	if again, ok := m.HeaderSample(ctx, "d/"); !ok || len(again) != 2 {
		t.Errorf("the listing lost its sample: %v, %v", again, ok)
	}
	lists := mem.Requests("list")
	if m.ListHeaders(ctx, "d/") || mem.Requests("list") != lists {
		t.Error("the server that ignored the request was asked again")
	}
}
