package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

// writeFiles writes n small files through the mount; every close must
// succeed (with --write-back it needs no server).
func writeFiles(t *testing.T, mnt string, n int) map[string]string {
	t.Helper()
	want := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("wb-%03d.txt", i)
		body := fmt.Sprintf("file %d, closed with --write-back\n", i)
		if err := os.WriteFile(filepath.Join(mnt, name), []byte(body), 0o644); err != nil {
			t.Fatalf("close with --write-back: %v", err)
		}
		want[name] = body
	}
	return want
}

// Files closed with --write-back while the server is down survive a kill -9
// of the mount: the next mount uploads them.
func TestWriteBackSurvivesKill9(t *testing.T) {
	srv := startPrivateServer(t)
	bucket := newBucket(t, srv, nil)
	cacheDir := t.TempDir()
	cmd, mnt, _ := mountForeground(t, srv, bucket, "--cache-dir", cacheDir, "--write-back")
	sh(t, mnt, "ls") // names the mount has seen missing may be created offline
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	want := writeFiles(t, mnt, 30)
	cmd.Process.Kill()
	unmountForTest(t, mnt)
	waitGone(t, cmd.Process.Pid)
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	if _, ok := getObject(t, srv, bucket, "wb-000.txt"); ok {
		t.Fatal("stored before the new mount: the test shows nothing")
	}
	mountForeground(t, srv, bucket, "--cache-dir", cacheDir)
	waitObjects(t, srv, bucket, want)
}

// An unmount with --write-back uploads what is pending before the
// daemon exits (every PUT is slowed to 300 ms, so most are left when the
// unmount comes).
func TestWriteBackUploadsAtUnmount(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	proxy := miniotest.StartFaultProxy(t, srv.Endpoint)
	proxy.Set(miniotest.Rule{Op: "PUT", Every: 1, Fault: miniotest.DelayReply, Delay: 300 * time.Millisecond})
	cmd, mnt, logs := mountForeground(t, srv, bucket, "--endpoint-url", proxy.Endpoint, "--write-back")
	want := writeFiles(t, mnt, 100)
	if n := len(listKeys(t, srv, bucket, "")); n == len(want) {
		t.Fatal("every file was stored before the unmount: the test shows nothing")
	}
	unmountForTest(t, mnt)
	waitGone(t, cmd.Process.Pid)
	for key, body := range want {
		if got, ok := getObject(t, srv, bucket, key); !ok || string(got.body) != body {
			t.Fatalf("%s not in S3 after the mount exited (%v, %q):\n%s", key, ok, got.body, logs)
		}
	}
}

// With --write-back, rm -rf returns before S3 deletes anything (the
// deletes wait for the writers to pause); after a kill -9 right then, the
// next mount deletes them all.
func TestWriteBackDeletesSurviveKill9(t *testing.T) {
	srv := startPrivateServer(t)
	bucket := newBucket(t, srv, nil)
	for i := range 50 {
		putObject(t, srv, bucket, fmt.Sprintf("old/f%02d", i), object{body: []byte("x")})
	}
	cacheDir := t.TempDir()
	cmd, mnt, _ := mountForeground(t, srv, bucket, "--cache-dir", cacheDir, "--write-back")
	if out := sh(t, mnt, "rm -rf old && ls"); out != "" {
		t.Fatalf("ls after rm -rf shows %q", out)
	}
	cmd.Process.Kill()
	unmountForTest(t, mnt)
	waitGone(t, cmd.Process.Pid)
	if n := len(listKeys(t, srv, bucket, "")); n < 50 {
		t.Fatalf("%d objects before the next mount, want 50: the test shows nothing", n)
	}
	mountForeground(t, srv, bucket, "--cache-dir", cacheDir)
	for deadline := time.Now().Add(30 * time.Second); len(listKeys(t, srv, bucket, "")) != 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d objects left 30 s after the next mount", len(listKeys(t, srv, bucket, "")))
		}
	}
}
