package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// randomReads reads n blocks of 4 KiB at random block offsets of f, of
// size bytes, and checks each against want unless it is nil; it returns
// the distinct blocks read.
func randomReads(t *testing.T, f *os.File, size int64, want []byte, n int, seed uint64) int {
	t.Helper()
	rng := mrand.New(mrand.NewPCG(seed, seed))
	buf := make([]byte, 4<<10)
	distinct := map[int64]bool{}
	for range n {
		off := rng.Int64N(size/int64(len(buf))) * int64(len(buf))
		distinct[off] = true
		if _, err := f.ReadAt(buf, off); err != nil || (want != nil && !bytes.Equal(buf, want[off:off+int64(len(buf))])) {
			t.Fatalf("read at %d: %v or wrong bytes", off, err)
		}
	}
	return len(distinct)
}

// settled waits until the GET count of the mount stops moving (a
// background fetch finished) and returns it.
func settled(t *testing.T, addr string) int64 {
	t.Helper()
	last := metric(t, addr, "get")
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		time.Sleep(300 * time.Millisecond)
		now := metric(t, addr, "get")
		if now == last {
			return now
		}
		last = now
	}
	t.Fatal("GETs still going after 30s")
	return 0
}

// openForTest opens path for reading until the test ends.
func openForTest(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// A file read at random is fetched whole in the background (below
// --fetch-whole); from then on every read of it while it is open is
// local: no GET.
func TestRandomReaderGetsTheWholeObject(t *testing.T) {
	srv := server(t)
	data := make([]byte, 48<<20)
	rand.Read(data)
	bucket := newBucket(t, srv, map[string]object{"db.sqlite": {body: data}})
	addr := freeAddr(t)
	_, mnt, _ := mountForeground(t, srv, bucket, "--metrics-addr", addr)
	f := openForTest(t, filepath.Join(mnt, "db.sqlite"))
	randomReads(t, f, int64(len(data)), data, 100, 1)
	gets := settled(t, addr)
	if max := int64(100 + 48/8 + 2); gets > max {
		t.Fatalf("%d GETs for 100 random reads and a whole fetch in 8 MiB ranges; want at most %d", gets, max)
	}
	got, err := io.ReadAll(io.NewSectionReader(f, 0, int64(len(data))))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after the whole fetch: %v or wrong bytes", err)
	}
	randomReads(t, f, int64(len(data)), data, 300, 2)
	if after := metric(t, addr, "get"); after != gets {
		t.Fatalf("%d GETs after the object was fetched whole; want 0", after-gets)
	}
}

// Above --fetch-whole, random reads fetch their own blocks: one GET each,
// nothing in the background.
func TestRandomReadsAboveTheThresholdFetchTheirBlocks(t *testing.T) {
	srv := server(t)
	data := make([]byte, 32<<20)
	rand.Read(data)
	bucket := newBucket(t, srv, map[string]object{"disk.img": {body: data}})
	addr := freeAddr(t)
	_, mnt, _ := mountForeground(t, srv, bucket, "--metrics-addr", addr, "--fetch-whole", "16MiB")
	distinct := randomReads(t, openForTest(t, filepath.Join(mnt, "disk.img")), int64(len(data)), data, 200, 3)
	// The kernel may merge a read with its neighbour or read ahead once;
	// it never makes more requests than reads.
	if gets := settled(t, addr); gets > int64(distinct)+2 {
		t.Fatalf("%d GETs for %d distinct 4 KiB reads", gets, distinct)
	}
}

