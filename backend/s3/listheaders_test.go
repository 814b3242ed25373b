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
