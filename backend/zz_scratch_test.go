package backend_test

import (
	"strings"
	"testing"
	"bytes"

	"github.com/bucketfs/bucketfs/backend"
)

func TestZZScratch(t *testing.T) {
	srv := startMinIO(t)
	b := newBucket(t, srv, backend.S3Config{})
	ctx := t.Context()
	b.Put(ctx, backend.PutInput{Key: "k", Body: strings.NewReader("x"), Size: 1})
	id, _ := b.StartUpload(ctx, backend.PutInput{Key: "m"})
	e1, _ := b.UploadPart(ctx, backend.PartInput{Key: "m", UploadID: id, Number: 1, Body: bytes.NewReader([]byte("a")), Size: 1})
	e2, _ := b.UploadPart(ctx, backend.PartInput{Key: "m", UploadID: id, Number: 2, Body: bytes.NewReader([]byte("b")), Size: 1})
	p1, p2 := backend.Part{Number: 1, ETag: e1}, backend.Part{Number: 2, ETag: e2}
	for name, parts := range map[string][]backend.Part{"small": {p1, p2}, "none": nil, "order": {p2, p1}, "etag": {{Number: 1, ETag: "0123"}}} {
		_, err := b.CompleteUpload(ctx, backend.CompleteInput{Key: "m", UploadID: id, Parts: parts})
		t.Logf("%s: %v", name, err)
	}
	_, err := b.CompleteUpload(ctx, backend.CompleteInput{Key: "k", UploadID: id, Parts: []backend.Part{p1}})
	t.Logf("wrong key: %v", err)
	_, err = b.CompleteUpload(ctx, backend.CompleteInput{Key: "m", UploadID: id, Parts: []backend.Part{p1}, IfMatch: "abc"})
	t.Logf("ifmatch missing: %v", err)
	t.Logf("abort unknown: %v", b.AbortUpload(ctx, "m", "no-such-upload"))
	t.Logf("abort: %v", b.AbortUpload(ctx, "m", id))
	_, err = b.CompleteUpload(ctx, backend.CompleteInput{Key: "m", UploadID: id, Parts: []backend.Part{p1}})
	t.Logf("complete after abort: %v", err)
	_, err = b.Copy(ctx, backend.CopyInput{Src: "k", Dst: "k2", SrcETag: "abc", SrcSize: 1})
	t.Logf("copy stale: %v", err)
	_, err = b.Copy(ctx, backend.CopyInput{Src: "nope", Dst: "k2", SrcSize: 1})
	t.Logf("copy missing: %v", err)
	_, err = b.Copy(ctx, backend.CopyInput{Src: "k", Dst: "k", SrcSize: 1})
	t.Logf("copy onto itself COPY: %v", err)
	o, err := b.Copy(ctx, backend.CopyInput{Src: "k", Dst: "k3", SrcSize: 1})
	t.Logf("copy: %+v %v", o, err)
	o, err = b.Copy(ctx, backend.CopyInput{Src: "k", Dst: "k3"})
	t.Logf("copy: %+v %v", o, err)
}
