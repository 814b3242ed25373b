package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

// crashTrials is how many times each crash scenario runs:
// $BUCKETFS_CRASH_TRIALS (make stress sets 20), else 2.
func crashTrials() int {
	if n, err := strconv.Atoi(os.Getenv("BUCKETFS_CRASH_TRIALS")); err == nil && n > 0 {
		return n
	}
	return 2
}

// TestCrashLoop kills the daemon (kill -9, or SIGTERM, alternately) at a
// random moment during a 200 MiB write, an overwrite, a directory rename
// of 100 files and an rm -rf of 100 files. After each, a fresh mount with
// the same cache dir must leave: the object complete new or complete old,
// never truncated or mixed; the rename complete or completed by repeating
// it; the removal finished by repeating it; no multipart upload left.
func TestCrashLoop(t *testing.T) {
	srv := server(t)
	big := make([]byte, 200<<20)
	rand.Read(big)
	old := bytes.Repeat([]byte("old content "), 1<<20) // 12 MiB
	src := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(src, big, 0o644); err != nil {
		t.Fatal(err)
	}
	type scenario struct {
		name    string
		prepare func(t *testing.T, bucket string)
		run     string // shell command in the mount, killed midway
		check   func(t *testing.T, bucket, mnt string)
	}
	files := func(dir string) map[string]object {
		m := map[string]object{}
		for i := range 100 {
			m[fmt.Sprintf("%s/f%03d", dir, i)] = object{body: []byte(fmt.Sprint(i))}
		}
		return m
	}
	wholeOrNothing := func(key string, want ...[]byte) func(t *testing.T, bucket, mnt string) {
		return func(t *testing.T, bucket, mnt string) {
			obj, ok := getObject(t, srv, bucket, key)
			if !ok {
				if len(want) > 1 {
					t.Errorf("%s is gone: neither the old nor the new content", key)
				}
				return
			}
			for _, w := range want {
				if bytes.Equal(obj.body, w) {
					return
				}
			}
			t.Errorf("%s holds %d bytes: truncated or mixed", key, len(obj.body))
		}
	}
	scenarios := []scenario{
		{"write", nil, "cp " + src + " big", wholeOrNothing("big", big)},
		{"overwrite", func(t *testing.T, bucket string) { putObject(t, srv, bucket, "big", object{body: old}) },
			"cp " + src + " big", wholeOrNothing("big", old, big)},
		{"rename", func(t *testing.T, bucket string) {
			for k, o := range files("d") {
				putObject(t, srv, bucket, k, o)
			}
		}, "mv d e", func(t *testing.T, bucket, mnt string) {
			if _, err := os.Stat(filepath.Join(mnt, "d")); err == nil {
				// -T: e exists now, and plain mv would move d into it.
				if out, err := exec.Command("mv", "-T", filepath.Join(mnt, "d"), filepath.Join(mnt, "e")).CombinedOutput(); err != nil {
					t.Errorf("repeating the interrupted mv: %v %s", err, out)
				}
			}
			for k, o := range files("e") {
				if got, ok := getObject(t, srv, bucket, k); !ok || !bytes.Equal(got.body, o.body) {
					t.Errorf("%s after the rename: %q, %v", k, got.body, ok)
				}
			}
			if keys := listKeys(t, srv, bucket, "d/"); len(keys) != 0 {
				t.Errorf("left under d/: %q", keys)
			}
			if t.Failed() {
				t.Logf("keys: %q", listKeys(t, srv, bucket, ""))
			}
		}},
		{"rm -rf", func(t *testing.T, bucket string) {
			for k, o := range files("d") {
				putObject(t, srv, bucket, k, o)
			}
		}, "rm -rf d", func(t *testing.T, bucket, mnt string) {
			for k, o := range files("d") {
				if got, ok := getObject(t, srv, bucket, k); ok && !bytes.Equal(got.body, o.body) {
					t.Errorf("%s after an interrupted rm: %q", k, got.body)
				}
			}
			if out, err := exec.Command("rm", "-rf", filepath.Join(mnt, "d")).CombinedOutput(); err != nil {
				t.Errorf("repeating the interrupted rm -rf: %v %s", err, out)
			}
			if keys := listKeys(t, srv, bucket, "d/"); len(keys) != 0 {
				t.Errorf("left under d/ after rm -rf again: %q", keys)
			}
		}},
	}
	trials := map[string]int{}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			for trial := range crashTrials() {
				signal := []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM}[trial%2]
				bucket := newBucket(t, srv, nil)
				if sc.prepare != nil {
					sc.prepare(t, bucket)
				}
				cacheDir := t.TempDir()
				cmd, mnt, oldLogs := mountForeground(t, srv, bucket, "--cache-dir", cacheDir, "--part-size", "8MiB", "--debug")
				op := exec.Command("bash", "-c", sc.run)
				op.Dir = mnt
				if err := op.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Duration(mrand.Int64N(int64(1500 * time.Millisecond))))
				cmd.Process.Signal(signal)
				for deadline := time.Now().Add(60 * time.Second); cmd.ProcessState == nil && signal == syscall.SIGTERM; time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("bucketfs still running a minute after SIGTERM")
					}
				}
				unmountForTest(t, mnt)
				op.Wait()
				// A fresh mount takes over the journal and aborts what the
				// old one left unfinished.
				_, mnt2, logs := mountForeground(t, srv, bucket, "--cache-dir", cacheDir)
				// It may be uploading what the journal holds (200 MiB, in
				// parts): an upload is an orphan only if it is still there
				// once nothing is pending.
				settled := func() bool {
					pending, _, _ := bucketfs(t, srv, nil, "pending", mnt2)
					return pending == "" && openUploads(t, srv, bucket) == 0
				}
				for deadline := time.Now().Add(90 * time.Second); !settled(); time.Sleep(200 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Errorf("trial %d (%v): %d multipart uploads left after the fresh mount\n%s\nold mount:\n%s", trial, signal, openUploads(t, srv, bucket), logs, oldLogs)
						break
					}
				}
				time.Sleep(200 * time.Millisecond) // pending uploads the fresh mount resumes
				sc.check(t, bucket, mnt2)
				unmountForTest(t, mnt2)
				trials[sc.name]++
			}
		})
	}
	t.Logf("crash trials by scenario: %v; objects found truncated or mixed are reported above (none: the test passes)", trials)
}

