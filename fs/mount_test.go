package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
	"github.com/bucketfs/bucketfs/cache"
)

// testLogger logs through t.Log, so output shows only under -v or on failure.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// mountMemory mounts mem in-process and unmounts it when the test ends.
// tweak may set any field, the bucket and staging included.
func mountMemory(t *testing.T, mem *memory.Bucket, tweak func(*Config)) string {
	t.Helper()
	_, dir := mountMemoryServer(t, mem, tweak)
	return dir
}

// mountMemoryServer mounts mem as the binary would (the metadata cache's
// listings follow --posix-metadata), after tweak, and returns the server too.
func mountMemoryServer(t *testing.T, mem *memory.Bucket, tweak func(*Config)) (*Mounted, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{
		UID: 1000, GID: 1000, FileMode: 0o644, DirMode: 0o755,
		StatTTL: time.Minute, NegativeTTL: 5 * time.Second,
		ReadAhead: 8 << 20, Logger: testLogger(t),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	if cfg.Bucket == nil {
		opts := WithPosixMetadata(cfg.PosixMetadata, cache.MetaOptions{TTL: cfg.StatTTL, NegativeTTL: cfg.NegativeTTL})
		cfg.Bucket = cache.NewMeta(mem, opts)
	}
	if cfg.Staging == nil {
		staging, err := cache.NewStaging(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		cfg.Staging = staging
	}
	server, err := Mount(dir, cfg)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
		// As the binary does after the unmount: a retry still running
		// wrote to the staging dir while it was being removed.
		server.Drain()
		server.Close()
	})
	return server, dir
}

func put(t *testing.T, b backend.Bucket, key string, body []byte, meta map[string]string, contentType string) {
	t.Helper()
	_, err := b.Put(context.Background(), backend.PutInput{Key: key, Body: bytes.NewReader(body), Size: int64(len(body)), Metadata: meta, ContentType: contentType})
	if err != nil {
		t.Fatal(err)
	}
}

func readDirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	return names
}

func TestMountBrowse(t *testing.T) {
	mem := memory.New("b")
	put(t, mem, "top.txt", []byte("top\n"), nil, "")
	put(t, mem, "marked/", nil, nil, "application/x-directory")
	put(t, mem, "marked/in.txt", []byte("in"), nil, "")
	put(t, mem, "implicit/deep/er/f", []byte("deep"), nil, "")
	put(t, mem, "legacy_$folder$", nil, nil, "")
	put(t, mem, "s3fsdir", nil, nil, "application/x-directory")
	put(t, mem, "both", []byte("i am the file"), nil, "")
	put(t, mem, "both/child", []byte("c"), nil, "")
	put(t, mem, "sp ace ü.txt", []byte("unicode"), nil, "")
	put(t, mem, "bad//name", []byte("x"), nil, "")
	put(t, mem, "dots/../x", []byte("x"), nil, "")
	put(t, mem, strings.Repeat("n", 300), []byte("x"), nil, "")
	mnt := mountMemory(t, mem, nil)

	got := readDirNames(t, mnt)
	want := []string{"bad/", "both/", "both.__file__", "dots/", "implicit/", "legacy/", "marked/", "s3fsdir/", "sp ace ü.txt", "top.txt"}
	if !slices.Equal(got, want) {
		t.Errorf("ls = %q\nwant %q", got, want)
	}
	if got := readDirNames(t, filepath.Join(mnt, "bad")); len(got) != 0 {
		t.Errorf("bad/ lists %q; an empty component is not a name", got)
	}
	if got := readDirNames(t, filepath.Join(mnt, "dots")); len(got) != 0 {
		t.Errorf("dots/ lists %q", got)
	}
	for path, want := range map[string]string{
		"top.txt":            "top\n",
		"marked/in.txt":      "in",
		"implicit/deep/er/f": "deep",
		"both/child":         "c",
		"both.__file__":      "i am the file",
		"sp ace ü.txt":       "unicode",
	} {
		data, err := os.ReadFile(filepath.Join(mnt, path))
		if err != nil || string(data) != want {
			t.Errorf("read %s = %q, %v; want %q", path, data, err, want)
		}
	}
	for _, dir := range []string{"legacy", "s3fsdir", "marked", "implicit/deep"} {
		if st, err := os.Stat(filepath.Join(mnt, dir)); err != nil || !st.IsDir() {
			t.Errorf("stat %s: %v, dir=%v", dir, err, err == nil && st.IsDir())
		}
	}
}

