package backendtest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
)

// minPart is the smallest part but the last that S3 accepts.
const minPart = 5 << 20

func testCopy(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	src, data := prefix+"src", "copy me"
	size := int64(len(data))
	meta := map[string]string{"mode": "33188", "uid": "1000", "gid": "1000", "mtime": "1700000000.123456789", "color": "blue"}
	orig, err := b.Put(ctx, backend.PutInput{Key: src, Body: strings.NewReader(data), Size: size, ContentType: "text/plain", Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}

	// SrcSize 0 leaves the size for the backend to find out.
	for _, srcSize := range []int64{0, size} {
		dst := fmt.Sprintf("%skept-%d", prefix, srcSize)
		obj, err := b.Copy(ctx, backend.CopyInput{Src: src, Dst: dst, SrcSize: srcSize})
		if err != nil {
			t.Errorf("Copy with SrcSize %d: %v", srcSize, err)
			continue
		}
		checkCopy(t, b, obj, dst, data, "text/plain", meta)
	}

	replaced := map[string]string{"mode": "33261", "uid": "0", "gid": "0", "mtime": "1.000000000"}
	obj, err := b.Copy(ctx, backend.CopyInput{Src: src, Dst: prefix + "replaced", SrcETag: orig.ETag, SrcSize: size,
		ReplaceHeaders: true, ContentType: "application/json", Metadata: replaced})
	if err != nil {
		t.Errorf("Copy replacing headers: %v", err)
	} else {
		checkCopy(t, b, obj, prefix+"replaced", data, "application/json", replaced)
	}

	// A copy onto itself changes headers in place (content type, xattrs).
	obj, err = b.Copy(ctx, backend.CopyInput{Src: src, Dst: src, SrcETag: orig.ETag, SrcSize: size,
		ReplaceHeaders: true, ContentType: "text/markdown", Metadata: replaced})
	if err != nil {
		t.Errorf("Copy onto itself: %v", err)
	} else {
		checkCopy(t, b, obj, src, data, "text/markdown", replaced)
	}

	// S3 refuses a copy onto itself that changes nothing.
	if _, err := b.Copy(ctx, backend.CopyInput{Src: src, Dst: src, SrcSize: size}); !errors.Is(err, backend.ErrInvalid) {
		t.Errorf("Copy onto itself keeping the headers: %v, want ErrInvalid", err)
	}

	for _, srcSize := range []int64{0, size} {
		_, err := b.Copy(ctx, backend.CopyInput{Src: src, Dst: prefix + "stale", SrcETag: md5hex("other"), SrcSize: srcSize})
		if !errors.Is(err, backend.ErrPrecondition) {
			t.Errorf("Copy with a stale SrcETag, SrcSize %d: %v, want ErrPrecondition", srcSize, err)
		}
		_, err = b.Copy(ctx, backend.CopyInput{Src: prefix + "missing", Dst: prefix + "none", SrcSize: srcSize})
		if !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("Copy of a missing source, SrcSize %d: %v, want ErrNotFound", srcSize, err)
		}
	}
	for _, key := range []string{prefix + "stale", prefix + "none"} {
		if _, err := b.Head(ctx, key); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("Head(%q) after a failed copy: %v, want ErrNotFound", key, err)
		}
	}

	// Conditions on the destination, as on a Put: a copy never replaces a
	// version it was not meant to.
	kept := prefix + "kept-0"
	current, err := b.Head(ctx, kept)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]backend.CopyInput{
		"if-none-match on an existing key": {Src: src, Dst: kept, DstIfNoneMatch: true, ReplaceHeaders: true, ContentType: "text/x-new"},
		"if-match on another version":      {Src: src, Dst: kept, DstIfMatch: md5hex("other"), ReplaceHeaders: true, ContentType: "text/x-new"},
	} {
		if _, err := b.Copy(ctx, in); !errors.Is(err, backend.ErrPrecondition) {
			t.Errorf("Copy %s: %v, want ErrPrecondition", name, err)
		}
	}
	if obj, err := b.Head(ctx, kept); err != nil || obj.ContentType != "text/plain" {
		t.Errorf("after refused copies %s is %+v, %v", kept, obj, err)
	}
	if _, err := b.Copy(ctx, backend.CopyInput{Src: src, Dst: kept, DstIfMatch: current.ETag, ReplaceHeaders: true,
		ContentType: "text/x-new", Metadata: meta}); err != nil {
		t.Errorf("Copy if-match on the current version: %v", err)
	}
	if _, err := b.Copy(ctx, backend.CopyInput{Src: src, Dst: prefix + "fresh", DstIfNoneMatch: true}); err != nil {
		t.Errorf("Copy if-none-match onto a free key: %v", err)
	}
}

