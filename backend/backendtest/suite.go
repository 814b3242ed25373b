// Package backendtest is the conformance suite of the backend.Bucket contract,
// run against every implementation (the in-memory bucket always, S3 against
// MinIO in the integration tier).
package backendtest

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
)

// Run runs the suite. newBucket is called once per subtest and must return
// a bucket of that subtest's own: most subtests keep to their own key
// prefix, but some change bucket-wide settings (versioning, policy).
func Run(t *testing.T, newBucket func(t *testing.T) backend.Bucket) {
	RunSkipping(t, newBucket, nil)
}

// RunSkipping runs the suite but the subtests named in skip, which are
// skipped with the reason given: features a server lacks, said by name,
// never passed silently.
func RunSkipping(t *testing.T, newBucket func(t *testing.T) backend.Bucket, skip map[string]string) {
	tests := []struct {
		name string
		run  func(t *testing.T, b backend.Bucket, prefix string)
	}{
		{"PutHead", testPutHead},
		{"HeadMissing", testHeadMissing},
		{"Get", testGet},
		{"GetPastEnd", testGetPastEnd},
		{"GetIfMatch", testGetIfMatch},
		{"ListDelimiter", testListDelimiter},
		{"ListPagination", testListPagination},
		{"ListNoDelimiter", testListNoDelimiter},
		{"HasPrefix", testHasPrefix},
		{"ConditionalPut", testConditionalPut},
		{"Delete", testDelete},
		{"KeyNames", testKeyNames},
		{"Copy", testCopy},
		{"CopyKeyNames", testCopyKeyNames},
		{"Multipart", testMultipart},
		{"MultipartInvalid", testMultipartInvalid},
		{"ConditionalComplete", testConditionalComplete},
		{"AbortUpload", testAbortUpload},
		{"ListUploads", testListUploads},
		{"SSE", testSSE},
		{"StorageClass", testStorageClass},
		{"CopySettings", testCopySettings},
		{"CopyVersion", testCopyVersion},
		{"Versions", testVersions},
		{"GetVersion", testGetVersion},
		{"ListVersions", testListVersions},
		{"Presign", testPresign},
		{"ACL", testACL},
		{"Versioning", testVersioning},
		{"Policy", testPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if reason, ok := skip[tt.name]; ok {
				t.Skip(reason)
			}
			t.Parallel()
			tt.run(t, newBucket(t), tt.name+"/")
		})
	}
}

func testPutHead(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	key := prefix + "file.txt"
	data := "hello, world"
	meta := map[string]string{"mode": "33188", "uid": "1000", "mtime": "1700000000.123456789"}
	before := time.Now().Add(-time.Hour)
	put, err := b.Put(ctx, backend.PutInput{
		Key: key, Body: strings.NewReader(data), Size: int64(len(data)),
		ContentType: "text/plain", Metadata: meta,
	})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if want := md5hex(data); put.ETag != want {
		t.Errorf("Put ETag = %q, want %q", put.ETag, want)
	}
	head, err := b.Head(ctx, key)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	checkObject(t, "Head", head, key, data)
	if head.ContentType != "text/plain" {
		t.Errorf("Head ContentType = %q, want text/plain", head.ContentType)
	}
	if !maps.Equal(head.Metadata, meta) {
		t.Errorf("Head Metadata = %v, want %v", head.Metadata, meta)
	}
	if head.ETag != put.ETag || head.VersionID != put.VersionID {
		t.Errorf("Head ETag, VersionID = %q, %q; Put said %q, %q", head.ETag, head.VersionID, put.ETag, put.VersionID)
	}
	if head.VersionID == "" || head.StorageClass == "" {
		t.Errorf("Head VersionID, StorageClass = %q, %q; want both set", head.VersionID, head.StorageClass)
	}
	if head.LastModified.Before(before) || head.LastModified.After(time.Now().Add(time.Hour)) {
		t.Errorf("Head LastModified = %v, want about now", head.LastModified)
	}

	// A body that cannot seek, without metadata or content type.
	key2 := prefix + "stream"
	body := io.MultiReader(strings.NewReader("abc"), strings.NewReader("def"))
	if _, err := b.Put(ctx, backend.PutInput{Key: key2, Body: body, Size: 6}); err != nil {
		t.Fatalf("Put of a stream: %v", err)
	}
	head, err = b.Head(ctx, key2)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	checkObject(t, "Head of a stream", head, key2, "abcdef")
	if head.ContentType == "" || head.Metadata == nil || len(head.Metadata) != 0 {
		t.Errorf("Head ContentType, Metadata = %q, %v; want a default and an empty map", head.ContentType, head.Metadata)
	}
}