func TestMountLookupsCold(t *testing.T) {
	// Lookups without a listing first: each path resolved by requests.
	mem := memory.New("b")
	put(t, mem, "a/b/c.txt", []byte("abc"), nil, "")
	put(t, mem, "old_$folder$", nil, nil, "")
	put(t, mem, "both", []byte("file"), nil, "")
	put(t, mem, "both/x", []byte("x"), nil, "")
	mnt := mountMemory(t, mem, nil)
	if data, err := os.ReadFile(filepath.Join(mnt, "a/b/c.txt")); err != nil || string(data) != "abc" {
		t.Errorf("read = %q, %v", data, err)
	}
	if st, err := os.Stat(filepath.Join(mnt, "old")); err != nil || !st.IsDir() {
		t.Errorf("legacy dir: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(mnt, "both.__file__")); err != nil || string(data) != "file" {
		t.Errorf("shadowed = %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat nope: %v", err)
	}
	if _, err := os.Stat(filepath.Join(mnt, strings.Repeat("x", 256))); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("long name: %v, want ENAMETOOLONG", err)
	}
}

func TestMountAttributesFromHeaders(t *testing.T) {
	mem := memory.New("b")
	put(t, mem, "script.sh", []byte("#!/bin/sh\n"), map[string]string{
		"mode": "33261", "uid": "42", "gid": "43", "mtime": "1600000000.123456789",
	}, "")
	put(t, mem, "octal", []byte("x"), map[string]string{"mode": "0600"}, "")
	put(t, mem, "private/", nil, map[string]string{"mode": "448"}, "") // s3fs 1.90: no type bits
	put(t, mem, "plain", []byte("x"), nil, "")
	put(t, mem, "link", []byte("plain"), map[string]string{"mode": "41471"}, "")
	mnt := mountMemory(t, mem, nil)
	readDirNames(t, mnt) // a plain listing first: it has no headers to show

	tests := []struct {
		path     string
		mode     os.FileMode
		uid, gid uint32
		mtime    time.Time
	}{
		{"script.sh", 0o755, 42, 43, time.Unix(1600000000, 123456789)},
		{"octal", 0o600, 1000, 1000, time.Time{}},
		{"private", os.ModeDir | 0o700, 1000, 1000, time.Time{}},
		{"plain", 0o644, 1000, 1000, time.Time{}},
	}
	for _, tt := range tests {
		st, err := os.Lstat(filepath.Join(mnt, tt.path))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode() != tt.mode || sys.Uid != tt.uid || sys.Gid != tt.gid {
			t.Errorf("%s: mode %v uid %d gid %d; want %v %d %d", tt.path, st.Mode(), sys.Uid, sys.Gid, tt.mode, tt.uid, tt.gid)
		}
		if !tt.mtime.IsZero() && !st.ModTime().Equal(tt.mtime) {
			t.Errorf("%s: mtime %v, want %v", tt.path, st.ModTime(), tt.mtime)
		}
	}
	target, err := os.Readlink(filepath.Join(mnt, "link"))
	if err != nil || target != "plain" {
		t.Errorf("readlink = %q, %v", target, err)
	}
	if data, err := os.ReadFile(filepath.Join(mnt, "link")); err != nil || string(data) != "x" {
		t.Errorf("read through link = %q, %v", data, err)
	}
}

func TestMountLsLong(t *testing.T) {
	for _, listHeaders := range []bool{true, false} {
		t.Run(fmt.Sprintf("listHeaders=%v", listHeaders), func(t *testing.T) {
			mem := memory.New("b")
			mem.ListHeaders = listHeaders
			for i := range 300 {
				var meta map[string]string
				if i%3 == 0 {
					meta = map[string]string{"mode": "33216"} // 0700
				}
				put(t, mem, fmt.Sprintf("many/f%03d", i), []byte("x"), meta, "")
			}
			put(t, mem, "many/link", []byte("f001"), map[string]string{"mode": "41471"}, "")
			mnt := mountMemory(t, mem, nil)
			heads, lists := mem.Requests("head"), mem.Requests("list")
			entries, err := os.ReadDir(filepath.Join(mnt, "many"))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				info, err := e.Info()
				if err != nil {
					t.Fatal(err)
				}
				want := os.FileMode(0o644)
				switch {
				case e.Name() == "link":
					want = os.ModeSymlink | 0o777
				case e.Name() != "link" && mustAtoi(t, e.Name()[1:])%3 == 0:
					want = 0o700
				}
				if info.Mode() != want {
					t.Errorf("%s: mode %v, want %v", e.Name(), info.Mode(), want)
				}
			}
			if len(entries) != 301 {
				t.Fatalf("%d entries", len(entries))
			}
			// The lookup of "many" costs one LIST, whose page is the whole
			// listing of a small directory; a directory wins its name, so
			// no HEAD asks whether "many" is also a file.
			gotHeads := mem.Requests("head") - heads
			if listHeaders && gotHeads != 0 {
				t.Errorf("ls -l sent %d HEAD requests; listings with headers need none", gotHeads)
			}
			if !listHeaders && gotHeads > 301 {
				t.Errorf("ls -l sent %d HEAD requests, want at most one per entry", gotHeads)
			}
			if got := mem.Requests("list") - lists; got != 1 {
				t.Errorf("ls -l sent %d LIST requests, want 1", got)
			}
		})
	}
}