// testCopyKeyNames copies keys whose escaping goes wrong easily. Decoys
// hold the keys a wrong decoding would read: "a b" for "a+b", "x+y" for
// "x%2By".
func testCopyKeyNames(t *testing.T, b backend.Bucket, prefix string) {
	put(t, b, prefix+"src/a b", "decoy")
	put(t, b, prefix+"src/x+y", "decoy")
	names := []string{"with space", "a+b", "x%2By", "100% sure", "ünïcödé/ключ", "日本語.txt", "q?x=1&y#z", "tab\there", "~tilde"}
	for _, name := range names {
		src := prefix + "src/" + name
		dst := prefix + "dst/" + name + " (copy+1%)"
		put(t, b, src, name)
		for _, srcSize := range []int64{0, int64(len(name))} {
			obj, err := b.Copy(t.Context(), backend.CopyInput{Src: src, Dst: dst, SrcSize: srcSize})
			if err != nil {
				t.Errorf("Copy(%q, %q): %v", src, dst, err)
				continue
			}
			if obj.Key != dst {
				t.Errorf("Copy(%q) returned key %q", dst, obj.Key)
			}
			if got, _, err := get(t, b, backend.GetInput{Key: dst, Length: -1}); err != nil || got != name {
				t.Errorf("Get(%q) after Copy = %q, %v; want %q", dst, got, err, name)
			}
		}
	}
}

func testMultipart(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	key := prefix + "big"
	meta := map[string]string{"mode": "33188", "uid": "1000", "gid": "1000", "mtime": "1700000000.000000001"}
	id := startUpload(t, b, backend.PutInput{Key: key, ContentType: "text/plain", Metadata: meta})
	first := bytes.Repeat([]byte("0123456789abcdef"), minPart/16)
	last := []byte("the tail")
	// Parts may arrive in any order.
	p2 := uploadPart(t, b, key, id, 2, last)
	p1 := uploadPart(t, b, key, id, 1, first)

	obj, err := b.CompleteUpload(ctx, backend.CompleteInput{Key: key, UploadID: id, Parts: []backend.Part{p1, p2},
		Size: int64(len(first) + len(last)), Headers: backend.PutInput{Key: key, ContentType: "text/plain", Metadata: meta}})
	if err != nil {
		t.Fatalf("CompleteUpload: %v", err)
	}
	if want := multipartETag(first, last); obj.Key != key || obj.ETag != want {
		t.Errorf("CompleteUpload = key %q, etag %q; want %q, %q", obj.Key, obj.ETag, key, want)
	}
	head, err := b.Head(ctx, key)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	size := int64(len(first) + len(last))
	if head.Size != size || head.ETag != obj.ETag || head.VersionID != obj.VersionID {
		t.Errorf("Head = size %d, etag %q, version %q; want %d and CompleteUpload's %q, %q",
			head.Size, head.ETag, head.VersionID, size, obj.ETag, obj.VersionID)
	}
	if head.ContentType != "text/plain" || !maps.Equal(head.Metadata, meta) {
		t.Errorf("Head headers = %q %v, want text/plain %v", head.ContentType, head.Metadata, meta)
	}
	if obj.HasHeaders && (obj.Size != size || obj.ContentType != head.ContentType || !maps.Equal(obj.Metadata, head.Metadata)) {
		t.Errorf("CompleteUpload = %+v, Head says %+v", obj, head)
	}
	got, _, err := get(t, b, backend.GetInput{Key: key, Length: -1})
	if want := string(first) + string(last); err != nil || got != want {
		t.Errorf("Get of the whole object: %d bytes, %v; want the %d bytes of the parts", len(got), err, len(want))
	}
	got, _, err = get(t, b, backend.GetInput{Key: key, Offset: minPart - 3, Length: 6})
	if err != nil || got != "defthe" {
		t.Errorf("Get across the parts = %q, %v; want \"defthe\"", got, err)
	}

	// A copy is stored whole: its ETag is the MD5 of the data.
	whole := string(first) + string(last)
	copied, err := b.Copy(ctx, backend.CopyInput{Src: key, Dst: key + " copy", SrcSize: size})
	if err != nil {
		t.Fatalf("Copy of a multipart object: %v", err)
	}
	checkCopy(t, b, copied, key+" copy", whole, "text/plain", meta)
}

