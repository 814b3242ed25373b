package s3_test

import (
	"fmt"
	"testing"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/miniotest"
	"github.com/bucketfs/bucketfs/backend/s3"
)

// TestStartUploadLeavesNoStray: a start whose reply was lost is retried by
// the SDK, and the server then holds two uploads; the one the caller never
// learns of is aborted. A start the server refused made nothing, and costs
// no listing of uploads.
func TestStartUploadLeavesNoStray(t *testing.T) {
	srv := startMinIO(t)
	proxy := miniotest.StartFaultProxy(t, srv.Endpoint)
	name := fmt.Sprintf("test-%d", bucketSeq.Add(1))
	if err := srv.CreateBucket(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	b := newS3(t, proxy.Endpoint, s3.Config{Bucket: name})

	proxy.Set(miniotest.Rule{Op: "START", Times: 1, Fault: miniotest.ResetAfter})
	id, err := b.StartUpload(t.Context(), backend.PutInput{Key: "k"})
	if err != nil {
		t.Fatalf("StartUpload after a lost reply: %v", err)
	}
	if proxy.Injected()[miniotest.ResetAfter] != 1 {
		t.Fatal("no reply was lost: the test shows nothing")
	}
	uploads, err := b.ListUploads(t.Context(), "k")
	if err != nil || len(uploads) != 1 || uploads[0].ID != id {
		t.Errorf("open uploads %+v, %v; want only %s", uploads, err, id)
	}
	b.AbortUpload(t.Context(), "k", id)

	proxy.Set(miniotest.Rule{Op: "START", Fault: miniotest.NotFound404})
	lists := proxy.Seen()["LIST"]
	if _, err := b.StartUpload(t.Context(), backend.PutInput{Key: "k"}); err == nil {
		t.Fatal("StartUpload answered 404 succeeded")
	}
	if n := proxy.Seen()["LIST"] - lists; n != 0 {
		t.Errorf("a refused start sent %d listings", n)
	}
}
