package s3_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/s3"
)

// MinIO decodes x-amz-copy-source leniently ('+' stays '+'), so the
// conformance suite cannot catch a '+' that AWS would read as a space.
func TestCopySource(t *testing.T) {
	tests := []struct{ key, want string }{
		{"plain", "b/plain"},
		{"a+b", "b/a%2Bb"},
		{"dir/with space", "b/dir/with%20space"},
		{"100% sure", "b/100%25%20sure"},
		{"x%2By", "b/x%252By"},
		{"ü/日", "b/%C3%BC/%E6%97%A5"},
		{"q?x=1&y#z", "b/q%3Fx=1&y%23z"},
		{"dir/", "b/dir/"},
	}
	for _, tt := range tests {
		got := s3.CopySource("b", tt.key)
		if got != tt.want {
			t.Errorf("copySource(%q) = %q, want %q", tt.key, got, tt.want)
		}
		// Decoded as a query component would be, it is still the key.
		if back, err := url.QueryUnescape(strings.TrimPrefix(got, "b/")); err != nil || back != tt.key {
			t.Errorf("copySource(%q) decodes to %q, %v", tt.key, back, err)
		}
	}
}

// TestS3MultipartCopy lowers the 5 GiB threshold so that a 12 MiB object
// is copied in three UploadPartCopy parts of at most 5 MiB.
func TestS3MultipartCopy(t *testing.T) {
	srv := startMinIO(t)
	b := newBucket(t, srv, s3.Config{})
	b.SetCopyLimits(5<<20, 5<<20)
	ctx := t.Context()
	data := make([]byte, 12<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	size := int64(len(data))
	meta := map[string]string{"mode": "33188", "uid": "1000", "gid": "100", "mtime": "1700000000.500000000"}
	src, err := b.Put(ctx, backend.PutInput{Key: "dir/src file+1%", Body: bytes.NewReader(data), Size: size,
		ContentType: "video/mp4", Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}

	before := requestCounts(b)
	dst := "dir/dst ü+"
	obj, err := b.Copy(ctx, backend.CopyInput{Src: src.Key, Dst: dst, SrcETag: src.ETag, SrcSize: size})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	// One HEAD pins the source; then start, three parts, complete.
	if got, want := requestsSince(b, before), map[string]int64{"head": 1, "upload": 5}; !maps.Equal(got, want) {
		t.Errorf("Copy sent %v, want %v", got, want)
	}
	if obj.Key != dst || obj.Size != size || !strings.HasSuffix(obj.ETag, "-3") || !obj.HasHeaders ||
		obj.ContentType != "video/mp4" || !maps.Equal(obj.Metadata, meta) {
		t.Errorf("Copy = %+v; want %q, %d bytes, an ETag of 3 parts, the source's headers", obj, dst, size)
	}
	checkCopied(t, b, dst, obj.ETag, data, "video/mp4", meta)

	replaced := map[string]string{"mode": "33261"}
	obj, err = b.Copy(ctx, backend.CopyInput{Src: src.Key, Dst: "dir/replaced", SrcSize: size,
		ReplaceHeaders: true, ContentType: "text/plain", Metadata: replaced})
	if err != nil {
		t.Fatalf("Copy replacing headers: %v", err)
	}
	checkCopied(t, b, "dir/replaced", obj.ETag, data, "text/plain", replaced)

	before = requestCounts(b)
	_, err = b.Copy(ctx, backend.CopyInput{Src: src.Key, Dst: "dir/stale", SrcETag: "0123456789abcdef0123456789abcdef", SrcSize: size})
	if !errors.Is(err, backend.ErrPrecondition) {
		t.Errorf("Copy with a stale SrcETag: %v, want ErrPrecondition", err)
	}
	if got := requestsSince(b, before); !maps.Equal(got, map[string]int64{"head": 1}) {
		t.Errorf("Copy with a stale SrcETag sent %v, want one HEAD", got)
	}

	// Parts under 5 MiB make the completion fail; the upload is aborted.
	b.SetCopyLimits(1<<20, 1<<20)
	_, err = b.Copy(ctx, backend.CopyInput{Src: src.Key, Dst: "dir/small parts", SrcSize: size})
	if !errors.Is(err, backend.ErrInvalid) {
		t.Errorf("Copy in parts under 5 MiB: %v, want ErrInvalid", err)
	}
	uploads, err := srv.Client().ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: aws.String(b.Name())})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Errorf("%d uploads left open after a failed copy", len(uploads.Uploads))
	}
	if _, err := b.Head(ctx, "dir/small parts"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Head after a failed copy: %v, want ErrNotFound", err)
	}
}

