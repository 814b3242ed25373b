package main

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

// What a test checks on the server goes through this independent client,
// never through the mount.

// rawObject is an object as the raw SDK sees it.
type rawObject struct {
	body        []byte
	etag        string
	contentType string
	meta        map[string]string
}

// getObject reads key with the raw SDK; ok is false when it does not exist.
func getObject(t *testing.T, srv *miniotest.Server, bucket, key string) (rawObject, bool) {
	t.Helper()
	out, err := srv.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	var noKey *types.NoSuchKey
	if errors.As(err, &noKey) {
		return rawObject{}, false
	}
	if err != nil {
		t.Fatalf("raw get %s: %v", key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawObject{body: body, etag: aws.ToString(out.ETag), contentType: aws.ToString(out.ContentType), meta: out.Metadata}, true
}

// mustGet is getObject for a key that must exist.
func mustGet(t *testing.T, srv *miniotest.Server, bucket, key string) rawObject {
	t.Helper()
	obj, ok := getObject(t, srv, bucket, key)
	if !ok {
		t.Fatalf("%s does not exist in the bucket", key)
	}
	return obj
}

// listKeys returns every key under prefix, sorted.
func listKeys(t *testing.T, srv *miniotest.Server, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(srv.Client(), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	slices.Sort(keys)
	return keys
}
