package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

// mountThrough mounts bucket of srv through a fault proxy.
func mountThrough(t *testing.T, srv *miniotest.Server, bucket string, args ...string) (*miniotest.FaultProxy, string) {
	t.Helper()
	proxy := miniotest.StartFaultProxy(t, srv.Endpoint)
	mnt := t.TempDir()
	args = append(append([]string{"--endpoint-url", proxy.Endpoint, "--path-style"}, args...), bucket, mnt)
	if _, stderr, err := bucketfs(t, srv, nil, args...); err != nil {
		t.Fatalf("bucketfs %v: %v\n%s", args, err, stderr)
	}
	t.Cleanup(func() { unmountForTest(t, mnt) })
	return proxy, mnt
}

func openUploads(t *testing.T, srv *miniotest.Server, bucket string) int {
	t.Helper()
	out, err := srv.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

// TestFaultBursts: with one request in three of every kind answered 500,
// 503 SlowDown or a reset connection, everyday commands still succeed (the
// SDK's retries) and every byte is right.
func TestFaultBursts(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	proxy, mnt := mountThrough(t, srv, bucket, "--part-size", "5MiB", "--stat-ttl", "1s")
	big := make([]byte, 12<<20+7)
	rand.Read(big)
	var rules []miniotest.Rule
	for i, op := range []string{"HEAD", "GET", "LIST", "PUT", "COPY", "DELETE", "START", "PART", "COMPLETE"} {
		fault := []miniotest.Fault{miniotest.Status500, miniotest.SlowDown503, miniotest.ResetBefore}[i%3]
		rules = append(rules, miniotest.Rule{Op: op, Every: 3, Fault: fault})
	}
	proxy.Set(rules...)
	if err := os.WriteFile(filepath.Join(mnt, "big.bin"), big, 0o644); err != nil {
		t.Fatalf("write 12 MiB through faults: %v", err)
	}
	got := sh(t, mnt, "mkdir d && echo small > d/s && ls -l d | wc -l && cat d/s && mv d/s d/t && "+
		"setfattr -n user.x -v 1 d/t && getfattr --only-values -n user.x d/t && echo && mv d e && cp e/t e/u && rm -r e && ls")
	if got != "2\nsmall\n1\nbig.bin\n" {
		t.Errorf("commands through faults printed %q", got)
	}
	read, err := os.ReadFile(filepath.Join(mnt, "big.bin"))
	if err != nil || !bytes.Equal(read, big) {
		t.Errorf("read back through faults: %d bytes, %v", len(read), err)
	}
	if obj := mustGet(t, srv, bucket, "big.bin"); !bytes.Equal(obj.body, big) {
		t.Error("S3 does not hold the exact bytes")
	}
	injected := proxy.Injected()
	t.Logf("faults injected %v over requests %v", injected, proxy.Seen())
	if len(injected) < 3 {
		t.Errorf("too few faults injected to show anything: %v", injected)
	}
	// The SDK retried the faulted attempts, and the metrics counted it.
	total := 0
	for _, n := range injected {
		total += n
	}
	if s := mountStats(t, mnt); s.Retries < int64(total)/2 {
		t.Errorf("user.s3.stats counts %d retries for %d faults injected", s.Retries, total)
	}
}

// TestReplyLostAfterCommit: S3 stored an upload but its reply was lost;
// the SDK's retry then finds it there (412, or 404 for a completed
// multipart upload). That is success, not a conflict. A lost reply to the
// start of a multipart upload makes the retry start a second one: the
// first must not be left open.
func TestReplyLostAfterCommit(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	proxy, mnt := mountThrough(t, srv, bucket, "--part-size", "5MiB")
	for _, tc := range []struct {
		op   string
		size int
	}{{"PUT", 100}, {"COMPLETE", 11 << 20}, {"START", 11 << 20}} {
		data := make([]byte, tc.size)
		rand.Read(data)
		proxy.Set(miniotest.Rule{Op: tc.op, Times: 1, Fault: miniotest.ResetAfter})
		name := strings.ToLower(tc.op) + ".bin"
		if err := os.WriteFile(filepath.Join(mnt, name), data, 0o644); err != nil {
			t.Errorf("%s whose reply was lost: %v, want success", tc.op, err)
		}
		if proxy.Injected()[miniotest.ResetAfter] == 0 {
			t.Fatalf("%s: no reply was lost: the test shows nothing", tc.op)
		}
		if obj := mustGet(t, srv, bucket, name); !bytes.Equal(obj.body, data) {
			t.Errorf("%s: S3 holds %d bytes", tc.op, len(obj.body))
		}
		if n := openUploads(t, srv, bucket); n != 0 {
			t.Errorf("%s: %d multipart uploads left open", tc.op, n)
		}
		proxy.Set()
	}
	if stdout, _, _ := bucketfs(t, srv, nil, "pending", mnt); stdout != "" {
		t.Errorf("bucketfs pending after lost replies:\n%s", stdout)
	}
}

// TestFailingPartLeavesNothingBehind: a part that keeps failing makes the
// close fail with EIO and the file pending, with no multipart upload left
// on the server; once parts go through again, the retrier stores it.
func TestFailingPartLeavesNothingBehind(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	proxy, mnt := mountThrough(t, srv, bucket, "--part-size", "5MiB")
	data := make([]byte, 11<<20)
	rand.Read(data)
	proxy.Set(miniotest.Rule{Op: "PART", Every: 1, Fault: miniotest.Status500})
	err := os.WriteFile(filepath.Join(mnt, "f.bin"), data, 0o644)
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("close with a failing part: %v, want EIO", err)
	}
	if n := openUploads(t, srv, bucket); n != 0 {
		t.Errorf("%d multipart uploads left on the server", n)
	}
	if stdout, _, _ := bucketfs(t, srv, nil, "pending", mnt); !strings.Contains(stdout, "\tpending\tf.bin\t") {
		t.Errorf("bucketfs pending:\n%s", stdout)
	}
	proxy.Set()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if obj, ok := getObject(t, srv, bucket, "f.bin"); ok && bytes.Equal(obj.body, data) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not stored a minute after parts went through again")
		}
	}
	if n := openUploads(t, srv, bucket); n != 0 {
		t.Errorf("%d multipart uploads left after the retry", n)
	}
}

