package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestAllBuckets(t *testing.T) {
	srv := startPrivateServer(t) // its own server: this test lists every bucket
	one := newBucket(t, srv, map[string]object{"in-one.txt": {body: []byte("1")}})
	two := newBucket(t, srv, map[string]object{"sub/in-two.txt": {body: []byte("2")}})
	mnt := t.TempDir()
	if _, stderr, err := bucketfs(t, srv, nil, append(connectArgs(srv), "--all-buckets", mnt)...); err != nil {
		t.Fatalf("mount --all-buckets: %v %s", err, stderr)
	}
	t.Cleanup(func() { unmountForTest(t, mnt) })

	want := []string{one, two}
	slices.Sort(want) // as ls sorts them: the names' numbers need not grow
	if got := strings.Fields(sh(t, mnt, "ls")); !slices.Equal(got, want) {
		t.Errorf("ls = %q, want the buckets %q", got, want)
	}
	if got := sh(t, mnt, "cat "+one+"/in-one.txt "+two+"/sub/in-two.txt"); got != "12" {
		t.Errorf("reading through bucket directories: %q", got)
	}
	sh(t, mnt, "echo new > "+two+"/new.txt")
	if got := mustGet(t, srv, two, "new.txt"); string(got.body) != "new\n" {
		t.Errorf("written: %q", got.body)
	}

	// mkdir creates a bucket; rmdir deletes an empty one.
	if err := os.Mkdir(filepath.Join(mnt, "made-by-mkdir"), 0o755); err != nil {
		t.Fatalf("mkdir of a bucket: %v", err)
	}
	out, err := srv.Client().ListBuckets(context.Background(), &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range out.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	if !slices.Contains(names, "made-by-mkdir") {
		t.Errorf("buckets after mkdir: %q", names)
	}
	sh(t, mnt, "echo x > made-by-mkdir/f")
	if err := syscall.Rmdir(filepath.Join(mnt, "made-by-mkdir")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("rmdir of a non-empty bucket: %v, want ENOTEMPTY", err)
	}
	sh(t, mnt, "rm made-by-mkdir/f && rmdir made-by-mkdir")
	if _, err := srv.Client().HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String("made-by-mkdir")}); err == nil {
		t.Error("the bucket is still there after rmdir")
	}
	for _, bad := range []string{"Bad_Name", "ab", "-dash"} {
		if err := os.Mkdir(filepath.Join(mnt, bad), 0o755); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("mkdir %q: %v, want EINVAL", bad, err)
		}
	}
	if err := os.Mkdir(filepath.Join(mnt, one), 0o755); !errors.Is(err, os.ErrExist) {
		t.Errorf("mkdir of an existing bucket: %v, want EEXIST", err)
	}
}