// With --cache-size, a file read once is read again after a remount
// without a GET; a changed object is fetched again, never served stale.
func TestCacheSizeKeepsDataAcrossMounts(t *testing.T) {
	srv := server(t)
	data := make([]byte, 20<<20+77)
	rand.Read(data)
	bucket := newBucket(t, srv, map[string]object{"movie.mkv": {body: data}})
	cacheDir := t.TempDir()
	// seen is what each mount logged and left in the cache dir, for a
	// failure to show (it failed once in CI, and never since).
	var seen strings.Builder
	read := func(want []byte) (gets int64) {
		t.Helper()
		addr := freeAddr(t)
		cmd, mnt, logs := mountForeground(t, srv, bucket, "--metrics-addr", addr, "--cache-dir", cacheDir, "--cache-size", "1GiB")
		got, err := os.ReadFile(filepath.Join(mnt, "movie.mkv"))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read: %v or wrong bytes (%d of %d)", err, len(got), len(want))
		}
		gets = metric(t, addr, "get")
		unmountForTest(t, mnt)
		waitGone(t, cmd.Process.Pid) // the next mount takes over its kept copies
		fmt.Fprintf(&seen, "mount %d: %d GETs, logs:\n%s", cmd.Process.Pid, gets, logs)
		files, _ := filepath.Glob(filepath.Join(cacheDir, "data", "*", "*"))
		for _, name := range files {
			if info, err := os.Stat(name); err == nil {
				fmt.Fprintf(&seen, "  kept %s (%d bytes)\n", filepath.Base(name), info.Size())
			}
		}
		return gets
	}
	if gets := read(data); gets == 0 {
		t.Fatal("the first read sent no GET")
	}
	if gets := read(data); gets != 0 {
		t.Fatalf("re-read after a remount sent %d GETs; want 0\n%s", gets, seen.String())
	}
	changed := make([]byte, len(data))
	rand.Read(changed)
	putObject(t, srv, bucket, "movie.mkv", object{body: changed})
	if gets := read(changed); gets == 0 {
		t.Fatal("a changed object was served from the old copy")
	}
}

// waitGone waits for the process pid, which the test started, to end.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); syscall.Kill(pid, 0) == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running 20s after its unmount", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A file whose whole version is kept (--cache-size) is read by the kernel
// from the local copy itself after a remount (FUSE passthrough): no READ
// reaches the daemon. Once it is closed, the file can be written, and the
// next open reads what was written.
func TestKeptCopyIsReadByTheKernel(t *testing.T) {
	if !canPassThrough() {
		t.Skip("FUSE passthrough needs CAP_SYS_ADMIN")
	}
	srv := server(t)
	data := make([]byte, 8<<20)
	rand.Read(data)
	bucket := newBucket(t, srv, map[string]object{"kept.bin": {body: data}})
	cacheDir := t.TempDir()
	args := []string{"--cache-dir", cacheDir, "--cache-size", "1GiB", "--debug"}
	cmd, mnt, _ := mountForeground(t, srv, bucket, args...)
	if got, err := os.ReadFile(filepath.Join(mnt, "kept.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("first read: %v", err)
	}
	unmountForTest(t, mnt)
	waitGone(t, cmd.Process.Pid)

	_, mnt, logs := mountForeground(t, srv, bucket, args...)
	path := filepath.Join(mnt, "kept.bin")
	reader := openForTest(t, path)
	before := strings.Count(logs.String(), ": READ ")
	got, err := io.ReadAll(reader)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read of the kept copy: %v or wrong bytes", err)
	}
	if reads := strings.Count(logs.String(), ": READ ") - before; reads != 0 {
		t.Errorf("%d READ requests reached the daemon; want 0 (passthrough)", reads)
	}

	// The kernel wants every descriptor of a passthrough node to pass
	// through, and a copy cannot take writes: ETXTBSY, as for a running
	// program, until the readers close.
	if _, err := os.OpenFile(path, os.O_RDWR, 0); !errors.Is(err, syscall.ETXTBSY) {
		t.Fatalf("open for writing beside a passthrough reader: %v, want ETXTBSY", err)
	}
	reader.Close()
	w, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open for writing after the reader closed: %v", err)
	}
	if _, err := w.WriteAt([]byte("NEW"), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fresh, err := os.ReadFile(path)
	if err != nil || string(fresh[:3]) != "NEW" || !bytes.Equal(fresh[3:], data[3:]) {
		t.Fatalf("a new open after the write: %v, starts %q", err, fresh[:min(3, len(fresh))])
	}
}
