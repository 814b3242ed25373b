package main

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

// TestWorkloadOnVersity mounts a bucket of versitygw, the second server,
// which lists without headers as AWS does, and runs everyday commands,
// each checked with a raw client.
func TestWorkloadOnVersity(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs versitygw")
	}
	srv := miniotest.StartVersity(t)
	bucket := newBucket(t, srv, nil)
	putObject(t, srv, bucket, "docs/a.txt", object{body: []byte("alpha\n"), meta: map[string]string{"mode": "33152"}})
	mnt := mountBackground(t, srv, bucket)
	got := sh(t, mnt, "ls -l docs | cut -c1-10 && cat docs/a.txt && mkdir -p d/e && echo x > d/e/f && "+
		"mv d/e/f d/e/g && cp d/e/g d/h && chmod 600 d/h && stat -c %a d/h && cat d/h && "+
		"setfattr -n user.note -v hi d/h && getfattr --only-values -n user.note d/h && echo && "+
		"mv d d2 && find d2 | sort && rm -r d2 && ls")
	want := "total 1\n-rw-------\nalpha\n600\nx\nhi\nd2\nd2/e\nd2/e/g\nd2/h\ndocs\n"
	if got != want {
		t.Errorf("workload on versitygw:\n%s\nwant:\n%s", got, want)
	}
	out, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	if len(keys) != 1 || keys[0] != "docs/a.txt" {
		t.Errorf("keys left: %q", keys)
	}
}