// TestServerDownThroughProxy: with the server dropped (every connection
// reset), each kind of call that needs it fails with EIO within the
// documented bound (seconds), none hangs, and all of them work again once
// it is back.
func TestServerDownThroughProxy(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"f": {body: []byte("alive")}, "d/g": {body: []byte("g")}})
	proxy, mnt := mountThrough(t, srv, bucket, "--stat-ttl", "1s", "--negative-ttl", "1s")
	calls := []struct {
		name string
		call func() error
	}{
		{"stat", func() error { _, err := os.Stat(filepath.Join(mnt, "f")); return err }},
		{"read", func() error { _, err := os.ReadFile(filepath.Join(mnt, "d/g")); return err }},
		{"ls", func() error { _, err := os.ReadDir(filepath.Join(mnt, "d")); return err }},
		{"mkdir", func() error { return os.Mkdir(filepath.Join(mnt, "e"), 0o755) }},
		{"setfattr", func() error { return syscall.Setxattr(filepath.Join(mnt, "f"), "user.x", []byte("1"), 0) }},
		{"chmod", func() error { return os.Chmod(filepath.Join(mnt, "f"), 0o600) }},
		{"rename", func() error { return os.Rename(filepath.Join(mnt, "f"), filepath.Join(mnt, "f2")) }},
		{"rm", func() error { return os.Remove(filepath.Join(mnt, "d/g")) }},
	}
	proxy.Down(true)
	time.Sleep(1100 * time.Millisecond) // past --stat-ttl: nothing is answered from the cache
	for _, c := range calls {
		start := time.Now()
		err := c.call()
		took := time.Since(start)
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("%s with the server down: %v, want EIO", c.name, err)
		}
		if took > 15*time.Second {
			t.Errorf("%s took %v to fail, want seconds", c.name, took)
		}
		t.Logf("%s failed in %v", c.name, took.Round(time.Millisecond))
	}
	proxy.Down(false)
	time.Sleep(1100 * time.Millisecond) // past --negative-ttl
	for _, c := range calls {
		if err := c.call(); err != nil {
			t.Errorf("%s after the server came back: %v", c.name, err)
		}
	}
	// d held only g: it goes with it.
	if got := sh(t, mnt, "find . | sort | tr '\\n' ' '"); got != ". ./e ./f2 " {
		t.Errorf("the tree after the server came back: %q", got)
	}
}

// TestBrokenRepliesAreRetried: a reply whose body is cut or stalls
// halfway, a reply delayed, or a 404 for an object that exists, once per
// kind of request, fails nothing: reads, listings and uploads (small and
// multipart) complete with the right bytes.
func TestBrokenRepliesAreRetried(t *testing.T) {
	srv := server(t)
	objects := map[string]object{}
	for i := range 300 { // more than one page of listing
		objects[fmt.Sprintf("d/f%03d", i)] = object{body: []byte(strconv.Itoa(i))}
	}
	big := make([]byte, 20<<20)
	rand.Read(big)
	objects["big"] = object{body: big}
	bucket := newBucket(t, srv, objects)
	for _, fault := range []miniotest.Fault{miniotest.CutBody, miniotest.StallBody, miniotest.DelayReply, miniotest.NotFound404} {
		t.Run(string(fault), func(t *testing.T) {
			proxy, mnt := mountThrough(t, srv, bucket, "--part-size", "5MiB")
			var rules []miniotest.Rule
			for _, op := range []string{"LIST", "GET", "PUT", "COMPLETE"} {
				if fault == miniotest.NotFound404 && op != "GET" {
					continue // only a read can meet an object that S3 has but does not show yet
				}
				rules = append(rules, miniotest.Rule{Op: op, Times: 1, Fault: fault, Delay: time.Second})
			}
			proxy.Set(rules...)
			if entries, err := os.ReadDir(filepath.Join(mnt, "d")); err != nil || len(entries) != 300 {
				t.Errorf("ls of 300 files: %d entries, %v", len(entries), err)
			}
			if got, err := os.ReadFile(filepath.Join(mnt, "big")); err != nil || !bytes.Equal(got, big) {
				t.Errorf("read of 20 MiB: %d bytes, %v", len(got), err)
			}
			for name, size := range map[string]int{"small": 100, "multi": 11 << 20} {
				data := make([]byte, size)
				rand.Read(data)
				if err := os.WriteFile(filepath.Join(mnt, name), data, 0o644); err != nil {
					t.Errorf("write %s: %v", name, err)
				} else if obj := mustGet(t, srv, bucket, name); !bytes.Equal(obj.body, data) {
					t.Errorf("%s on S3: %d bytes", name, len(obj.body))
				}
			}
			if len(proxy.Injected()) == 0 {
				t.Error("no fault injected: the test shows nothing")
			}
			t.Logf("injected %v", proxy.Injected())
		})
	}
}
