package s3_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/s3"
)

// TestListingMetadataIgnored: versitygw takes metadata=true and answers a
// plain listing, so the mount kept asking for headers it never got, and
// treated the server as one that lists them. A 200 that carries no
// object's headers now switches listing headers off, as a refusal does.
func TestListingMetadataIgnored(t *testing.T) {
	setAWSEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret", "AWS_REGION=us-east-1")
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("metadata") == "true" {
			asked.Add(1)
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><Prefix>d/</Prefix>` +
			`<KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>` +
			`<Contents><Key>d/f</Key><Size>1</Size><ETag>"e"</ETag><LastModified>2026-01-01T00:00:00Z</LastModified></Contents></ListBucketResult>`))
	}))
	t.Cleanup(srv.Close)
	b := newS3(t, srv.URL, s3.Config{Bucket: "b"})
	if !b.ListsHeaders() {
		t.Fatal("a new bucket client does not try listing headers")
	}
	for range 2 {
		page, err := b.List(t.Context(), backend.ListInput{Prefix: "d/", Delimiter: "/"})
		if err != nil || len(page.Objects) != 1 || page.Objects[0].HasHeaders {
			t.Fatalf("List: %+v, %v", page, err)
		}
	}
	if b.ListsHeaders() || asked.Load() != 1 {
		t.Errorf("after a plain answer: ListsHeaders %v, asked for headers %d times; want false, once", b.ListsHeaders(), asked.Load())
	}
}

// TestNoListingHeadersOnAWS: AWS's own endpoints have no listing
// extension, so a mount there asks for none from the start. Asked, AWS
// answers plainly, and the first lookup of every mount cost one more LIST
// (a small page with headers that carried none) before the mount knew.
func TestNoListingHeadersOnAWS(t *testing.T) {
	setAWSEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret", "AWS_REGION=eu-west-1")
	for endpoint, lists := range map[string]bool{
		"":                                   false, // AWS's own, for the region
		"https://s3.eu-west-1.amazonaws.com": false,
		"http://127.0.0.1:9000":              true, // MinIO, say: it may
	} {
		b, err := s3.New(t.Context(), s3.Config{Bucket: "b", Endpoint: endpoint})
		if err != nil {
			t.Fatal(err)
		}
		if got := b.ListsHeaders(); got != lists {
			t.Errorf("endpoint %q: ListsHeaders() = %v, want %v", endpoint, got, lists)
		}
	}
}

// TestListingHeadersFollowTheServersName: only MinIO has the listing
// extension. A server that names itself otherwise (versitygw, Ceph, R2)
// answers metadata=true plainly, and before the mount learned that from
// its first lookup's listing, a small page that carried no headers, that
// lookup's listing was wasted: an ls -l of 10,000 objects on versitygw
// cost 11 LISTs instead of 10. CheckBucket now reads the name from the
// Server header of its answer; --provider minio asks whatever the name.
func TestListingHeadersFollowTheServersName(t *testing.T) {
	setAWSEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret", "AWS_REGION=us-east-1")
	for _, tc := range []struct {
		server string
		known  s3.ListingHeaders
		lists  bool
	}{
		{"MinIO", s3.ListingHeadersDetect, true},
		{"VERSITYGW", s3.ListingHeadersDetect, false},
		{"", s3.ListingHeadersDetect, false},
		{"nginx", s3.ListingHeadersOn, true}, // MinIO behind a proxy, named by --provider minio
		{"MinIO", s3.ListingHeadersOff, false},
	} {
		var asked atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.server != "" {
				w.Header().Set("Server", tc.server)
			}
			if r.Method == http.MethodHead {
				return // HeadBucket: 200
			}
			if r.URL.Query().Get("metadata") == "true" {
				asked.Add(1)
			}
			w.Header().Set("Content-Type", "application/xml")
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><Prefix>d/</Prefix>` +
				`<KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`))
		}))
		b := newS3(t, srv.URL, s3.Config{Bucket: "b", ListingHeaders: tc.known})
		if err := b.CheckBucket(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := b.List(t.Context(), backend.ListInput{Prefix: "d/", Delimiter: "/"}); err != nil {
			t.Fatal(err)
		}
		if got := b.ListsHeaders(); got != tc.lists || (asked.Load() == 1) != tc.lists {
			t.Errorf("Server %q, ListingHeaders %v: ListsHeaders() = %v, asked for headers %d times; want %v",
				tc.server, tc.known, got, asked.Load(), tc.lists)
		}
		srv.Close()
	}
}