// TestS3MultipartCopyConcurrency copies 40 one-byte parts from a fake
// server whose UploadPartCopy is slow: at most 8 are in flight, and a
// failing part aborts the upload.
func TestS3MultipartCopyConcurrency(t *testing.T) {
	setAWSEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret", "AWS_REGION=us-east-1")
	fake := &fakeCopyServer{size: 40, failPart: -1}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	b := newS3(t, srv.URL, s3.Config{Bucket: "b"})
	b.SetCopyLimits(1, 1)

	obj, err := b.Copy(t.Context(), backend.CopyInput{Src: "src", Dst: "dst"})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if obj.ETag != "done-40" || obj.Size != 40 {
		t.Errorf("Copy = %+v, want ETag done-40, 40 bytes", obj)
	}
	fake.mu.Lock()
	if fake.maxInFlight < 2 || fake.maxInFlight > 8 {
		t.Errorf("%d parts in flight at most, want 2 to 8", fake.maxInFlight)
	}
	if !strings.Contains(fake.ranges, "bytes=0-0 ") || !strings.Contains(fake.ranges, "bytes=39-39 ") {
		t.Errorf("copied ranges %s, want bytes=0-0 to bytes=39-39", fake.ranges)
	}
	fake.failPart = 5
	fake.mu.Unlock()

	_, err = b.Copy(t.Context(), backend.CopyInput{Src: "src", Dst: "dst"})
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if !errors.Is(err, backend.ErrAccessDenied) || !fake.aborted {
		t.Errorf("Copy with a failing part: %v, aborted %v; want ErrAccessDenied and an abort", err, fake.aborted)
	}
}

// fakeCopyServer answers the requests of a multipart copy of "src".
type fakeCopyServer struct {
	size int

	// mu protects the fields below.
	mu                    sync.Mutex
	failPart              int // answers AccessDenied to this part
	inFlight, maxInFlight int
	ranges                string
	aborted               bool
}

func (f *fakeCopyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodHead:
		w.Header().Set("Content-Length", fmt.Sprint(f.size))
		w.Header().Set("ETag", `"src-etag"`)
	case r.Method == http.MethodPost && q.Has("uploads"):
		fmt.Fprint(w, `<InitiateMultipartUploadResult><UploadId>u1</UploadId></InitiateMultipartUploadResult>`)
	case r.Method == http.MethodPut && q.Get("uploadId") == "u1":
		f.mu.Lock()
		f.inFlight++
		f.maxInFlight = max(f.maxInFlight, f.inFlight)
		f.ranges += r.Header.Get("X-Amz-Copy-Source-Range") + " "
		fail := q.Get("partNumber") == fmt.Sprint(f.failPart)
		f.mu.Unlock()
		defer func() { f.mu.Lock(); f.inFlight--; f.mu.Unlock() }()
		if r.Header.Get("X-Amz-Copy-Source-If-Match") != `"src-etag"` || fail {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<Error><Code>AccessDenied</Code></Error>`)
			return
		}
		time.Sleep(20 * time.Millisecond)
		fmt.Fprintf(w, `<CopyPartResult><ETag>"p%s"</ETag></CopyPartResult>`, q.Get("partNumber"))
	case r.Method == http.MethodPost && q.Get("uploadId") == "u1":
		fmt.Fprint(w, `<CompleteMultipartUploadResult><ETag>"done-40"</ETag></CompleteMultipartUploadResult>`)
	case r.Method == http.MethodDelete && q.Get("uploadId") == "u1":
		f.mu.Lock()
		f.aborted = true
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.String(), http.StatusBadRequest)
	}
}

// checkCopied checks a copy's bytes and headers as stored.
func checkCopied(t *testing.T, b backend.Bucket, key, etag string, data []byte, contentType string, meta map[string]string) {
	t.Helper()
	head, err := b.Head(t.Context(), key)
	if err != nil {
		t.Fatalf("Head(%q): %v", key, err)
	}
	if head.Size != int64(len(data)) || head.ETag != etag || head.ContentType != contentType || !maps.Equal(head.Metadata, meta) {
		t.Errorf("Head(%q) = %+v; want %d bytes, ETag %q, %q, %v", key, head, len(data), etag, contentType, meta)
	}
	body, _, err := b.Get(t.Context(), backend.GetInput{Key: key, Length: -1})
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer body.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(body); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Errorf("Get(%q): %d bytes, %v; want the source's %d bytes", key, got.Len(), err, len(data))
	}
}

var opNames = []string{"head", "list", "get", "put", "delete", "copy", "upload", "acl", "versions", "bucket"}

func requestCounts(b *s3.Bucket) map[string]int64 {
	counts := map[string]int64{}
	for _, op := range opNames {
		counts[op] = b.Requests(op)
	}
	return counts
}

// requestsSince returns the requests sent since before, leaving out zeros.
func requestsSince(b *s3.Bucket, before map[string]int64) map[string]int64 {
	sent := map[string]int64{}
	for op, n := range requestCounts(b) {
		if d := n - before[op]; d != 0 {
			sent[op] = d
		}
	}
	return sent
}
