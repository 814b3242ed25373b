package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func getx(t *testing.T, path, name string) string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := syscall.Getxattr(path, name, buf)
	if err != nil {
		t.Fatalf("getxattr %s %s: %v", path, name, err)
	}
	return string(buf[:n])
}

func setx(path, name, value string) error {
	return syscall.Setxattr(path, name, []byte(value), 0)
}

func headRaw(t *testing.T, srv interface{ Client() *s3.Client }, bucket, key string) *s3.HeadObjectOutput {
	t.Helper()
	out, err := srv.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("raw head %s: %v", key, err)
	}
	return out
}

func TestS3AttributesThroughXattrs(t *testing.T) {
	srv := server(t)
	needs(t, srv, "server-side encryption, storage classes and object ACLs")
	bucket := newBucket(t, srv, nil)
	// An object other tools wrote with SSE-S3, RRS, a custom type and metadata.
	_, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("other.dat"),
		Body: strings.NewReader("other"), ContentType: aws.String("application/x-custom"), Metadata: map[string]string{"color": "red"},
		ServerSideEncryption: types.ServerSideEncryptionAes256, StorageClass: types.StorageClassReducedRedundancy})
	if err != nil {
		t.Fatal(err)
	}
	_, err = srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("enc/e.dat"),
		Body: strings.NewReader("e"), ServerSideEncryption: types.ServerSideEncryptionAes256, StorageClass: types.StorageClassReducedRedundancy})
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountBackground(t, srv, bucket, "--presign-expiry", "10m")
	other := filepath.Join(mnt, "other.dat")
	for name, want := range map[string]string{
		"user.s3.sse": "AES256", "user.s3.storage_class": "REDUCED_REDUNDANCY",
		"user.s3.content_type": "application/x-custom", "user.color": "red",
		"user.s3.uri": "s3://" + bucket + "/other.dat", "user.s3.version_id": "null",
		"user.s3.etag": strings.Trim(aws.ToString(headRaw(t, srv, bucket, "other.dat").ETag), `"`),
	} {
		if got := getx(t, other, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	// getfattr -d (listxattr) shows the object's metadata only; bucketfs
	// info shows every attribute.
	if out := sh(t, mnt, "getfattr -d other.dat"); !strings.Contains(out, `user.color="red"`) || strings.Contains(out, "user.s3.") {
		t.Errorf("getfattr -d lists:\n%s", out)
	}
	stdout, stderr, err := bucketfs(t, srv, nil, "info", other, mnt)
	for _, want := range []string{"# file: " + other, "user.s3.presigned_url: http", "user.s3.versions: null\t",
		"user.s3.sse: AES256", "user.color: red", "# file: " + mnt, "user.s3.bucket: " + bucket, "user.s3.versioning: "} {
		if err != nil || !strings.Contains(stdout, want) {
			t.Errorf("bucketfs info: %v %s; want %q in\n%s", err, stderr, want, stdout)
		}
	}
	var acl struct{ Grants []any }
	if err := json.Unmarshal([]byte(getx(t, other, "user.s3.acl")), &acl); err != nil || len(acl.Grants) == 0 {
		t.Errorf("user.s3.acl: %v %+v", err, acl)
	}

	// Changes in place, no data through the mount, headers kept.
	sh(t, mnt, "echo data > f.txt && chmod 600 f.txt")
	f := filepath.Join(mnt, "f.txt")
	for _, c := range []struct{ name, value string }{
		{"user.s3.storage_class", "REDUCED_REDUNDANCY"}, {"user.s3.sse", "AES256"},
		{"user.s3.content_type", "text/x-special"}, {"user.color", "blue"},
	} {
		if err := setx(f, c.name, c.value); err != nil {
			t.Fatalf("setfattr %s: %v", c.name, err)
		}
	}
	h := headRaw(t, srv, bucket, "f.txt")
	if h.StorageClass != types.StorageClassReducedRedundancy || h.ServerSideEncryption != types.ServerSideEncryptionAes256 ||
		aws.ToString(h.ContentType) != "text/x-special" || h.Metadata["color"] != "blue" || h.Metadata["mode"] != "33152" {
		t.Errorf("after setfattr: class %s sse %s type %s meta %v", h.StorageClass, h.ServerSideEncryption, aws.ToString(h.ContentType), h.Metadata)
	}
	if err := setx(f, "user.s3.sse", "none"); err != nil {
		t.Fatal(err)
	}
	if h := headRaw(t, srv, bucket, "f.txt"); h.ServerSideEncryption != "" || h.StorageClass != types.StorageClassReducedRedundancy {
		t.Errorf("sse none: %s, class %s", h.ServerSideEncryption, h.StorageClass)
	}
	if err := syscall.Removexattr(f, "user.color"); err != nil {
		t.Fatal(err)
	}
	if h := headRaw(t, srv, bucket, "f.txt"); h.Metadata["color"] != "" || h.Metadata["mode"] != "33152" {
		t.Errorf("after setfattr -x: %v", h.Metadata)
	}
	if got := mustGet(t, srv, bucket, "f.txt"); string(got.body) != "data\n" {
		t.Errorf("data changed: %q", got.body)
	}

	// Bad input: the server untouched.
	before := headRaw(t, srv, bucket, "f.txt")
	for _, c := range []struct {
		name, value string
		want        syscall.Errno
	}{
		{"user.s3.storage_class", "FAST", syscall.EINVAL}, {"user.s3.sse", "rot13", syscall.EINVAL},
		{"user.s3.etag", "x", syscall.EPERM}, {"user.s3.acl", "public-read", syscall.ENOTSUP}, // MinIO: 501
		{"user.big", strings.Repeat("x", 3000), syscall.E2BIG},
	} {
		if err := setx(f, c.name, c.value); !errors.Is(err, c.want) {
			t.Errorf("setfattr %s=%.10s: %v, want %v", c.name, c.value, err, c.want)
		}
	}
	if after := headRaw(t, srv, bucket, "f.txt"); aws.ToString(after.ETag) != aws.ToString(before.ETag) ||
		!aws.ToTime(after.LastModified).Equal(aws.ToTime(before.LastModified)) || after.StorageClass != before.StorageClass {
		t.Error("a refused setfattr changed the object")
	}

	// Presigned URLs: the exact bytes; tampered → 403.
	url := getx(t, f, "user.s3.presigned_url")
	if !strings.Contains(url, "X-Amz-Expires=600") {
		t.Errorf("presigned URL does not use --presign-expiry: %s", url)
	}
	if code, body := httpGet(t, url); code != 200 || body != "data\n" {
		t.Errorf("presigned GET: %d %q", code, body)
	}
	if code, _ := httpGet(t, url[:len(url)-1]+"0"); code != 403 {
		if code2, _ := httpGet(t, url[:len(url)-1]+"1"); code2 != 403 {
			t.Errorf("tampered presigned URL: %d", code)
		}
	}

	// SSE-KMS with a key ID (the test server's KMS key is "bucketfs-test").
	if err := setx(f, "user.s3.sse", "aws:kms:bucketfs-test"); err != nil {
		t.Fatalf("setfattr sse aws:kms: %v", err)
	}
	if h := headRaw(t, srv, bucket, "f.txt"); h.ServerSideEncryption != types.ServerSideEncryptionAwsKms ||
		!strings.Contains(aws.ToString(h.SSEKMSKeyId), "bucketfs-test") {
		t.Errorf("aws:kms: %q key %q", h.ServerSideEncryption, aws.ToString(h.SSEKMSKeyId))
	}
	if got := getx(t, f, "user.s3.sse"); got != "aws:kms" {
		t.Errorf("user.s3.sse = %q", got)
	}
	if got := getx(t, f, "user.s3.sse_kms_key_id"); !strings.Contains(got, "bucketfs-test") {
		t.Errorf("user.s3.sse_kms_key_id = %q", got)
	}
	if got := mustGet(t, srv, bucket, "f.txt"); string(got.body) != "data\n" {
		t.Errorf("data after re-encryption: %q", got.body)
	}

	// An expired presigned URL is refused.
	out, stderr, err := bucketfs(t, srv, nil, "presign", "--expires", "1s", f)
	if err != nil {
		t.Fatalf("presign: %v %s", err, stderr)
	}
	_, short, _ := strings.Cut(strings.TrimSpace(out), "\t")
	time.Sleep(2500 * time.Millisecond) // a real expiry, end to end
	if code, _ := httpGet(t, short); code != 403 {
		t.Errorf("expired presigned URL: %d, want 403", code)
	}

	// A rename keeps the encryption and class of an object that another
	// tool wrote and that the mount knows only from a listing (stored
	// before the mount, which lists the root's directories).
	sh(t, mnt, "ls -l enc >/dev/null && mv enc/e.dat enc/renamed.dat")
	if h := headRaw(t, srv, bucket, "enc/renamed.dat"); h.ServerSideEncryption != types.ServerSideEncryptionAes256 ||
		h.StorageClass != types.StorageClassReducedRedundancy {
		t.Errorf("after mv: sse %q class %q", h.ServerSideEncryption, h.StorageClass)
	}

	// Root attributes.
	if getx(t, mnt, "user.s3.bucket") != bucket || getx(t, mnt, "user.s3.region") != "us-east-1" ||
		getx(t, mnt, "user.s3.endpoint") != srv.Endpoint {
		t.Error("root attributes")
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestVersionsAndPolicy(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	mnt := mountBackground(t, srv, bucket)
	if got := getx(t, mnt, "user.s3.versioning"); got != "Unversioned" {
		t.Errorf("versioning: %q", got)
	}
	if err := setx(mnt, "user.s3.versioning", "Enabled"); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(mnt, "doc.txt")
	writeFile(t, f, []byte("first"))
	writeFile(t, f, []byte("second"))
	lines := strings.Split(strings.TrimSpace(getx(t, f, "user.s3.versions")), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "\t6\tlatest") || !strings.HasSuffix(lines[1], "\t5\t-") {
		t.Fatalf("versions:\n%s", strings.Join(lines, "\n"))
	}
	first := strings.Split(lines[1], "\t")[0]
	if err := setx(f, "user.s3.restore", first); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := mustGet(t, srv, bucket, "doc.txt"); string(got.body) != "first" {
		t.Errorf("after restore: %q", got.body)
	}
	if n := len(strings.Split(strings.TrimSpace(getx(t, f, "user.s3.versions")), "\n")); n != 3 {
		t.Errorf("restore should add a version on top: %d versions", n)
	}

	// Bucket policy: public/* readable anonymously.
	buf := make([]byte, 100)
	if _, err := syscall.Getxattr(mnt, "user.s3.policy", buf); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("no policy yet: %v", err)
	}
	if err := setx(mnt, "user.s3.policy", "{not json"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("invalid policy: %v, want EINVAL", err)
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::` + bucket + `/public/*"]}]}`
	if err := setx(mnt, "user.s3.policy", policy); err != nil {
		t.Fatalf("set policy: %v", err)
	}
	sh(t, mnt, "mkdir public && echo open > public/p.txt && echo closed > private.txt")
	if code, body := httpGet(t, srv.Endpoint+"/"+bucket+"/public/p.txt"); code != 200 || body != "open\n" {
		t.Errorf("anonymous GET under public/: %d %q", code, body)
	}
	if code, _ := httpGet(t, srv.Endpoint+"/"+bucket+"/private.txt"); code != 403 {
		t.Errorf("anonymous GET elsewhere: %d, want 403", code)
	}
	if got := getx(t, mnt, "user.s3.policy"); !strings.Contains(got, "public/") {
		t.Errorf("policy reads %q", got)
	}
	if err := syscall.Removexattr(mnt, "user.s3.policy"); err != nil {
		t.Fatal(err)
	}
	if code, _ := httpGet(t, srv.Endpoint+"/"+bucket+"/public/p.txt"); code != 403 {
		t.Errorf("after removing the policy: %d", code)
	}
}

// TestBackupsCarryNoLink: rsync -aX and tar --xattrs out of the mount copy
// the object's metadata, never a presigned URL (a bearer link).
func TestBackupsCarryNoLink(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"d/f": {body: []byte("x"), meta: map[string]string{"color": "red"}}})
	mnt := mountBackground(t, srv, bucket)
	backup := t.TempDir()
	sh(t, mnt, "rsync -aX d/ "+backup+"/ && tar --xattrs -cf "+backup+"/all.tar d")
	if got := sh(t, backup, "getfattr -d f"); !strings.Contains(got, `user.color="red"`) || strings.Contains(got, "user.s3.") {
		t.Errorf("rsync -aX copied:\n%s", got)
	}
	if got := sh(t, backup, "strings all.tar | grep -c -e user.color -e X-Amz-Signature || true"); strings.TrimSpace(got) != "1" {
		t.Errorf("the archive holds %s of the color and a presigned URL, want the color only", got)
	}
}

// TestBinaryXattrValues: setfattr with bytes no HTTP header can carry is
// stored encoded and read back exact, on a closed file and on one still
// being written, whose data must reach S3 all the same.
func TestBinaryXattrValues(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"closed": {body: []byte("c")}})
	mnt := mountBackground(t, srv, bucket)
	value := "\x00\xff\x13 é"
	start := time.Now()
	if err := setx(filepath.Join(mnt, "closed"), "user.ab", value); err != nil {
		t.Fatalf("setfattr of a binary value: %v after %v", err, time.Since(start))
	}
	if got := getx(t, filepath.Join(mnt, "closed"), "user.ab"); got != value {
		t.Errorf("getfattr = %q, want %q", got, value)
	}
	if raw := headRaw(t, srv, bucket, "closed").Metadata["ab"]; raw != "=?UTF-8?B?AP8TIMOp?=" {
		t.Errorf("stored as x-amz-meta-ab %q", raw)
	}
	f, err := os.Create(filepath.Join(mnt, "open"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("data")
	if err := setx(filepath.Join(mnt, "open"), "user.ab", value); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close of a file with a binary xattr: %v", err)
	}
	if got := mustGet(t, srv, bucket, "open"); string(got.body) != "data" {
		t.Errorf("open: %q", got.body)
	}
	if got := getx(t, filepath.Join(mnt, "open"), "user.ab"); got != value {
		t.Errorf("getfattr after close = %q", got)
	}
}