// TestCrashWhileUploadStarts: the daemon dies (kill -9) after S3 created a
// multipart upload but before its reply, with the upload's ID, arrived. The
// journal never learnt the ID; the next mount must still find and abort
// the upload, or its parts are billed until a lifecycle rule removes them.
func TestCrashWhileUploadStarts(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	proxy := miniotest.StartFaultProxy(t, srv.Endpoint)
	// The reply's headers and half its body arrive, then nothing.
	proxy.Set(miniotest.Rule{Op: "START", Fault: miniotest.StallBody, Delay: time.Minute})
	cacheDir := t.TempDir()
	cmd, mnt, oldLogs := mountForeground(t, srv, bucket, "--endpoint-url", proxy.Endpoint, "--cache-dir", cacheDir, "--part-size", "5MiB")
	src := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(src, make([]byte, 12<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	cp := exec.Command("cp", src, filepath.Join(mnt, "big"))
	if err := cp.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); proxy.Injected()[miniotest.StallBody] == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no upload started in 20 s: the test shows nothing\n%s", oldLogs)
		}
	}
	time.Sleep(100 * time.Millisecond) // the server has answered the proxy
	if n := openUploads(t, srv, bucket); n != 1 {
		t.Fatalf("%d multipart uploads open while the reply stalls, want 1", n)
	}
	cmd.Process.Kill()
	unmountForTest(t, mnt)
	cp.Wait()

	proxy.Set()
	// The same endpoint: the journal is the bucket's at that endpoint.
	_, mnt2, logs := mountForeground(t, srv, bucket, "--endpoint-url", proxy.Endpoint, "--cache-dir", cacheDir)
	for deadline := time.Now().Add(20 * time.Second); openUploads(t, srv, bucket) != 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the upload the dead mount started is still open 20 s after the next mount\n%s", logs)
		}
	}
	unmountForTest(t, mnt2)
}
