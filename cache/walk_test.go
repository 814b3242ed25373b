package cache

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/bucketfs/bucketfs/backend"
)

func keysOf(page backend.ListPage) ([]string, []string) {
	var keys []string
	for _, o := range page.Objects {
		keys = append(keys, o.Key)
	}
	return keys, page.Prefixes
}

// TestWalkListingsMatchTheServer: the one-level listings a flat listing of
// a walked subtree yields (markers, nested directories, files beside
// directories) are exactly what the server lists level by level.
func TestWalkListingsMatchTheServer(t *testing.T) {
	keys := []string{"d/a", "d/x/1", "d/x/2", "d/y/", "d/y/3", "d/y/z/4", "d/y/z/", "d/zz", "e/5"}
	m, mem, _ := newTestMeta(t, keys...)
	ctx := context.Background()
	dirs := []string{"d/", "d/x/", "d/y/", "d/y/z/"}
	for _, dir := range dirs[:3] { // d/, then two subdirectories: a walk
		if _, err := m.List(ctx, backend.ListInput{Prefix: dir, Delimiter: "/"}); err != nil {
			t.Fatal(err)
		}
	}
	lists := mem.Requests("list")
	for _, dir := range dirs {
		got, err := m.List(ctx, backend.ListInput{Prefix: dir, Delimiter: "/"})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := mem.List(ctx, backend.ListInput{Prefix: dir, Delimiter: "/"})
		gk, gp := keysOf(got)
		wk, wp := keysOf(want)
		if !slices.Equal(gk, wk) || !slices.Equal(gp, wp) {
			t.Errorf("listing of %s from the walk: %q %q; the server lists %q %q", dir, gk, gp, wk, wp)
		}
	}
	if d := mem.Requests("list") - lists - int64(len(dirs)); d != 0 {
		t.Errorf("the walk's listings cost %d requests of their own", d)
	}
}

// TestWalkOfABigDirectoryStops: a flat listing whose pages all fall in one
// big subdirectory stops after the second (it completes nothing), and the
// directories after it are listed level by level, with the right entries.
func TestWalkOfABigDirectoryStops(t *testing.T) {
	var keys []string
	for i := range 2500 {
		keys = append(keys, fmt.Sprintf("r/a/%04d", i))
	}
	keys = append(keys, "r/b/1", "r/c/1", "r/c/2")
	m, mem, _ := newTestMeta(t, keys...)
	ctx := context.Background()
	for _, dir := range []string{"r/", "r/b/"} {
		if _, err := m.List(ctx, backend.ListInput{Prefix: dir, Delimiter: "/"}); err != nil {
			t.Fatal(err)
		}
	}
	lists := mem.Requests("list")
	page, err := m.List(ctx, backend.ListInput{Prefix: "r/c/", Delimiter: "/"})
	if got, _ := keysOf(page); err != nil || !reflect.DeepEqual(got, []string{"r/c/1", "r/c/2"}) {
		t.Errorf("r/c/ after a walk that stopped: %q, %v", got, err)
	}
	if d := mem.Requests("list") - lists; d != 3 {
		t.Errorf("the listing of r/c/ cost %d LISTs, want 3 (two flat pages in r/a/, then its own)", d)
	}
}