func testMultipartInvalid(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	key := prefix + "obj"
	id := startUpload(t, b, backend.PutInput{Key: key})
	p1 := uploadPart(t, b, key, id, 1, []byte("under 5 MiB"))
	p2 := uploadPart(t, b, key, id, 2, []byte("last"))
	for _, tt := range []struct {
		what  string
		parts []backend.Part
	}{
		{"a small part before the last", []backend.Part{p1, p2}},
		{"no parts", nil},
		{"parts out of order", []backend.Part{p2, p1}},
		{"a wrong part ETag", []backend.Part{{Number: 1, ETag: md5hex("other")}}},
	} {
		_, err := b.CompleteUpload(ctx, backend.CompleteInput{Key: key, UploadID: id, Parts: tt.parts})
		if !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("CompleteUpload with %s: %v, want ErrInvalid", tt.what, err)
		}
	}
	if _, err := b.Head(ctx, key); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Head after failed completions: %v, want ErrNotFound", err)
	}
}

func testConditionalComplete(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	key := prefix + "obj"
	existing := put(t, b, key, "existing")
	id := startUpload(t, b, backend.PutInput{Key: key})
	parts := []backend.Part{uploadPart(t, b, key, id, 1, []byte("new body"))}
	_, err := b.CompleteUpload(ctx, backend.CompleteInput{Key: key, UploadID: id, Parts: parts, IfNoneMatch: true})
	if !errors.Is(err, backend.ErrPrecondition) {
		t.Errorf("CompleteUpload IfNoneMatch of an existing key: %v, want ErrPrecondition", err)
	}
	// The upload stays open after a failed condition.
	_, err = b.CompleteUpload(ctx, backend.CompleteInput{Key: key, UploadID: id, Parts: parts, IfMatch: md5hex("other")})
	if !errors.Is(err, backend.ErrPrecondition) {
		t.Errorf("CompleteUpload with a wrong IfMatch: %v, want ErrPrecondition", err)
	}
	if _, err := b.CompleteUpload(ctx, backend.CompleteInput{Key: key, UploadID: id, Parts: parts, IfMatch: existing.ETag}); err != nil {
		t.Errorf("CompleteUpload with the right IfMatch: %v", err)
	}
	if got, _, err := get(t, b, backend.GetInput{Key: key, Length: -1}); err != nil || got != "new body" {
		t.Errorf("Get after the conditional completion = %q, %v; want \"new body\"", got, err)
	}

	key = prefix + "new"
	id = startUpload(t, b, backend.PutInput{Key: key})
	parts = []backend.Part{uploadPart(t, b, key, id, 1, []byte("brand new"))}
	_, err = b.CompleteUpload(ctx, backend.CompleteInput{Key: key, UploadID: id, Parts: parts, IfMatch: existing.ETag})
	if !errors.Is(err, backend.ErrPrecondition) {
		t.Errorf("CompleteUpload with IfMatch of a missing key: %v, want ErrPrecondition", err)
	}
	if _, err := b.CompleteUpload(ctx, backend.CompleteInput{Key: key, UploadID: id, Parts: parts, IfNoneMatch: true}); err != nil {
		t.Errorf("CompleteUpload IfNoneMatch of a new key: %v", err)
	}
}

func testAbortUpload(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	key := prefix + "obj"
	id := startUpload(t, b, backend.PutInput{Key: key})
	parts := []backend.Part{uploadPart(t, b, key, id, 1, []byte("data"))}
	if err := b.AbortUpload(ctx, key, id); err != nil {
		t.Fatalf("AbortUpload: %v", err)
	}
	if _, err := b.CompleteUpload(ctx, backend.CompleteInput{Key: key, UploadID: id, Parts: parts}); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("CompleteUpload after AbortUpload: %v, want ErrNotFound", err)
	}
	_, err := b.UploadPart(ctx, backend.PartInput{Key: key, UploadID: id, Number: 2, Body: strings.NewReader("x"), Size: 1})
	if !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("UploadPart after AbortUpload: %v, want ErrNotFound", err)
	}
	if _, err := b.Head(ctx, key); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Head after AbortUpload: %v, want ErrNotFound", err)
	}
	if err := b.AbortUpload(ctx, key, id); err != nil {
		t.Errorf("AbortUpload twice: %v, want nil", err)
	}
	if err := b.AbortUpload(ctx, key, "no-such-upload"); err != nil {
		t.Errorf("AbortUpload of an unknown upload: %v, want nil", err)
	}
}

