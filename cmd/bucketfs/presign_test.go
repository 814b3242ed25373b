package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestPresignCommand(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"d/a.txt": {body: []byte("alpha")}, "d/sub/b.txt": {body: []byte("beta")}})
	mnt := mountBackground(t, srv, bucket)

	out, stderr, err := bucketfs(t, srv, nil, "presign", "--expires", "90s", filepath.Join(mnt, "d/a.txt"))
	if err != nil {
		t.Fatalf("presign: %v %s", err, stderr)
	}
	path, url, ok := strings.Cut(strings.TrimSpace(out), "\t")
	if !ok || path != filepath.Join(mnt, "d/a.txt") || !strings.Contains(url, "X-Amz-Expires=90") {
		t.Fatalf("presign printed %q", out)
	}
	if code, body := httpGet(t, url); code != 200 || body != "alpha" {
		t.Errorf("GET of a presigned URL: %d %q", code, body)
	}

	// -r lists every file; PUT names a file that does not exist yet.
	out, _, err = bucketfs(t, srv, nil, "presign", "-r", filepath.Join(mnt, "d"))
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "sub/b.txt\thttp") {
		t.Errorf("presign -r: %v %q", err, out)
	}
	out, stderr, err = bucketfs(t, srv, nil, "presign", "--method", "PUT", filepath.Join(mnt, "d/new.txt"))
	if err != nil {
		t.Fatalf("presign PUT: %v %s", err, stderr)
	}
	_, putURL, _ := strings.Cut(strings.TrimSpace(out), "\t")
	req, _ := http.NewRequest(http.MethodPut, putURL, bytes.NewReader([]byte("uploaded")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT to a presigned URL: %v %v", err, resp)
	}
	resp.Body.Close()
	if got := mustGet(t, srv, bucket, "d/new.txt"); string(got.body) != "uploaded" {
		t.Errorf("uploaded %q", got.body)
	}

	// Bad input: one clear line each, non-zero exit.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"presign", "--expires", "8d", filepath.Join(mnt, "d/a.txt")}, "7 days"},
		{[]string{"presign", "--expires", "0s", filepath.Join(mnt, "d/a.txt")}, "1s"},
		{[]string{"presign", filepath.Join(mnt, "d")}, "directory"},
		{[]string{"presign", os.TempDir()}, "directory"},
		{[]string{"presign", "/etc/hostname"}, "not on a bucketfs mount"},
	} {
		_, stderr, err := bucketfs(t, srv, nil, c.args...)
		if err == nil || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: err %v, stderr %q (want one line mentioning %q)", c.args, err, stderr, c.want)
		}
	}
}

func TestUploadDefaults(t *testing.T) {
	srv := server(t)
	needs(t, srv, "server-side encryption and storage classes")
	bucket := newBucket(t, srv, nil)
	mnt := mountBackground(t, srv, bucket, "--storage-class", "REDUCED_REDUNDANCY", "--sse", "AES256", "--part-size", "5MiB")
	writeFile(t, filepath.Join(mnt, "small"), []byte("s"))
	writeFile(t, filepath.Join(mnt, "multi"), make([]byte, 11<<20))
	sh(t, mnt, "mkdir dir && cp small dir/copied")
	for _, key := range []string{"small", "multi", "dir/", "dir/copied"} {
		h := headRaw(t, srv, bucket, key)
		if h.StorageClass != types.StorageClassReducedRedundancy || h.ServerSideEncryption != types.ServerSideEncryptionAes256 {
			t.Errorf("%s: class %q, sse %q", key, h.StorageClass, h.ServerSideEncryption)
		}
	}
	// A rename keeps them: S3 would not by itself.
	sh(t, mnt, "mv multi moved")
	if h := headRaw(t, srv, bucket, "moved"); h.StorageClass != types.StorageClassReducedRedundancy || h.ServerSideEncryption != types.ServerSideEncryptionAes256 {
		t.Errorf("after mv: class %q, sse %q", h.StorageClass, h.ServerSideEncryption)
	}
}
