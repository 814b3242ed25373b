package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

// writeWhileDown writes through the mount while the server is stopped: one
// file with a program that checks close() (EIO), one with a shell
// redirection, which ignores it.
func writeWhileDown(t *testing.T, srv *miniotest.Server, mnt string) map[string]string {
	t.Helper()
	// The mount has seen the directory: names it did not have can be
	// created while the server is away (a name it knows nothing about
	// fails with EIO then).
	sh(t, mnt, "ls")
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"checked.txt": "close() said EIO\n", "redirected.txt": "bash ignored it\n"}
	err := os.WriteFile(filepath.Join(mnt, "checked.txt"), []byte(want["checked.txt"]), 0o644)
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("write while the server is down: %v, want EIO", err)
	}
	if out, err := exec.Command("bash", "-c", "printf 'bash ignored it\\n' > "+filepath.Join(mnt, "redirected.txt")).CombinedOutput(); err != nil {
		t.Errorf("redirection: %v %s", err, out)
	}
	return want
}

// waitObjects waits up to a minute for S3 to hold want, byte for byte.
func waitObjects(t *testing.T, srv *miniotest.Server, bucket string, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for key, body := range want {
		for {
			got, ok := getObject(t, srv, bucket, key)
			if ok && string(got.body) == body {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not in S3 a minute after the server came back (has it: %v, %q)", key, ok, got.body)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// TestPendingUploadsReachS3: files whose upload failed while the server was
// down reach it once it is back, with no further action.
func TestPendingUploadsReachS3(t *testing.T) {
	srv := startPrivateServer(t)
	bucket := newBucket(t, srv, nil)
	cacheDir := t.TempDir()
	_, mnt, logs := mountForeground(t, srv, bucket, "--cache-dir", cacheDir)
	want := writeWhileDown(t, srv, mnt)
	time.Sleep(200 * time.Millisecond) // the releases
	if got := sh(t, mnt, "ls"); got != "checked.txt\nredirected.txt\n" {
		t.Errorf("ls while pending = %q", got)
	}
	stdout, _, err := bucketfs(t, srv, nil, "pending", mnt)
	if err != nil || !strings.Contains(stdout, "pending\tchecked.txt\t17\t") || !strings.Contains(stdout, "redirected.txt") {
		t.Errorf("bucketfs pending: %v\n%s", err, stdout)
	}
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	waitObjects(t, srv, bucket, want)
	if !strings.Contains(logs.String(), "pending upload stored") {
		t.Errorf("the log does not say the pending files were stored:\n%s", logs)
	}
}

// TestPendingUploadsSurviveKill: the same after kill -9 of the daemon and a
// fresh mount with the same cache dir.
func TestPendingUploadsSurviveKill(t *testing.T) {
	srv := startPrivateServer(t)
	bucket := newBucket(t, srv, nil)
	cacheDir := t.TempDir()
	cmd, mnt, _ := mountForeground(t, srv, bucket, "--cache-dir", cacheDir)
	want := writeWhileDown(t, srv, mnt)
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Kill()
	unmountForTest(t, mnt)
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	if _, ok := getObject(t, srv, bucket, "checked.txt"); ok {
		t.Fatal("stored before the new mount: the test shows nothing")
	}
	_, mnt2, logs := mountForeground(t, srv, bucket, "--cache-dir", cacheDir)
	waitObjects(t, srv, bucket, want)
	if !strings.Contains(logs.String(), "resuming a pending upload") {
		t.Errorf("the log does not say what it resumed:\n%s", logs)
	}
	if got := sh(t, mnt2, "cat checked.txt redirected.txt"); got != want["checked.txt"]+want["redirected.txt"] {
		t.Errorf("through the new mount: %q", got)
	}
}

// TestSIGTERMLeavesNoMultipartUpload: a large file still being written at
// shutdown has its stream aborted, not left billed on the server.
func TestSIGTERMLeavesNoMultipartUpload(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	cmd, mnt, logs := mountForeground(t, srv, bucket, "--part-size", "5MiB")
	f, err := os.Create(filepath.Join(mnt, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, 1<<20)
	rand.Read(data)
	for range 16 { // three parts streamed while the file stays open
		f.Write(data)
	}
	uploads := func() int {
		out, err := srv.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Uploads)
	}
	for deadline := time.Now().Add(10 * time.Second); uploads() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no multipart upload started: the test shows nothing")
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(30 * time.Second); cmd.ProcessState == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still running:\n%s", logs)
		}
		f.Write(data) // writes after the drain start no parts
	}
	if n := uploads(); n != 0 {
		t.Errorf("%d multipart uploads left on the server after SIGTERM", n)
	}
	if _, ok := getObject(t, srv, bucket, "big.bin"); ok {
		t.Error("a file open at SIGTERM was uploaded")
	}
	_ = bytes.MinRead
}
