package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

// binary is the bucketfs executable under test: $BUCKETFS_BIN, or one built
// for this test run.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		binary = os.Getenv("BUCKETFS_BIN")
		if binary == "" && !testing.Short() {
			dir, err := os.MkdirTemp("", "bucketfs-bin")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			binary = filepath.Join(dir, "bucketfs")
			if out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", binary, ".").CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build bucketfs: %v\n%s", err, out)
				return 1
			}
		}
		defer stopSharedServer()
		return m.Run()
	}()
	os.Exit(code)
}

var (
	sharedOnce sync.Once
	shared     *miniotest.Server
	sharedErr  error
	sharedDir  string
)

// server returns a MinIO server shared by the tests that do not stop it.
func server(t *testing.T) *miniotest.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs MinIO")
	}
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "bucketfs-server")
		switch {
		case sharedErr != nil:
		case onVersity():
			shared, sharedErr = miniotest.StartVersityServer(sharedDir)
		default:
			shared, sharedErr = miniotest.StartServer(sharedDir)
		}
	})
	if sharedErr != nil {
		t.Fatalf("start the test server: %v", sharedErr)
	}
	return shared
}

// onVersity tells whether the shared server is versitygw
// ($BUCKETFS_SERVER=versitygw: make test runs the suite a second time so)
// rather than MinIO.
func onVersity() bool { return os.Getenv("BUCKETFS_SERVER") == "versitygw" }

// needs skips t on a server that lacks feature, naming it: versitygw has
// no server-side encryption, storage classes, object ACLs or MinIO's
// listing extension.
func needs(t *testing.T, srv *miniotest.Server, feature string) {
	t.Helper()
	if srv.Versity() {
		t.Skipf("versitygw lacks %s", feature)
	}
}

func stopSharedServer() {
	if shared != nil {
		shared.Stop()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
}

var bucketSeq struct {
	sync.Mutex
	n int
}

// newBucket creates a bucket with a unique name and the given objects.
func newBucket(t *testing.T, srv *miniotest.Server, objects map[string]object) string {
	t.Helper()
	bucketSeq.Lock()
	bucketSeq.n++
	name := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e9, bucketSeq.n)
	bucketSeq.Unlock()
	ctx := context.Background()
	if err := srv.CreateBucket(ctx, name); err != nil {
		t.Fatal(err)
	}
	for key, o := range objects {
		putObject(t, srv, name, key, o)
	}
	return name
}

type object struct {
	body        []byte
	contentType string
	meta        map[string]string
}

func putObject(t *testing.T, srv *miniotest.Server, bucket, key string, o object) {
	t.Helper()
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(o.body), Metadata: o.meta}
	if o.contentType != "" {
		in.ContentType = aws.String(o.contentType)
	}
	if _, err := srv.Client().PutObject(context.Background(), in); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// bucketfs runs the binary to completion with the server's credentials in
// its environment.
func bucketfs(t *testing.T, srv *miniotest.Server, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	if binary == "" {
		t.Skip("integration test: -short builds no binary")
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), srv.Env()...), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func connectArgs(srv *miniotest.Server) []string {
	return []string{"--endpoint-url", srv.Endpoint, "--path-style"}
}

// mountBackground mounts bucket with the binary in its default background
// mode and unmounts it when the test ends.
func mountBackground(t *testing.T, srv *miniotest.Server, bucket string, args ...string) string {
	t.Helper()
	mnt := t.TempDir()
	args = append(append(connectArgs(srv), args...), bucket, mnt)
	if _, stderr, err := bucketfs(t, srv, nil, args...); err != nil {
		t.Fatalf("bucketfs %v: %v\n%s", args, err, stderr)
	}
	if !isMounted(mnt) {
		t.Fatalf("bucketfs returned but %s is not mounted", mnt)
	}
	t.Cleanup(func() { unmountForTest(t, mnt) })
	return mnt
}

// mountForeground runs `bucketfs -f` and returns once the mount is ready.
func mountForeground(t *testing.T, srv *miniotest.Server, bucket string, args ...string) (*exec.Cmd, string, *bytes.Buffer) {
	t.Helper()
	mnt := t.TempDir()
	if binary == "" {
		t.Skip("integration test: -short builds no binary")
	}
	cmd := exec.Command(binary, append(append(append([]string{"-f"}, connectArgs(srv)...), args...), bucket, mnt)...)
	cmd.Env = append(os.Environ(), srv.Env()...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	endOnCleanup(t, cmd, mnt, exited)
	for deadline := time.Now().Add(20 * time.Second); !isMounted(mnt); {
		select {
		case <-exited:
			t.Fatalf("bucketfs -f exited before mounting:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not mounted after 20s:\n%s", logs.String())
		}
	}
	return cmd, mnt, &logs
}

// endOnCleanup unmounts mnt and ends cmd when the test ends: SIGTERM,
// then SIGKILL after 10 s; exited closes once cmd has been waited for.
func endOnCleanup(t *testing.T, cmd *exec.Cmd, mnt string, exited <-chan struct{}) {
	t.Cleanup(func() {
		unmountForTest(t, mnt)
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
}

func isMounted(dir string) bool {
	data, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == dir {
			return true
		}
	}
	return false
}

// unmountForTest unmounts dir, lazily if it is busy, so no test leaves a
// mount behind.
func unmountForTest(t *testing.T, dir string) {
	if !isMounted(dir) {
		return
	}
	if err := syscall.Unmount(dir, 0); err != nil {
		t.Logf("unmount %s: %v; detaching lazily", dir, err)
		syscall.Unmount(dir, syscall.MNT_DETACH)
	}
	for i := 0; i < 100 && isMounted(dir); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// sh runs a shell command line and returns its output.
func sh(t *testing.T, dir, line string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", line)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return string(out)
}

func deleteObject(srv *miniotest.Server, bucket, key string) error {
	_, err := srv.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	return err
}

// startPrivateServer starts a MinIO server for a test that stops it.
func startPrivateServer(t *testing.T) *miniotest.Server {
	return miniotest.Start(t)
}
