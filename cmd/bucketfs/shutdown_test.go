package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitExit waits for a foreground bucketfs to end.
func waitExit(t *testing.T, done <-chan struct{}, logs *bytes.Buffer) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("bucketfs still running a minute after SIGTERM:\n%s", logs)
	}
}

func TestSIGTERMKeepsOpenFilesStaged(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	cacheDir := t.TempDir()
	cmd, mnt, logs := mountForeground(t, srv, bucket, "--cache-dir", cacheDir)
	done := make(chan struct{})
	go func() {
		for cmd.ProcessState == nil {
			time.Sleep(20 * time.Millisecond)
		}
		close(done)
	}()

	// One file saved before the signal, one still open when it comes.
	sh(t, mnt, "echo saved > saved.txt")
	f, err := os.Create(filepath.Join(mnt, "open.txt"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("half written")
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, done, logs)
	f.Close() // the mount is gone: whatever this says, nothing reaches S3

	if got := mustGet(t, srv, bucket, "saved.txt"); string(got.body) != "saved\n" {
		t.Errorf("saved.txt: %q", got.body)
	}
	if obj, ok := getObject(t, srv, bucket, "open.txt"); ok {
		t.Errorf("a file open at SIGTERM was uploaded: %q", obj.body)
	}
	if staged := sh(t, cacheDir, "grep -rl 'half written' . || true"); staged == "" {
		t.Error("the open file's staged data is gone")
	}
	if !strings.Contains(logs.String(), "staged data kept") || !strings.Contains(logs.String(), "open.txt") {
		t.Errorf("the log does not say where open.txt is staged:\n%s", logs)
	}
}

func TestSIGTERMFinishesUploadsInFlight(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	cmd, mnt, logs := mountForeground(t, srv, bucket, "--part-size", "5MiB", "--upload-concurrency", "2")
	done := make(chan struct{})
	go func() {
		for cmd.ProcessState == nil {
			time.Sleep(20 * time.Millisecond)
		}
		close(done)
	}()
	data := make([]byte, 96<<20)
	rand.Read(data)
	f, err := os.Create(filepath.Join(mnt, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	// A random write makes the upload start at close, not while writing.
	f.WriteAt(data[len(data)-1:], int64(len(data)-1))
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- f.Close() }()
	time.Sleep(100 * time.Millisecond) // the upload of 96 MiB is under way
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-closed; err != nil {
		t.Errorf("close during shutdown: %v\n%s", err, logs)
	}
	waitExit(t, done, logs)
	if got := mustGet(t, srv, bucket, "big.bin"); !bytes.Equal(got.body, data) {
		t.Errorf("big.bin: %d bytes, want the whole %d", len(got.body), len(data))
	}
}