// testListUploads: the uploads of exactly a key, not of keys it is a
// prefix of, dated by the server; AbortUploadsStarted aborts those begun
// in its window but the one kept.
func testListUploads(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	key := prefix + "obj"
	before := time.Now()
	first := startUpload(t, b, backend.PutInput{Key: key})
	second := startUpload(t, b, backend.PutInput{Key: key})
	startUpload(t, b, backend.PutInput{Key: key + "x"})
	uploads, err := b.ListUploads(ctx, key)
	if err != nil {
		t.Fatalf("ListUploads: %v", err)
	}
	var ids []string
	for _, u := range uploads {
		ids = append(ids, u.ID)
		if d := u.Initiated.Sub(before); d < -backend.ClockSlack || d > backend.ClockSlack {
			t.Errorf("upload %s initiated at %v, %v from its request", u.ID, u.Initiated, d)
		}
	}
	if slices.Sort(ids); !slices.Equal(ids, sorted(first, second)) {
		t.Errorf("ListUploads(%q) = %q, want %q", key, ids, sorted(first, second))
	}
	// A window that ended before they began leaves them be.
	if n, err := backend.AbortUploadsStarted(ctx, b, key, before.Add(-time.Hour), before.Add(-time.Hour), ""); err != nil || n != 0 {
		t.Errorf("AbortUploadsStarted an hour back = %d, %v; want 0", n, err)
	}
	if n, err := backend.AbortUploadsStarted(ctx, b, key, before, time.Now(), second); err != nil || n != 1 {
		t.Errorf("AbortUploadsStarted = %d, %v; want 1", n, err)
	}
	if uploads, _ := b.ListUploads(ctx, key); len(uploads) != 1 || uploads[0].ID != second {
		t.Errorf("after the abort, open: %+v; want only %s", uploads, second)
	}
	if uploads, err := b.ListUploads(ctx, prefix+"none"); err != nil || len(uploads) != 0 {
		t.Errorf("ListUploads of a key without uploads = %+v, %v", uploads, err)
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// startUpload starts an upload and aborts it when the test ends, in case
// the test does not get to complete it.
func startUpload(t *testing.T, b backend.Bucket, in backend.PutInput) string {
	t.Helper()
	id, err := b.StartUpload(t.Context(), in)
	if err != nil {
		t.Fatalf("StartUpload(%q): %v", in.Key, err)
	}
	t.Cleanup(func() {
		if err := b.AbortUpload(context.Background(), in.Key, id); err != nil {
			t.Errorf("AbortUpload(%q) at cleanup: %v", in.Key, err)
		}
	})
	return id
}

func uploadPart(t *testing.T, b backend.Bucket, key, id string, n int, data []byte) backend.Part {
	t.Helper()
	etag, err := b.UploadPart(t.Context(), backend.PartInput{Key: key, UploadID: id, Number: n, Body: bytes.NewReader(data), Size: int64(len(data))})
	if err != nil {
		t.Fatalf("UploadPart(%q, %d): %v", key, n, err)
	}
	if want := md5hex(string(data)); etag != want {
		t.Errorf("UploadPart(%q, %d) ETag = %q, want %q", key, n, etag, want)
	}
	return backend.Part{Number: n, ETag: etag}
}

// checkCopy checks a copy's answer and what Head and Get say about it.
func checkCopy(t *testing.T, b backend.Bucket, obj backend.Object, key, data, contentType string, meta map[string]string) {
	t.Helper()
	if obj.Key != key || obj.Size != int64(len(data)) || obj.ETag != md5hex(data) || obj.VersionID == "" {
		t.Errorf("Copy = key %q, size %d, etag %q, version %q; want %q, %d, %q and a version",
			obj.Key, obj.Size, obj.ETag, obj.VersionID, key, len(data), md5hex(data))
	}
	if obj.HasHeaders && (obj.ContentType != contentType || !maps.Equal(obj.Metadata, meta)) {
		t.Errorf("Copy headers = %q %v, want %q %v", obj.ContentType, obj.Metadata, contentType, meta)
	}
	head, err := b.Head(t.Context(), key)
	if err != nil {
		t.Errorf("Head(%q) after Copy: %v", key, err)
		return
	}
	checkObject(t, "Head after Copy", head, key, data)
	if head.ContentType != contentType || !maps.Equal(head.Metadata, meta) {
		t.Errorf("Head(%q) headers = %q %v, want %q %v", key, head.ContentType, head.Metadata, contentType, meta)
	}
	if got, _, err := get(t, b, backend.GetInput{Key: key, Length: -1}); err != nil || got != data {
		t.Errorf("Get(%q) after Copy: %d bytes (MD5 %s), %v; want %d bytes (MD5 %s)", key, len(got), md5hex(got), err, len(data), md5hex(data))
	}
}

// multipartETag is the ETag S3 gives an object completed from these parts.
func multipartETag(parts ...[]byte) string {
	sums := md5.New()
	for _, p := range parts {
		sum := md5.Sum(p)
		sums.Write(sum[:])
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(sums.Sum(nil)), len(parts))
}
