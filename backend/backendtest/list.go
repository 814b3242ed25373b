package backendtest

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/bucketfs/bucketfs/backend"
)

func testListDelimiter(t *testing.T, b backend.Bucket, prefix string) {
	for _, k := range []string{"a", "b/1", "b/2", "c/x/y", "d", "e/"} {
		put(t, b, prefix+k, k)
	}
	put(t, b, "ListDelimiterX", "outside the prefix") // shares the prefix's first bytes
	if _, err := b.Put(t.Context(), backend.PutInput{Key: prefix + "a", Body: strings.NewReader("a"), Size: 1, SSE: "AES256",
		ContentType: "text/plain", Metadata: map[string]string{"mode": "33261", "color": "Blue"}}); err != nil {
		t.Fatal(err)
	}
	page, err := b.List(t.Context(), backend.ListInput{Prefix: prefix, Delimiter: "/"})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if page.NextToken != "" {
		t.Errorf("List NextToken = %q, want the last page", page.NextToken)
	}
	if got, want := objectKeys(page.Objects), []string{prefix + "a", prefix + "d"}; !slices.Equal(got, want) {
		t.Errorf("List Objects = %q, want %q", got, want)
	}
	if want := []string{prefix + "b/", prefix + "c/", prefix + "e/"}; !slices.Equal(page.Prefixes, want) {
		t.Errorf("List Prefixes = %q, want %q", page.Prefixes, want)
	}
	for _, o := range page.Objects {
		name := strings.TrimPrefix(o.Key, prefix)
		if o.Size != int64(len(name)) || o.ETag != md5hex(name) || o.LastModified.IsZero() {
			t.Errorf("listed %+v: want size %d, etag %s and a time", o, len(name), md5hex(name))
		}
		// A listing may carry headers (MinIO's extension); then they are
		// the object's own.
		if o.HasHeaders {
			head, err := b.Head(t.Context(), o.Key)
			if err != nil {
				t.Fatal(err)
			}
			if o.ContentType != head.ContentType || !maps.Equal(o.Metadata, head.Metadata) || o.SSE != head.SSE {
				t.Errorf("listed headers %q %v sse %q, Head says %q %v sse %q", o.ContentType, o.Metadata, o.SSE, head.ContentType, head.Metadata, head.SSE)
			}
		}
	}

	// The marker of directory e/ is listed as an object under it.
	page, err = b.List(t.Context(), backend.ListInput{Prefix: prefix + "e/", Delimiter: "/"})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got := objectKeys(page.Objects); !slices.Equal(got, []string{prefix + "e/"}) || len(page.Prefixes) != 0 {
		t.Errorf("List of a marker's prefix = %q, %q; want the marker only", got, page.Prefixes)
	}
}

func testListPagination(t *testing.T, b backend.Bucket, prefix string) {
	var wantObjects, wantPrefixes, all []string
	for _, name := range []string{"a", "c", "e", "g", "i", "k", "m"} {
		wantObjects = append(wantObjects, prefix+name)
		all = append(all, prefix+name)
	}
	for _, dir := range []string{"b/", "d/", "f/", "h/", "j/"} {
		wantPrefixes = append(wantPrefixes, prefix+dir)
		all = append(all, prefix+dir+"1", prefix+dir+"2")
	}
	slices.Sort(all)
	for _, k := range all {
		put(t, b, k, "x")
	}

	for _, maxKeys := range []int{1, 2, 3, 5} {
		objects, prefixes, pages := listAll(t, b, backend.ListInput{Prefix: prefix, Delimiter: "/", MaxKeys: maxKeys})
		if !slices.Equal(objects, wantObjects) || !slices.Equal(prefixes, wantPrefixes) {
			t.Errorf("List by %d: objects %q, prefixes %q; want %q, %q", maxKeys, objects, prefixes, wantObjects, wantPrefixes)
		}
		if minPages := (len(wantObjects) + len(wantPrefixes)) / maxKeys; pages < minPages {
			t.Errorf("List by %d took %d pages, want at least %d", maxKeys, pages, minPages)
		}
		objects, _, _ = listAll(t, b, backend.ListInput{Prefix: prefix, MaxKeys: maxKeys})
		if !slices.Equal(objects, all) {
			t.Errorf("List without delimiter by %d = %q, want %q", maxKeys, objects, all)
		}
	}
}

func testListNoDelimiter(t *testing.T, b backend.Bucket, prefix string) {
	keys := []string{prefix + "a", prefix + "b/1", prefix + "b/2/x", prefix + "c"}
	for _, k := range slices.Backward(keys) {
		put(t, b, k, "x")
	}
	page, err := b.List(t.Context(), backend.ListInput{Prefix: prefix})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got := objectKeys(page.Objects); !slices.Equal(got, keys) || len(page.Prefixes) != 0 || page.NextToken != "" {
		t.Errorf("List = %q, %q, %q; want %q only", got, page.Prefixes, page.NextToken, keys)
	}
	page, err = b.List(t.Context(), backend.ListInput{Prefix: prefix + "b/"})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got := objectKeys(page.Objects); !slices.Equal(got, keys[1:3]) {
		t.Errorf("List of b/ = %q, want %q", got, keys[1:3])
	}
}

func testHasPrefix(t *testing.T, b backend.Bucket, prefix string) {
	put(t, b, prefix+"dir/sub/file", "x")
	for p, want := range map[string]bool{
		prefix:                   true,
		prefix + "dir/":          true,
		prefix + "dir/sub/":      true,
		prefix + "di":            true,
		prefix + "dir/sub/file":  true,
		prefix + "dir/other/":    false,
		prefix + "dir/sub/file/": false,
		prefix + "zzz":           false,
	} {
		got, err := b.HasPrefix(t.Context(), p)
		if err != nil || got != want {
			t.Errorf("HasPrefix(%q) = %v, %v; want %v", p, got, err, want)
		}
	}
}

// listAll collects every page of a listing, failing on a key seen twice.
func listAll(t *testing.T, b backend.Bucket, in backend.ListInput) (objects, prefixes []string, pages int) {
	t.Helper()
	seen := map[string]bool{}
	for {
		page, err := b.List(t.Context(), in)
		if err != nil {
			t.Fatalf("List(%+v): %v", in, err)
		}
		pages++
		if in.MaxKeys > 0 && len(page.Objects)+len(page.Prefixes) > in.MaxKeys {
			t.Errorf("List(%+v) returned %d entries", in, len(page.Objects)+len(page.Prefixes))
		}
		for _, k := range append(objectKeys(page.Objects), page.Prefixes...) {
			if seen[k] {
				t.Errorf("List(%+v): %q listed twice", in, k)
			}
			seen[k] = true
		}
		objects = append(objects, objectKeys(page.Objects)...)
		prefixes = append(prefixes, page.Prefixes...)
		if page.NextToken == "" {
			return objects, prefixes, pages
		}
		if pages > 1000 {
			t.Fatalf("List(%+v) does not end", in)
		}
		in.Token = page.NextToken
	}
}