func testHeadMissing(t *testing.T, b backend.Bucket, prefix string) {
	_, err := b.Head(t.Context(), prefix+"missing")
	if !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Head of a missing key: %v, want ErrNotFound", err)
	}
	_, _, err = b.Get(t.Context(), backend.GetInput{Key: prefix + "missing", Length: -1})
	if !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Get of a missing key: %v, want ErrNotFound", err)
	}
}

func testGet(t *testing.T, b backend.Bucket, prefix string) {
	key := prefix + "digits"
	data := "0123456789"
	put(t, b, key, data)
	tests := []struct {
		offset, length int64
		want           string
	}{
		{0, -1, data},
		{0, 10, data},
		{0, 100, data},
		{2, 3, "234"},
		{7, -1, "789"},
		{9, 1, "9"},
		{4, 0, ""},
	}
	for _, tt := range tests {
		got, obj, err := get(t, b, backend.GetInput{Key: key, Offset: tt.offset, Length: tt.length})
		if err != nil {
			t.Errorf("Get(%d, %d): %v", tt.offset, tt.length, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Get(%d, %d) = %q, want %q", tt.offset, tt.length, got, tt.want)
		}
		checkObject(t, "Get", obj, key, data)
	}
}

func testGetPastEnd(t *testing.T, b backend.Bucket, prefix string) {
	key, empty := prefix+"abc", prefix+"empty"
	put(t, b, key, "abc")
	put(t, b, empty, "")
	tests := []struct {
		key            string
		data           string
		offset, length int64
	}{
		{key, "abc", 3, -1},
		{key, "abc", 3, 10},
		{key, "abc", 1000, -1},
		{empty, "", 0, -1},
		{empty, "", 0, 10},
		{empty, "", 5, -1},
	}
	for _, tt := range tests {
		got, obj, err := get(t, b, backend.GetInput{Key: tt.key, Offset: tt.offset, Length: tt.length})
		if err != nil {
			t.Errorf("Get(%q, %d, %d): %v, want an empty body", tt.key, tt.offset, tt.length, err)
			continue
		}
		if got != "" {
			t.Errorf("Get(%q, %d, %d) = %q, want empty", tt.key, tt.offset, tt.length, got)
		}
		checkObject(t, "Get past the end", obj, tt.key, tt.data)
	}
}

func testGetIfMatch(t *testing.T, b backend.Bucket, prefix string) {
	key := prefix + "obj"
	obj := put(t, b, key, "version one")
	_, _, err := get(t, b, backend.GetInput{Key: key, Length: -1, IfMatch: md5hex("other")})
	if !errors.Is(err, backend.ErrPrecondition) {
		t.Errorf("Get with a wrong IfMatch: %v, want ErrPrecondition", err)
	}
	got, _, err := get(t, b, backend.GetInput{Key: key, Offset: 8, Length: -1, IfMatch: obj.ETag})
	if err != nil || got != "one" {
		t.Errorf("Get with the right IfMatch = %q, %v; want \"one\"", got, err)
	}
	got, _, err = get(t, b, backend.GetInput{Key: key, Offset: 100, Length: -1, IfMatch: obj.ETag})
	if err != nil || got != "" {
		t.Errorf("Get past the end with the right IfMatch = %q, %v; want an empty body", got, err)
	}
}

func testConditionalPut(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	key := prefix + "obj"
	first, err := b.Put(ctx, backend.PutInput{Key: key, Body: strings.NewReader("one"), Size: 3, IfNoneMatch: true})
	if err != nil {
		t.Fatalf("Put IfNoneMatch of a new key: %v", err)
	}
	_, err = b.Put(ctx, backend.PutInput{Key: key, Body: strings.NewReader("two"), Size: 3, IfNoneMatch: true})
	if !errors.Is(err, backend.ErrPrecondition) {
		t.Errorf("Put IfNoneMatch of an existing key: %v, want ErrPrecondition", err)
	}
	_, err = b.Put(ctx, backend.PutInput{Key: key, Body: strings.NewReader("two"), Size: 3, IfMatch: md5hex("other")})
	if !errors.Is(err, backend.ErrPrecondition) {
		t.Errorf("Put with a wrong IfMatch: %v, want ErrPrecondition", err)
	}
	_, err = b.Put(ctx, backend.PutInput{Key: prefix + "missing", Body: strings.NewReader("two"), Size: 3, IfMatch: first.ETag})
	if !errors.Is(err, backend.ErrPrecondition) {
		t.Errorf("Put with IfMatch of a missing key: %v, want ErrPrecondition", err)
	}
	if _, err := b.Put(ctx, backend.PutInput{Key: key, Body: strings.NewReader("three"), Size: 5, IfMatch: first.ETag}); err != nil {
		t.Errorf("Put with the right IfMatch: %v", err)
	}
	if got, _, err := get(t, b, backend.GetInput{Key: key, Length: -1}); err != nil || got != "three" {
		t.Errorf("Get after the conditional puts = %q, %v; want \"three\"", got, err)
	}
}

func testDelete(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	key := prefix + "obj"
	put(t, b, key, "x")
	put(t, b, key+"2", "x")
	if err := b.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := b.Head(ctx, key); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Head after Delete: %v, want ErrNotFound", err)
	}
	if _, err := b.Head(ctx, key+"2"); err != nil {
		t.Errorf("Head of a neighbour after Delete: %v", err)
	}
	if err := b.Delete(ctx, prefix+"missing"); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil", err)
	}
}

