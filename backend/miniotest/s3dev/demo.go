package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

const demoBucket = "demo"

// demo starts a fresh server, seeds a bucket as other S3 tools would have
// written it, mounts it with bucketfs and runs ordinary tools on it.
func demo(dir string) error {
	stop(dir) // a previous demo, if any
	if err := os.MkdirAll(filepath.Join(dir, "mnt"), 0o755); err != nil {
		return err
	}
	os.RemoveAll(filepath.Join(dir, "data"))
	env, err := startServe(dir)
	if err != nil {
		return err
	}
	fmt.Printf("MinIO is serving on %s (data in %s)\n", env["S3_ENDPOINT"], filepath.Join(dir, "data"))
	client := miniotest.NewClient(env["S3_ENDPOINT"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
	sum, err := seed(context.Background(), client)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	fmt.Printf("bucket %q seeded with sample objects\n\n", demoBucket)

	bin := os.Getenv("BUCKETFS_BIN")
	if bin == "" {
		bin = "bucketfs"
	}
	mnt := filepath.Join(dir, "mnt")
	mount := exec.Command(bin, "--endpoint-url", env["S3_ENDPOINT"], "--path-style", "--log-file", filepath.Join(dir, "bucketfs.log"), demoBucket, mnt)
	// Credentials reach bucketfs through its environment, never its argv.
	mount.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+env["AWS_ACCESS_KEY_ID"],
		"AWS_SECRET_ACCESS_KEY="+env["AWS_SECRET_ACCESS_KEY"], "AWS_REGION=us-east-1")
	mount.Stdout, mount.Stderr = os.Stdout, os.Stderr
	show(dir, strings.Join([]string{"bucketfs", "--endpoint-url", env["S3_ENDPOINT"], "--path-style", "--log-file", ".demo/bucketfs.log", demoBucket, ".demo/mnt"}, " "), nil)
	if err := mount.Run(); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	for _, c := range []string{
		"ls -l mnt",
		"ls -la mnt/photos/2024",
		"cat mnt/README.txt",
		"find mnt | sort",
		"stat -c '%A %U:%G %y %n' mnt/bin/hello.sh",
		"getfattr -d mnt/docs/report.txt",
		"bucketfs info mnt/docs/report.txt | cut -c1-120",
		"getfattr -n user.s3.etag mnt/big/20MiB.bin",
		"md5sum mnt/big/20MiB.bin",
		"dd if=mnt/big/20MiB.bin bs=1M skip=19 count=1 status=none | wc -c",
		"echo 'written through the mount' > mnt/hello.txt && mkdir mnt/notes && mv mnt/hello.txt mnt/notes/ && cat mnt/notes/hello.txt",
		"bucketfs pending mnt",
		"setfattr -n user.s3.storage_class -v REDUCED_REDUNDANCY mnt/notes/hello.txt && getfattr -n user.s3.storage_class mnt/notes/hello.txt",
		"bucketfs presign mnt/README.txt | cut -c1-100",
		"du -sh mnt",
		"df -h mnt",
	} {
		cmd := exec.Command("bash", "-c", c)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
		show(dir, c, cmd)
	}
	fmt.Printf("(the 20 MiB file's MD5 as uploaded: %x)\n\n", sum)
	fmt.Printf("The bucket stays mounted at %s. Try it, then:\n", mnt)
	fmt.Printf("  umount %s          # or: fusermount3 -u %s\n", mnt, mnt)
	fmt.Println("  make demo-stop            # unmounts if needed and stops MinIO")
	fmt.Printf("  source %s/env     # to point other S3 tools at the server\n", dir)
	return nil
}

func show(dir, line string, cmd *exec.Cmd) {
	fmt.Println("$ " + line)
	if cmd == nil {
		return
	}
	cmd.Dir = dir
	out, _ := cmd.CombinedOutput()
	fmt.Println(strings.TrimRight(string(out), "\n"))
	fmt.Println()
}

// seed writes objects as other tools do: a directory marker, implicit
// directories, s3fs-style POSIX headers, user metadata, a 20 MiB file and
// names with spaces and unicode. It returns the big file's MD5.
func seed(ctx context.Context, c *s3.Client) ([md5.Size]byte, error) {
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(demoBucket)}); err != nil {
		return [md5.Size]byte{}, err
	}
	big := make([]byte, 20<<20)
	rand.Read(big)
	mtime := fmt.Sprintf("%d.000000000", time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC).Unix())
	objects := []struct {
		key, body, contentType string
		meta                   map[string]string
	}{
		{"README.txt", "Hello from an S3 bucket, mounted by bucketfs.\n", "text/plain", nil},
		{"docs/", "", "application/x-directory", nil},
		{"docs/report.txt", "quarterly numbers\n", "text/plain", map[string]string{"author": "ada", "project": "bucketfs"}},
		{"docs/notes/todo.md", "- mount\n- browse\n", "text/markdown", nil},
		{"photos/2024/beach day.jpg", "not really a jpeg", "image/jpeg", nil},
		{"photos/2024/Zürich — 夜.jpg", "unicode name", "image/jpeg", nil},
		{"bin/hello.sh", "#!/bin/sh\necho hello\n", "text/x-sh", map[string]string{"mode": "33261", "uid": "0", "gid": "0", "mtime": mtime}},
		{"big/20MiB.bin", string(big), "application/octet-stream", nil},
	}
	for _, o := range objects {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(demoBucket), Key: aws.String(o.key), Body: bytes.NewReader([]byte(o.body)),
			ContentType: aws.String(o.contentType), Metadata: o.meta,
		})
		if err != nil {
			return [md5.Size]byte{}, fmt.Errorf("put %s: %w", o.key, err)
		}
	}
	return md5.Sum(big), nil
}
