package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

// journalFiles is how many files the journal tests write while the
// server is down: $BUCKETFS_JOURNAL_FILES (make stress sets more), else 10.
func journalFiles() int {
	if n, err := strconv.Atoi(os.Getenv("BUCKETFS_JOURNAL_FILES")); err == nil && n >= 2 {
		return n
	}
	return 10
}

// writeWhileDown writes through the mount while the server is stopped:
// half the files with a program that checks close() (EIO), half with a
// shell redirection, which ignores it, all at once.
func writeWhileDown(t *testing.T, srv *miniotest.Server, mnt string) map[string]string {
	t.Helper()
	// The mount has seen the directory: names it did not have can be
	// created while the server is away (a name it knows nothing about
	// fails with EIO then).
	sh(t, mnt, "ls")
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range journalFiles() {
		checked := i%2 == 0
		name := fmt.Sprintf("redirected-%03d.txt", i)
		if checked {
			name = fmt.Sprintf("checked-%03d.txt", i)
		}
		body := fmt.Sprintf("file %d, written while the server was down\n", i)
		want[name] = body
		wg.Go(func() {
			var err error
			if checked {
				err = os.WriteFile(filepath.Join(mnt, name), []byte(body), 0o644)
				if !errors.Is(err, syscall.EIO) {
					err = fmt.Errorf("close: %v, want EIO", err)
				} else {
					err = nil
				}
			} else if out, cerr := exec.Command("bash", "-c", fmt.Sprintf("printf '%%s\\n' '%s' > %s", strings.TrimSuffix(body, "\n"), filepath.Join(mnt, name))).CombinedOutput(); cerr != nil {
				err = fmt.Errorf("%v %s", cerr, out)
			}
			if err != nil {
				mu.Lock()
				t.Errorf("%s: %v", name, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // the releases
	return want
}

// waitObjects waits up to a minute for S3 to hold want, byte for byte,
// and reports how many of them it holds, and when.
func waitObjects(t *testing.T, srv *miniotest.Server, bucket string, want map[string]string) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	stored := 0
	for key, body := range want {
		for {
			got, ok := getObject(t, srv, bucket, key)
			if ok && string(got.body) == body {
				stored++
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s not in S3 a minute after the server came back (has it: %v, %q)", key, ok, got.body)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("recovered %d of %d files written while the server was down, all within %v", stored, len(want), time.Since(start).Round(100*time.Millisecond))
}

// TestPendingUploadsReachS3: files whose upload failed while the server was
// down reach it once it is back, with no further action.
func TestPendingUploadsReachS3(t *testing.T) {
	srv := startPrivateServer(t)
	bucket := newBucket(t, srv, nil)
	cacheDir := t.TempDir()
	_, mnt, logs := mountForeground(t, srv, bucket, "--cache-dir", cacheDir)
	want := writeWhileDown(t, srv, mnt)
	if got := strings.Fields(sh(t, mnt, "ls")); len(got) != len(want) {
		t.Errorf("ls while pending lists %d files, want %d: %q", len(got), len(want), got)
	}
	stdout, _, err := bucketfs(t, srv, nil, "pending", mnt)
	if err != nil || strings.Count(stdout, "\tpending\t") != len(want) || !strings.Contains(stdout, fmt.Sprintf("\tchecked-000.txt\t%d\t", len(want["checked-000.txt"]))) {
		t.Errorf("bucketfs pending: %v\n%s", err, stdout)
	}
	if s := mountStats(t, mnt); s.UploadsPending != int64(len(want)) || s.StagedBytes == 0 {
		t.Errorf("user.s3.stats while the server is down: %d uploads pending, %d bytes staged; want %d pending",
			s.UploadsPending, s.StagedBytes, len(want))
	}
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	waitObjects(t, srv, bucket, want)
	for deadline := time.Now().Add(10 * time.Second); mountStats(t, mnt).UploadsPending != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("user.s3.stats still counts pending uploads once S3 has them all")
			break
		}
	}
	if !strings.Contains(logs.String(), "pending upload stored") {
		t.Errorf("the log does not say the pending files were stored:\n%s", logs)
	}
}

// TestPendingUploadsSurviveRemount: the same after the mount ends, by
// kill -9 of the daemon or by umount, and a fresh mount with the same
// cache dir.
func TestPendingUploadsSurviveRemount(t *testing.T) {
	for _, end := range []string{"kill -9", "umount"} {
		t.Run(end, func(t *testing.T) {
			srv := startPrivateServer(t)
			bucket := newBucket(t, srv, nil)
			cacheDir := t.TempDir()
			cmd, mnt, logs := mountForeground(t, srv, bucket, "--cache-dir", cacheDir)
			want := writeWhileDown(t, srv, mnt)
			if end == "kill -9" {
				cmd.Process.Kill()
			}
			unmountForTest(t, mnt)
			if end == "umount" {
				for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "pending at unmount"); time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("no warning about pending files at unmount:\n%s", logs)
					}
				}
			}
			if err := srv.StartAgain(); err != nil {
				t.Fatal(err)
			}
			if _, ok := getObject(t, srv, bucket, "checked-000.txt"); ok {
				t.Fatal("stored before the new mount: the test shows nothing")
			}
			_, mnt2, logs2 := mountForeground(t, srv, bucket, "--cache-dir", cacheDir)
			waitObjects(t, srv, bucket, want)
			if !strings.Contains(logs2.String(), "resuming a pending upload") {
				t.Errorf("the log does not say what it resumed:\n%s", logs2)
			}
			if got := sh(t, mnt2, "cat checked-000.txt"); got != want["checked-000.txt"] {
				t.Errorf("through the new mount: %q", got)
			}
		})
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
}