func testKeyNames(t *testing.T, b backend.Bucket, prefix string) {
	names := []string{"with space", "a+b", "100% sure", "ünïcödé/ключ", "日本語.txt", "tab\there", "q?x=1&y#z", "~tilde"}
	var keys []string
	for _, name := range names {
		key := prefix + name
		keys = append(keys, key)
		put(t, b, key, name)
		head, err := b.Head(t.Context(), key)
		if err != nil {
			t.Errorf("Head(%q): %v", key, err)
			continue
		}
		checkObject(t, "Head", head, key, name)
		if got, _, err := get(t, b, backend.GetInput{Key: key, Length: -1}); err != nil || got != name {
			t.Errorf("Get(%q) = %q, %v; want %q", key, got, err, name)
		}
	}
	slices.Sort(keys)
	objects, _, _ := listAll(t, b, backend.ListInput{Prefix: prefix, MaxKeys: 3})
	if !slices.Equal(objects, keys) {
		t.Errorf("List = %q, want %q", objects, keys)
	}
	objects, prefixes, _ := listAll(t, b, backend.ListInput{Prefix: prefix + "a+", Delimiter: "/"})
	if !slices.Equal(objects, []string{prefix + "a+b"}) || len(prefixes) != 0 {
		t.Errorf("List of prefix a+ = %q, %q; want the key a+b only", objects, prefixes)
	}
	if err := b.Delete(t.Context(), prefix+"a+b"); err != nil {
		t.Errorf("Delete(a+b): %v", err)
	}
	if _, err := b.Head(t.Context(), prefix+"a b"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Head(a b): %v, want ErrNotFound (a+b must not be read as a b)", err)
	}
}

// put stores data under key and fails the test if it cannot.
func put(t *testing.T, b backend.Bucket, key, data string) backend.Object {
	t.Helper()
	obj, err := b.Put(t.Context(), backend.PutInput{Key: key, Body: strings.NewReader(data), Size: int64(len(data))})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return obj
}

// get reads a range completely.
func get(t *testing.T, b backend.Bucket, in backend.GetInput) (string, backend.Object, error) {
	t.Helper()
	body, obj, err := b.Get(t.Context(), in)
	if err != nil {
		return "", obj, err
	}
	defer body.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, body); err != nil {
		return "", obj, err
	}
	return buf.String(), obj, nil
}

// checkObject checks what Head and Get must say about an object holding data.
func checkObject(t *testing.T, what string, o backend.Object, key, data string) {
	t.Helper()
	if o.Key != key || o.Size != int64(len(data)) || o.ETag != md5hex(data) || !o.HasHeaders {
		t.Errorf("%s = key %q, size %d, etag %q, headers %v; want %q, %d, %q, true",
			what, o.Key, o.Size, o.ETag, o.HasHeaders, key, len(data), md5hex(data))
	}
}

func objectKeys(objects []backend.Object) []string {
	keys := make([]string, len(objects))
	for i, o := range objects {
		keys[i] = o.Key
	}
	return keys
}

// md5hex is the ETag S3 gives an object stored with a single PutObject.
func md5hex(data string) string {
	sum := md5.Sum([]byte(data))
	return hex.EncodeToString(sum[:])
}
