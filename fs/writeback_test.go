package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
	"github.com/bucketfs/bucketfs/cache"
)

// gatedPuts holds every store of the bucket until open is closed.
type gatedPuts struct {
	backend.Bucket
	open chan struct{}
}

func (g gatedPuts) Put(ctx context.Context, in backend.PutInput) (backend.Object, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return backend.Object{}, ctx.Err()
	}
	return g.Bucket.Put(ctx, in)
}

func (g gatedPuts) CompleteUpload(ctx context.Context, in backend.CompleteInput) (backend.Object, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return backend.Object{}, ctx.Err()
	}
	return g.Bucket.CompleteUpload(ctx, in)
}

func mountWriteBack(t *testing.T, b backend.Bucket) string {
	t.Helper()
	return mountMemory(t, nil, func(c *Config) {
		c.WriteBack = true
		c.Bucket = cache.NewMeta(b, cache.MetaOptions{TTL: c.StatTTL, NegativeTTL: c.NegativeTTL})
	})
}

func pendingXattrOf(t *testing.T, mnt string) string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Getxattr(mnt, pendingXattr, buf)
	if err != nil && !errors.Is(err, unix.ENODATA) {
		t.Fatal(err)
	}
	return string(buf[:max(n, 0)])
}

// With --write-back, close returns while S3 has not stored the file yet
// (every PUT is held here); the files are listed, readable and reported
// pending meanwhile, and all reach S3 once it takes them.
func TestWriteBackCloseReturnsBeforeTheUpload(t *testing.T) {
	mem := memory.New("b")
	gate := gatedPuts{Bucket: mem, open: make(chan struct{})}
	mnt := mountWriteBack(t, gate)
	const files = 20
	done := make(chan error, 1)
	go func() {
		for i := range files {
			if err := os.WriteFile(filepath.Join(mnt, fmt.Sprintf("f%02d", i)), []byte(fmt.Sprint("content ", i)), 0o644); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			close(gate.open)
			t.Fatalf("write with S3 holding every PUT: %v", err)
		}
	case <-time.After(10 * time.Second):
		close(gate.open)
		t.Fatal("close waited for S3 with --write-back")
	}
	if names := readDirNames(t, mnt); len(names) != files {
		t.Errorf("ls while uploading: %d names, want %d", len(names), files)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "f07")); string(got) != "content 7" {
		t.Errorf("read while uploading: %q, %v", got, err)
	}
	waitFor(2*time.Second, func() bool { return strings.Count(pendingXattrOf(t, mnt), "\n") == files })
	if report := pendingXattrOf(t, mnt); strings.Count(report, "\n") != files || !strings.Contains(report, "write-back") {
		t.Errorf("pending report while uploading:\n%s", report)
	}
	if n := mem.Requests("put"); n != 0 {
		t.Fatalf("%d PUTs went through the closed gate", n)
	}
	close(gate.open)
	if !waitFor(15*time.Second, func() bool {
		for i := range files {
			if got, _ := memBody(t, mem, fmt.Sprintf("f%02d", i)); got != fmt.Sprint("content ", i) {
				return false
			}
		}
		return true
	}) {
		t.Fatal("S3 lacks files closed with --write-back after the gate opened")
	}
	if !waitFor(5*time.Second, func() bool { return pendingXattrOf(t, mnt) == "" }) {
		t.Errorf("still reported pending after the uploads:\n%s", pendingXattrOf(t, mnt))
	}
}

// fsync still waits for S3 with --write-back: with the server down it
// fails, while close succeeds and leaves the file pending.
func TestWriteBackFsyncWaitsForS3(t *testing.T) {
	mem := memory.New("b")
	mnt := mountWriteBack(t, mem)
	restore := failWrites(mem)
	p := filepath.Join(mnt, "f")
	if err := os.WriteFile(p, []byte("one"), 0o644); err != nil {
		t.Fatalf("close with the server down and --write-back: %v, want success", err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(" two")
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync with the server down: %v, want EIO", err)
	}
	f.Close()
	restore()
	if !waitFor(15*time.Second, func() bool { got, _ := memBody(t, mem, "f"); return got == "one two" }) {
		got, _ := memBody(t, mem, "f")
		t.Fatalf("S3 has %q after the server came back", got)
	}
	if err := os.WriteFile(p, []byte("three"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ = os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(" four")
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if got, _ := memBody(t, mem, "f"); got != "three four" {
		t.Errorf("after fsync returned S3 has %q", got)
	}
	f.Close()
}

// The pending report fits in an attribute (at most 64 KiB, past which
// getxattr fails with E2BIG) however many files are pending: the lines that
// do not fit are counted on a last line.
func TestPendingReportOfThousandsFits(t *testing.T) {
	mem := memory.New("b")
	mnt := mountWriteBack(t, mem)
	restore := failWrites(mem)
	defer restore()
	const files = 1500
	for i := range files {
		if err := os.WriteFile(filepath.Join(mnt, fmt.Sprintf("a-rather-long-name-of-a-pending-file-%04d.txt", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	report := pendingXattrOf(t, mnt)
	lines := strings.Split(strings.TrimSuffix(report, "\n"), "\n")
	last := lines[len(lines)-1]
	var more int
	if _, err := fmt.Sscanf(last, "more\t-\t-\t-\t%d", &more); err != nil || len(lines)-1+more != files {
		t.Fatalf("report of %d bytes, %d lines, ends %q: want the lines that fit and a count of the rest adding up to %d", len(report), len(lines), last, files)
	}
}

// A directory whose only files are pending (S3 does not have them yet) is
// not empty: rmdir fails with ENOTEMPTY instead of hiding them.
func TestRmdirKeepsADirectoryOfPendingFiles(t *testing.T) {
	mem := memory.New("b")
	mnt := mountMemory(t, mem, nil)
	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	restore := failWrites(mem)
	defer restore()
	if err := os.WriteFile(filepath.Join(mnt, "d", "f"), []byte("pending"), 0o644); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write with uploads failing: %v, want EIO", err)
	}
	if err := syscall.Rmdir(filepath.Join(mnt, "d")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("rmdir of a directory holding a pending file: %v, want ENOTEMPTY", err)
	}
}
