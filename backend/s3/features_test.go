package s3_test

import (
	"bytes"
	"errors"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/s3"
)

func TestCopySourceVersion(t *testing.T) {
	tests := []struct{ key, version, want string }{
		{"a+b", "", "b/a%2Bb"},
		{"dir/x y", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", "b/dir/x%20y?versionId=3HL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY"},
		{"q?x=1", "null", "b/q%3Fx=1?versionId=null"},
	}
	for _, tt := range tests {
		if got := s3.CopySourceVersion("b", tt.key, tt.version); got != tt.want {
			t.Errorf("copySourceVersion(%q, %q) = %q, want %q", tt.key, tt.version, got, tt.want)
		}
	}
}

// TestS3PresignLocal presigns against a server that counts requests: none
// may arrive, and thousands of URLs take well under a second.
func TestS3PresignLocal(t *testing.T) {
	setAWSEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret", "AWS_REGION=us-east-1")
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	b := newS3(t, srv.URL, s3.Config{Bucket: "b"})

	const n = 2000
	start := time.Now()
	for i := range n {
		method := "GET"
		if i%2 == 1 {
			method = "PUT"
		}
		signed, err := b.Presign(t.Context(), "dir/file+1 ü.txt", method, time.Hour)
		if err != nil {
			t.Fatalf("Presign: %v", err)
		}
		if i > 1 {
			continue
		}
		u, err := url.Parse(signed)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if !strings.HasPrefix(signed, srv.URL+"/b/dir/file%2B1%20%C3%BC.txt?") || q.Get("X-Amz-Expires") != "3600" ||
			q.Get("X-Amz-Signature") == "" || q.Get("X-Amz-SignedHeaders") != "host" {
			t.Errorf("Presign %s = %q", method, signed)
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d presigned URLs in %v", n, elapsed)
	if elapsed > 2*time.Second {
		t.Errorf("%d presigned URLs took %v, want well under a second per thousand", n, elapsed)
	}
	if hits.Load() != 0 {
		t.Errorf("Presign sent %d requests, want none", hits.Load())
	}
	for _, op := range opNames {
		if got := b.Requests(op); got != 0 {
			t.Errorf("Requests(%q) = %d after Presign, want 0", op, got)
		}
	}
}

// TestS3FeatureChecks covers the arguments refused before any request.
func TestS3FeatureChecks(t *testing.T) {
	setAWSEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret", "AWS_REGION=us-east-1")
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	b := newS3(t, srv.URL, s3.Config{Bucket: "b"})
	if err := b.PutACL(t.Context(), "k", "public"); !errors.Is(err, backend.ErrInvalid) {
		t.Errorf("PutACL with an unknown canned ACL: %v, want ErrInvalid", err)
	}
	if err := b.SetVersioning(t.Context(), "Disabled"); !errors.Is(err, backend.ErrInvalid) {
		t.Errorf("SetVersioning(Disabled): %v, want ErrInvalid", err)
	}
	if hits.Load() != 0 {
		t.Errorf("%d requests sent, want none", hits.Load())
	}
}

// TestS3FeatureRequests checks the request counts of the new operations
// and what MinIO answers to ACL changes.
func TestS3FeatureRequests(t *testing.T) {
	srv := startMinIO(t)
	b := newBucket(t, srv, s3.Config{})
	ctx := t.Context()
	if _, err := b.Put(ctx, backend.PutInput{Key: "k", Body: strings.NewReader("x"), Size: 1}); err != nil {
		t.Fatal(err)
	}
	before := requestCounts(b)
	if _, err := b.GetACL(ctx, "k"); err != nil {
		t.Errorf("GetACL: %v", err)
	}
	if err := b.PutACL(ctx, "k", "public-read"); !errors.Is(err, backend.ErrNotImplemented) {
		t.Errorf("PutACL on MinIO: %v, want ErrNotImplemented", err)
	}
	if _, err := b.Versions(ctx, "k"); err != nil {
		t.Errorf("Versions: %v", err)
	}
	if _, err := b.Versioning(ctx); err != nil {
		t.Errorf("Versioning: %v", err)
	}
	if _, err := b.Policy(ctx); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Policy: %v, want ErrNotFound", err)
	}
	if _, err := b.Presign(ctx, "k", "GET", time.Minute); err != nil {
		t.Errorf("Presign: %v", err)
	}
	want := map[string]int64{"acl": 2, "versions": 1, "bucket": 2}
	if got := requestsSince(b, before); !maps.Equal(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
}

// TestS3MultipartCopySettings copies an old version in parts with new
// storage settings: CreateMultipartUpload carries the settings, and every
// part names the version.
func TestS3MultipartCopySettings(t *testing.T) {
	srv := startMinIO(t)
	b := newBucket(t, srv, s3.Config{})
	b.SetCopyLimits(5<<20, 5<<20)
	ctx := t.Context()
	if err := b.SetVersioning(ctx, "Enabled"); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 11<<20)
	rand.NewChaCha8([32]byte{2}).Read(data)
	key := "dir/big+file"
	v1, err := b.Put(ctx, backend.PutInput{Key: key, Body: bytes.NewReader(data), Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, backend.PutInput{Key: key, Body: strings.NewReader("small"), Size: 5}); err != nil {
		t.Fatal(err)
	}
	before := requestCounts(b)
	obj, err := b.Copy(ctx, backend.CopyInput{Src: key, Dst: key, SrcVersionID: v1.VersionID, SrcSize: v1.Size,
		StorageClass: "REDUCED_REDUNDANCY", SSE: "AES256"})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if got, want := requestsSince(b, before), map[string]int64{"head": 1, "upload": 5}; !maps.Equal(got, want) {
		t.Errorf("Copy sent %v, want %v", got, want)
	}
	if obj.StorageClass != "REDUCED_REDUNDANCY" || obj.Size != v1.Size {
		t.Errorf("Copy = %+v, want REDUCED_REDUNDANCY and %d bytes", obj, v1.Size)
	}
	head, err := b.Head(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if head.Size != v1.Size || head.StorageClass != "REDUCED_REDUNDANCY" || head.SSE != "AES256" {
		t.Errorf("Head after the copy = %+v; want %d bytes, REDUCED_REDUNDANCY, AES256", head, v1.Size)
	}
	body, _, err := b.Get(ctx, backend.GetInput{Key: key, Length: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(body); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Errorf("Get after the copy: %d bytes, %v; want version 1's %d bytes", got.Len(), err, len(data))
	}
}

// TestS3VersionsPages follows the markers of a truncated listing, merges
// versions and delete markers newest first, and stops at the first other
// key.
func TestS3VersionsPages(t *testing.T) {
	setAWSEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret", "AWS_REGION=us-east-1")
	var pages atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		pages.Add(1)
		if q.Get("key-marker") == "" {
			w.Write([]byte(`<ListVersionsResult><IsTruncated>true</IsTruncated><NextKeyMarker>k</NextKeyMarker>` +
				`<NextVersionIdMarker>v2</NextVersionIdMarker>` +
				`<Version><Key>k</Key><VersionId>v2</VersionId><IsLatest>false</IsLatest><LastModified>2024-01-02T00:00:00.000Z</LastModified><Size>2</Size><ETag>"e2"</ETag></Version>` +
				`<DeleteMarker><Key>k</Key><VersionId>d3</VersionId><IsLatest>true</IsLatest><LastModified>2024-01-03T00:00:00.000Z</LastModified></DeleteMarker>` +
				`</ListVersionsResult>`))
			return
		}
		if q.Get("key-marker") != "k" || q.Get("version-id-marker") != "v2" {
			http.Error(w, "bad markers "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		w.Write([]byte(`<ListVersionsResult><IsTruncated>true</IsTruncated><NextKeyMarker>k2</NextKeyMarker>` +
			`<Version><Key>k</Key><VersionId>v1</VersionId><IsLatest>false</IsLatest><LastModified>2024-01-01T00:00:00.000Z</LastModified><Size>1</Size><ETag>"e1"</ETag></Version>` +
			`<Version><Key>k2</Key><VersionId>x</VersionId><IsLatest>true</IsLatest><LastModified>2024-01-05T00:00:00.000Z</LastModified><Size>1</Size></Version>` +
			`</ListVersionsResult>`))
	}))
	t.Cleanup(srv.Close)
	b := newS3(t, srv.URL, s3.Config{Bucket: "b"})
	versions, err := b.Versions(t.Context(), "k")
	if err != nil {
		t.Fatalf("Versions: %v", err)
	}
	var ids []string
	for _, v := range versions {
		ids = append(ids, v.ID)
	}
	if strings.Join(ids, " ") != "d3 v2 v1" || !versions[0].Latest || !versions[0].DeleteMarker ||
		versions[1].ETag != "e2" || versions[2].Size != 1 {
		t.Errorf("Versions = %+v; want d3 (latest delete marker), v2, v1", versions)
	}
	if pages.Load() != 2 {
		t.Errorf("%d pages listed, want 2 (the second reaches another key)", pages.Load())
	}
}
