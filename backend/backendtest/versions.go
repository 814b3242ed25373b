package backendtest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bucketfs/bucketfs/backend"
)

// Reading old versions and listing the versions of many keys, which
// --as-of builds on.

func testGetVersion(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	if err := b.SetVersioning(ctx, "Enabled"); err != nil {
		t.Fatalf("SetVersioning: %v", err)
	}
	key := prefix + "obj"
	v1 := put(t, b, key, "version one")
	v2 := put(t, b, key, "version two, longer")
	for _, v := range []backend.Object{v1, v2} {
		data, obj, err := get(t, b, backend.GetInput{Key: key, Length: -1, VersionID: v.VersionID})
		if want := map[string]string{v1.VersionID: "version one", v2.VersionID: "version two, longer"}[v.VersionID]; err != nil || data != want {
			t.Errorf("Get version %q = %q, %v; want %q", v.VersionID, data, err, want)
		}
		if obj.VersionID != v.VersionID || obj.ETag != v.ETag || obj.Size != v.Size {
			t.Errorf("Get version %q headers = %+v, want version %q, ETag %q, size %d", v.VersionID, obj, v.VersionID, v.ETag, v.Size)
		}
	}
	if data, _, err := get(t, b, backend.GetInput{Key: key, Offset: 8, Length: 3, VersionID: v1.VersionID}); err != nil || data != "one" {
		t.Errorf("Get of a range of version 1 = %q, %v; want \"one\"", data, err)
	}
	if err := b.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(t, b, backend.GetInput{Key: key, Length: -1}); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Get of the deleted key = %v, want ErrNotFound", err)
	}
	if data, _, err := get(t, b, backend.GetInput{Key: key, Length: -1, VersionID: v1.VersionID}); err != nil || data != "version one" {
		t.Errorf("Get of version 1 after Delete = %q, %v; want \"version one\"", data, err)
	}
	if _, _, err := get(t, b, backend.GetInput{Key: key, Length: -1, VersionID: "no-such-version"}); err == nil {
		t.Errorf("Get of a version that does not exist succeeded")
	}
}

func testListVersions(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	dir := prefix + "v/"
	put(t, b, dir+"0", "unversioned")
	if err := b.SetVersioning(ctx, "Enabled"); err != nil {
		t.Fatalf("SetVersioning: %v", err)
	}
	a1 := put(t, b, dir+"a", "a one")
	a2 := put(t, b, dir+"a", "a two")
	b1 := put(t, b, dir+"b", "b one")
	if err := b.Delete(ctx, dir+"b"); err != nil {
		t.Fatal(err)
	}
	c1 := put(t, b, dir+"c/d", "c/d")
	put(t, b, prefix+"outside", "not under the prefix")

	// key, version ID ("marker" for a delete marker), latest
	want := []string{
		dir + "0 null latest",
		dir + "a " + a2.VersionID + " latest",
		dir + "a " + a1.VersionID,
		dir + "b marker latest",
		dir + "b " + b1.VersionID,
		dir + "c/d " + c1.VersionID + " latest",
	}
	describe := func(entries []backend.VersionEntry) []string {
		var out []string
		for _, e := range entries {
			s := e.Key + " " + e.ID
			if e.DeleteMarker {
				s = e.Key + " marker"
				if e.ID == "" || e.ID == "null" {
					t.Errorf("delete marker of %q has version ID %q", e.Key, e.ID)
				}
			}
			if e.Latest {
				s += " latest"
			}
			if e.LastModified.IsZero() {
				t.Errorf("version %q of %q has no Last-Modified", e.ID, e.Key)
			}
			if !e.DeleteMarker && (e.ETag == "" || e.Size == 0 || e.StorageClass == "") {
				t.Errorf("version %q of %q = %+v, want ETag, size and storage class", e.ID, e.Key, e)
			}
			out = append(out, s)
		}
		return out
	}
	page, err := b.ListVersions(ctx, backend.ListInput{Prefix: dir})
	if err != nil {
		t.Fatalf("ListVersions: %v", err)
	}
	if got := describe(page.Versions); fmt.Sprint(got) != fmt.Sprint(want) || page.NextToken != "" {
		t.Errorf("ListVersions = %q, next %q; want %q, no next page", got, page.NextToken, want)
	}

	var all []backend.VersionEntry
	pages := 0
	for token := ""; pages == 0 || token != ""; pages++ {
		if pages > len(want) {
			t.Fatalf("ListVersions with MaxKeys 2 did not end after %d pages", pages)
		}
		page, err := b.ListVersions(ctx, backend.ListInput{Prefix: dir, MaxKeys: 2, Token: token})
		if err != nil {
			t.Fatalf("ListVersions page %d: %v", pages+1, err)
		}
		if len(page.Versions) > 2 {
			t.Errorf("page %d has %d entries, want at most 2", pages+1, len(page.Versions))
		}
		all = append(all, page.Versions...)
		token = page.NextToken
	}
	if got := describe(all); strings.Join(got, "\n") != strings.Join(want, "\n") || pages < 3 {
		t.Errorf("ListVersions in %d pages of 2 = %q, want %q in at least 3 pages", pages, got, want)
	}
}