func TestMountReadLargeAndRanges(t *testing.T) {
	mem := memory.New("b")
	data := make([]byte, 20<<20+12345)
	rand.Read(data)
	put(t, mem, "big.bin", data, nil, "")
	mnt := mountMemory(t, mem, func(c *Config) { c.ReadAhead = 4 << 20 })
	got, err := os.ReadFile(filepath.Join(mnt, "big.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read big: %d bytes, %v, equal=%v", len(got), err, bytes.Equal(got, data))
	}
	f, err := os.Open(filepath.Join(mnt, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range []int64{0, 1, 7 << 20, int64(len(data)) - 10, 3<<20 + 17} {
		buf := make([]byte, 10)
		n, err := f.ReadAt(buf, off)
		if (err != nil && err != io.EOF) || !bytes.Equal(buf[:n], data[off:off+int64(n)]) || n != 10 {
			t.Errorf("ReadAt %d: n=%d err=%v", off, n, err)
		}
	}
	if n, err := f.ReadAt(make([]byte, 10), int64(len(data))); n != 0 || err != io.EOF {
		t.Errorf("read at EOF: %d, %v", n, err)
	}
}

func TestMountVersionNeverMixed(t *testing.T) {
	mem := memory.New("b")
	old := bytes.Repeat([]byte("o"), 16<<20)
	put(t, mem, "f", old, nil, "")
	mnt := mountMemory(t, mem, func(c *Config) { c.ReadAhead = 1 << 20 })
	f, err := os.Open(filepath.Join(mnt, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	put(t, mem, "f", bytes.Repeat([]byte("n"), 16<<20), nil, "") // another client
	_, err = f.ReadAt(buf, 12<<20)
	if err == nil {
		if bytes.Contains(buf, []byte("n")) {
			t.Fatal("one open file returned bytes of two versions")
		}
		t.Fatal("read of a changed object succeeded; want ESTALE")
	}
	if !errors.Is(err, syscall.ESTALE) {
		t.Errorf("err = %v, want ESTALE", err)
	}
}

func TestMountReadOnlyRefusesChanges(t *testing.T) {
	mem := memory.New("b")
	put(t, mem, "f", []byte("x"), nil, "")
	put(t, mem, "d/g", []byte("y"), nil, "")
	mnt := mountMemory(t, mem, func(c *Config) { c.ReadOnly = true })
	path := func(name string) string { return filepath.Join(mnt, name) }
	for name, op := range map[string]func() error{
		"open for write": func() error { _, err := os.OpenFile(path("f"), os.O_WRONLY, 0); return err },
		"append":         func() error { _, err := os.OpenFile(path("f"), os.O_WRONLY|os.O_APPEND, 0); return err },
		"create":         func() error { return os.WriteFile(path("new"), nil, 0o644) },
		"mkdir":          func() error { return os.Mkdir(path("nd"), 0o755) },
		"unlink":         func() error { return os.Remove(path("f")) },
		"rmdir":          func() error { return syscall.Rmdir(path("d")) },
		"rename":         func() error { return os.Rename(path("f"), path("g")) },
		"symlink":        func() error { return os.Symlink("f", path("l")) },
		"link":           func() error { return os.Link(path("f"), path("h")) },
		"mkfifo":         func() error { return syscall.Mkfifo(path("p"), 0o644) },
		"chmod":          func() error { return os.Chmod(path("f"), 0o600) },
		"chown":          func() error { return os.Chown(path("f"), 1, 1) },
		"truncate":       func() error { return os.Truncate(path("f"), 0) },
		"utimes":         func() error { return os.Chtimes(path("f"), time.Now(), time.Now()) },
		"setxattr":       func() error { return syscall.Setxattr(path("f"), "user.x", []byte("1"), 0) },
		"removexattr":    func() error { return syscall.Removexattr(path("f"), "user.x") },
	} {
		if err := op(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", name, err)
		}
	}
	if n := mem.Requests("put") + mem.Requests("delete") + mem.Requests("copy") + mem.Requests("upload"); n != 2 { // the two puts above
		t.Errorf("the bucket saw %d writes", n)
	}
}

func TestMountStatfsAndXattrs(t *testing.T) {
	mem := memory.New("bkt")
	put(t, mem, "f.txt", []byte("x"), map[string]string{"color": "blue", "mode": "33188"}, "text/plain")
	mnt := mountMemory(t, mem, nil)
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	if st.Bsize != 4096 || st.Namelen != 255 || st.Blocks == 0 || st.Bfree != st.Blocks {
		t.Errorf("statfs = %+v", st)
	}
	buf := make([]byte, 1024)
	for name, want := range map[string]string{
		"user.s3.uri":           "s3://bkt/f.txt",
		"user.s3.content_type":  "text/plain",
		"user.color":            "blue",
		"user.s3.storage_class": "STANDARD",
	} {
		n, err := syscall.Getxattr(filepath.Join(mnt, "f.txt"), name, buf)
		if err != nil || string(buf[:n]) != want {
			t.Errorf("getxattr %s = %q, %v; want %q", name, buf[:n], err, want)
		}
	}
	if _, err := syscall.Getxattr(filepath.Join(mnt, "f.txt"), "user.mode", buf); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("POSIX header shown as xattr: %v", err)
	}
	if n, err := syscall.Getxattr(mnt, "user.s3.uri", buf); err != nil || string(buf[:n]) != "s3://bkt/" {
		t.Errorf("root user.s3.uri = %q, %v", buf[:n], err)
	}
	if _, err := syscall.Getxattr(filepath.Join(mnt, "f.txt"), "security.selinux", buf); !errors.Is(err, syscall.ENOTSUP) {
		t.Errorf("security.selinux: %v, want ENOTSUP (an unsupported namespace)", err)
	}
	// POSIX ACLs are supported (acl.go); on a mount that has seen none, a
	// file without one says ENOTSUP (TestACLFreeMountAnswersENOTSUP).
	if _, err := syscall.Getxattr(filepath.Join(mnt, "f.txt"), "system.posix_acl_access", buf); !errors.Is(err, syscall.ENOTSUP) {
		t.Errorf("system.posix_acl_access of a file without an ACL: %v, want ENOTSUP", err)
	}
	// listxattr lists the object's own metadata only; user.s3.* stay
	// readable by name.
	n, err := syscall.Listxattr(filepath.Join(mnt, "f.txt"), buf)
	if err != nil || string(buf[:n]) != "user.color\x00" {
		t.Errorf("listxattr = %q, %v; want user.color only", buf[:n], err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := syscall.Listxattr(filepath.Join(mnt, "new"), buf); err != nil || n != 0 {
		t.Errorf("a new empty file lists %q, %v; want nothing", buf[:n], err)
	}
	if n, err := syscall.Listxattr(mnt, buf); err != nil || n != 0 {
		t.Errorf("the root lists %q, %v; want nothing", buf[:n], err)
	}
	// Read-only attributes: set to their value (cp -a between mounts) is a
	// no-op; to another, refused.
	etag := make([]byte, 64)
	n, _ = syscall.Getxattr(filepath.Join(mnt, "f.txt"), "user.s3.etag", etag)
	if err := syscall.Setxattr(filepath.Join(mnt, "f.txt"), "user.s3.etag", etag[:n], 0); err != nil {
		t.Errorf("setting user.s3.etag to its value: %v", err)
	}
	if err := syscall.Setxattr(filepath.Join(mnt, "f.txt"), "user.s3.etag", []byte("other"), 0); !errors.Is(err, syscall.EPERM) {
		t.Errorf("setting user.s3.etag to another value: %v, want EPERM", err)
	}
	copies := mem.Requests("copy")
	if err := syscall.Setxattr(filepath.Join(mnt, "f.txt"), "user.s3.content_type", []byte("text/plain"), 0); err != nil || mem.Requests("copy") != copies {
		t.Errorf("setting user.s3.content_type to its value: %v, %d copies", err, mem.Requests("copy")-copies)
	}
}

func TestMountServerErrors(t *testing.T) {
	mem := memory.New("b")
	put(t, mem, "f", []byte("x"), nil, "")
	mnt := mountMemory(t, mem, func(c *Config) { c.StatTTL, c.NegativeTTL = time.Millisecond, time.Millisecond })
	mem.SetFault(func(op, key string) error { return backend.ErrUnavailable })
	time.Sleep(5 * time.Millisecond) // let the 1 ms TTLs lapse
	if _, err := os.Stat(filepath.Join(mnt, "f")); !errors.Is(err, syscall.EIO) {
		t.Errorf("stat with the server down: %v, want EIO", err)
	}
	mem.SetFault(func(op, key string) error { return backend.ErrAccessDenied })
	if _, err := os.Stat(filepath.Join(mnt, "g")); !errors.Is(err, syscall.EACCES) {
		t.Errorf("stat with access denied: %v, want EACCES", err)
	}
	mem.SetFault(nil)
	if _, err := os.Stat(filepath.Join(mnt, "f")); err != nil {
		t.Errorf("stat after the server came back: %v", err)
	}
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
