package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

var mtimeHeader = regexp.MustCompile(`^\d+\.\d{9}$`)

func TestCreateWriteClose(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	addr := freeAddr(t)
	mnt := mountBackground(t, srv, bucket, "--part-size", "5MiB", "--metrics-addr", addr)

	sh(t, mnt, "umask 022; echo hello > note.txt")
	obj := mustGet(t, srv, bucket, "note.txt")
	if string(obj.body) != "hello\n" || obj.contentType != "text/plain" {
		t.Errorf("note.txt: %q, %q", obj.body, obj.contentType)
	}
	if obj.meta["mode"] != strconv.Itoa(syscall.S_IFREG|0o644) || obj.meta["uid"] != "0" || obj.meta["gid"] != "0" ||
		!mtimeHeader.MatchString(obj.meta["mtime"]) {
		t.Errorf("POSIX headers: %v", obj.meta)
	}
	if obj := mustGet(t, srv, bucket, "note.txt"); obj.etag == "" {
		t.Error("no ETag")
	}

	// Above one part: a multipart upload, parts in parallel.
	data := make([]byte, 17<<20+123)
	rand.Read(data)
	uploads, puts := metric(t, addr, "upload"), metric(t, addr, "put")
	if err := os.WriteFile(filepath.Join(mnt, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	big := mustGet(t, srv, bucket, "big.bin")
	if !bytes.Equal(big.body, data) || big.contentType != "application/octet-stream" {
		t.Errorf("big.bin: %d bytes, equal=%v, %s", len(big.body), bytes.Equal(big.body, data), big.contentType)
	}
	// Start, 4 parts, complete; no PutObject.
	if got := metric(t, addr, "upload") - uploads; got != 6 || metric(t, addr, "put") != puts {
		t.Errorf("17 MiB in 5 MiB parts sent %d multipart requests and %d puts, want 6 and 0", got, metric(t, addr, "put")-puts)
	}

	// A sequential writer's full parts go up while it is still writing,
	// also when the descriptor was duplicated and the original closed
	// before the first write, as a shell's `cmd > file` and dd do: that
	// close stores nothing, and the streaming goes on.
	streamed := func(name string, open func(path string) *os.File) {
		t.Helper()
		f := open(filepath.Join(mnt, name))
		before := metric(t, addr, "upload")
		chunk := make([]byte, 1<<20)
		for range 12 {
			f.Write(chunk)
		}
		for deadline := time.Now().Add(10 * time.Second); metric(t, addr, "upload")-before < 3; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no part uploaded while writing: %d multipart requests", name, metric(t, addr, "upload")-before)
			}
			time.Sleep(20 * time.Millisecond)
		}
		closeOK(t, f)
		if got := mustGet(t, srv, bucket, name); len(got.body) != 12<<20 {
			t.Errorf("%s: %d bytes", name, len(got.body))
		}
	}
	create := func(path string) *os.File {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	streamed("stream.bin", create)
	streamed("dup.bin", func(path string) *os.File {
		f := create(path)
		fd, err := syscall.Dup(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		closeOK(t, f)
		// A descriptor that wrote nothing stores nothing: no empty
		// version before the content.
		if e, ok := getObject(t, srv, bucket, "dup.bin"); ok {
			t.Errorf("dup.bin stored at the first close, before any write (%d bytes)", len(e.body))
		}
		return os.NewFile(uintptr(fd), path)
	})

	// dd with conv=fsync: the same through fsync.
	sh(t, mnt, "dd if=/dev/zero of=zeros bs=1M count=6 conv=fsync status=none")
	if z := mustGet(t, srv, bucket, "zeros"); len(z.body) != 6<<20 || bytes.ContainsFunc(z.body, func(r rune) bool { return r != 0 }) {
		t.Errorf("zeros: %d bytes", len(z.body))
	}
	// An empty file exists once closed: a descriptor that wrote nothing
	// stores at its release, which the kernel sends right after close.
	sh(t, mnt, "touch empty")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if e, ok := getObject(t, srv, bucket, "empty"); ok {
			if len(e.body) != 0 {
				t.Errorf("empty: %d bytes", len(e.body))
			}
			break
		} else if time.Now().After(deadline) {
			t.Fatal("touch empty: not in S3 5s after close")
		}
	}
}

// TestWriteOnlyBypassesPageCache checks that what a write-only descriptor
// writes is not also kept in the kernel's page cache (direct I/O), while
// what a read-write one writes is: memory for a large copy, and the next
// read still gets the new bytes.
func TestWriteOnlyBypassesPageCache(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	mnt := mountBackground(t, srv, bucket)
	data := make([]byte, 4<<20)
	rand.Read(data)
	for _, tt := range []struct {
		name   string
		flags  int
		cached bool
	}{{"wo", os.O_WRONLY, false}, {"rw", os.O_RDWR, true}} {
		p := filepath.Join(mnt, tt.name)
		f, err := os.OpenFile(p, tt.flags|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(data)
		closeOK(t, f)
		f, err = os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if n := residentPages(t, f, len(data)); (n > 0) != tt.cached {
			t.Errorf("%s: %d pages of the written file in the page cache, want cached=%v", tt.name, n, tt.cached)
		}
		got := make([]byte, len(data))
		if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: read back %v, equal=%v", tt.name, err, bytes.Equal(got, data))
		}
		f.Close()
	}
}

// residentPages counts the pages of f's first size bytes in the page cache.
func residentPages(t *testing.T, f *os.File, size int) int {
	t.Helper()
	m, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	defer syscall.Munmap(m)
	vec := make([]byte, (size+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(size),
		uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestEditsMatchALocalFilesystem applies the same edits to a local file and
// to a file of the mount, and compares what S3 then holds.
func TestEditsMatchALocalFilesystem(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	mnt := mountBackground(t, srv, bucket)
	local := t.TempDir()
	seed := make([]byte, 300<<10)
	rand.Read(seed)

	edits := []struct {
		name string
		edit func(t *testing.T, path string)
	}{
		{"overwrite", func(t *testing.T, p string) { writeFile(t, p, []byte("new content")) }},
		{"append", func(t *testing.T, p string) { sh(t, "/", "echo appended >> '"+p+"'") }},
		{"write in the middle", func(t *testing.T, p string) {
			sh(t, "/", "printf XXXXXXXX | dd of='"+p+"' bs=1 seek=1000 conv=notrunc status=none")
		}},
		{"seek past the end", func(t *testing.T, p string) {
			sh(t, "/", "printf END | dd of='"+p+"' bs=1 seek=500000 conv=notrunc status=none")
		}},
		{"truncate smaller", func(t *testing.T, p string) { sh(t, "/", "truncate -s 1234 '"+p+"'") }},
		{"truncate larger", func(t *testing.T, p string) { sh(t, "/", "truncate -s 400000 '"+p+"'") }},
		{"ftruncate while open", func(t *testing.T, p string) {
			f := openRW(t, p)
			f.WriteAt([]byte("abc"), 10)
			if err := f.Truncate(5000); err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte("tail"), 4996)
			closeOK(t, f)
		}},
		{"two descriptors", func(t *testing.T, p string) {
			a, b := openRW(t, p), openRW(t, p)
			a.WriteAt([]byte("from a"), 0)
			b.WriteAt([]byte("from b"), 100)
			got := make([]byte, 6)
			b.ReadAt(got, 0) // b sees a's write
			if string(got) != "from a" {
				t.Errorf("second descriptor reads %q", got)
			}
			closeOK(t, a)
			closeOK(t, b)
		}},
		{"write-only descriptor beside a read-write one", func(t *testing.T, p string) {
			rw := openRW(t, p)
			got := make([]byte, 6)
			rw.ReadAt(got, 0) // now in the kernel's cache
			wo, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			wo.WriteAt([]byte("direct"), 0)
			if rw.ReadAt(got, 0); string(got) != "direct" {
				t.Errorf("read-write descriptor reads %q after a write-only one wrote", got)
			}
			closeOK(t, wo)
			closeOK(t, rw)
			if b, _ := os.ReadFile(p); !bytes.HasPrefix(b, []byte("direct")) {
				t.Errorf("reopened: %.10q", b)
			}
		}},
		{"read after write", func(t *testing.T, p string) {
			f := openRW(t, p)
			f.WriteAt([]byte("written"), 50)
			got := make([]byte, 7)
			if _, err := f.ReadAt(got, 50); err != nil || string(got) != "written" {
				t.Errorf("read after write: %q, %v", got, err)
			}
			closeOK(t, f)
		}},
		{"mmap", func(t *testing.T, p string) {
			f := openRW(t, p)
			m, err := syscall.Mmap(int(f.Fd()), 0, 8192, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
			if err != nil {
				t.Fatalf("mmap: %v", err)
			}
			copy(m[4000:], "mapped bytes")
			if err := msync(m); err != nil {
				t.Fatalf("msync: %v", err)
			}
			syscall.Munmap(m)
			closeOK(t, f)
		}},
	}
	for i, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			name := fmt.Sprintf("edit%d.bin", i)
			writeFile(t, filepath.Join(local, name), seed)
			writeFile(t, filepath.Join(mnt, name), seed)
			e.edit(t, filepath.Join(local, name))
			e.edit(t, filepath.Join(mnt, name))
			want, _ := os.ReadFile(filepath.Join(local, name))
			got := mustGet(t, srv, bucket, name).body
			if !bytes.Equal(got, want) {
				t.Errorf("S3 holds %d bytes, a local filesystem %d; first difference at %d", len(got), len(want), firstDiff(got, want))
			}
			if through, _ := os.ReadFile(filepath.Join(mnt, name)); !bytes.Equal(through, want) {
				t.Error("reading back through the mount differs")
			}
		})
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func openRW(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func closeOK(t *testing.T, f *os.File) {
	t.Helper()
	if err := f.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func msync(b []byte) error {
	_, _, errno := syscall.Syscall(syscall.SYS_MSYNC, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MS_SYNC)
	if errno != 0 {
		return errno
	}
	return nil
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestNamespaceOperations(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"old/a": {body: []byte("a")}, "old/sub/b": {body: []byte("b")}})
	mnt := mountBackground(t, srv, bucket)

	sh(t, mnt, "mkdir d && mkdir -p p/q/r && echo x > d/f && echo y > p/q/r/g")
	if m := mustGet(t, srv, bucket, "d/"); len(m.body) != 0 || m.contentType != "application/x-directory" ||
		m.meta["mode"] != strconv.Itoa(syscall.S_IFDIR|0o755) {
		t.Errorf("marker d/: %q %q %v", m.body, m.contentType, m.meta)
	}
	for _, k := range []string{"p/", "p/q/", "p/q/r/", "p/q/r/g"} {
		mustGet(t, srv, bucket, k)
	}
	if err := syscall.Rmdir(filepath.Join(mnt, "d")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("rmdir of a non-empty directory: %v, want ENOTEMPTY", err)
	}
	sh(t, mnt, "rm d/f && rmdir d")
	if keys := listKeys(t, srv, bucket, "d"); len(keys) != 0 {
		t.Errorf("after rm and rmdir: %q", keys)
	}

	// mv of a file, of a file over another, of a directory.
	sh(t, mnt, "echo 1 > one && echo 2 > two && mv one moved && mv moved two")
	if _, ok := getObject(t, srv, bucket, "one"); ok {
		t.Error("mv left the source")
	}
	if two := mustGet(t, srv, bucket, "two"); string(two.body) != "1\n" {
		t.Errorf("mv over an existing file: %q", two.body)
	}
	sh(t, mnt, "mv old new")
	if got, want := listKeys(t, srv, bucket, ""), []string{"new/a", "new/sub/b", "p/", "p/q/", "p/q/r/", "p/q/r/g", "two"}; !slices.Equal(got, want) {
		t.Errorf("after mv of a directory: %q, want %q", got, want)
	}
	if got := sh(t, mnt, "cat new/sub/b"); got != "b" {
		t.Errorf("read after directory mv: %q", got)
	}

	// rm -rf of a tree.
	sh(t, mnt, "rm -rf p new")
	if got := listKeys(t, srv, bucket, ""); !slices.Equal(got, []string{"two"}) {
		t.Errorf("after rm -rf: %q", got)
	}

	// Symlinks as s3fs stores them.
	sh(t, mnt, "ln -s two link")
	l := mustGet(t, srv, bucket, "link")
	if string(l.body) != "two" || l.meta["mode"] != strconv.Itoa(syscall.S_IFLNK|0o777) {
		t.Errorf("symlink object: %q %v", l.body, l.meta)
	}
	if got := sh(t, mnt, "readlink link; cat link"); got != "two\n1\n" {
		t.Errorf("readlink and follow: %q", got)
	}
}

func TestMetadataChangesPersist(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	addr := freeAddr(t)
	mnt := mountBackground(t, srv, bucket, "--metrics-addr", addr)
	sh(t, mnt, "echo data > f && mkdir d")
	before := mustGet(t, srv, bucket, "f")
	puts, uploads := metric(t, addr, "put"), metric(t, addr, "upload")

	sh(t, mnt, "chmod 640 f && chown 1234:5678 f && touch -d '2021-02-03 04:05:06.123456789 UTC' f && chmod 700 d")
	after := mustGet(t, srv, bucket, "f")
	if string(after.body) != "data\n" || after.etag != before.etag {
		t.Errorf("the data changed: %q, etag %s -> %s", after.body, before.etag, after.etag)
	}
	if after.meta["mode"] != strconv.Itoa(syscall.S_IFREG|0o640) || after.meta["uid"] != "1234" || after.meta["gid"] != "5678" ||
		after.meta["mtime"] != "1612325106.123456789" {
		t.Errorf("headers: %v", after.meta)
	}
	if d := mustGet(t, srv, bucket, "d/"); d.meta["mode"] != strconv.Itoa(syscall.S_IFDIR|0o700) {
		t.Errorf("directory mode: %v", d.meta)
	}
	if metric(t, addr, "put") != puts || metric(t, addr, "upload") != uploads {
		t.Error("changing headers re-uploaded data; want a server-side copy")
	}

	// Still there after unmount and mount.
	unmountForTest(t, mnt)
	mnt = mountBackground(t, srv, bucket)
	if got := sh(t, mnt, "stat -c '%a %u %g %Y' f; stat -c %a d"); got != "640 1234 5678 1612325106\n700\n" {
		t.Errorf("after remount: %q", got)
	}
	if got := sh(t, mnt, "stat -c '%y' f"); !strings.HasPrefix(got, "2021-02-03 04:05:06.123456789") {
		t.Errorf("mtime after remount: %q", got)
	}
}

func TestServerSideCopyForCp(t *testing.T) {
	srv := server(t)
	data := make([]byte, 3<<20)
	rand.Read(data)
	bucket := newBucket(t, srv, map[string]object{"src.bin": {body: data, meta: map[string]string{"color": "blue"}}})
	addr := freeAddr(t)
	mnt := mountBackground(t, srv, bucket, "--metrics-addr", addr)
	sh(t, mnt, "ls -l src.bin")
	copies, puts, gets, uploads := metric(t, addr, "copy"), metric(t, addr, "put"), metric(t, addr, "get"), metric(t, addr, "upload")
	sh(t, mnt, "cp src.bin dst.bin")
	if got := mustGet(t, srv, bucket, "dst.bin"); !bytes.Equal(got.body, data) || got.meta["color"] != "blue" {
		t.Errorf("copy: equal=%v meta=%v", bytes.Equal(got.body, data), got.meta)
	}
	// The copy is conditional on the destination being free. MinIO ignores
	// conditions on CopyObject, so there it is a one-part multipart copy
	// (start, UploadPartCopy, a conditional complete); AWS takes one
	// CopyObject.
	if metric(t, addr, "copy") != copies || metric(t, addr, "put") != puts || metric(t, addr, "upload") != uploads+3 ||
		metric(t, addr, "get") != gets {
		t.Errorf("cp sent copy %d, put %d, upload %d, get %d; want a 3-request multipart copy and no data through the mount",
			metric(t, addr, "copy")-copies, metric(t, addr, "put")-puts, metric(t, addr, "upload")-uploads, metric(t, addr, "get")-gets)
	}
	if got := sh(t, mnt, "cmp src.bin dst.bin && echo same"); got != "same\n" {
		t.Errorf("cmp: %q", got)
	}
}

func TestConditionalWrites(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"exists": {body: []byte("x")}})
	a := mountBackground(t, srv, bucket)
	b := mountBackground(t, srv, bucket)

	if _, err := os.OpenFile(filepath.Join(a, "exists"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); !errors.Is(err, os.ErrExist) {
		t.Errorf("O_EXCL on an existing name: %v, want EEXIST", err)
	}
	// Two mounts create the same new name: only one wins.
	fa, err := os.OpenFile(filepath.Join(a, "race"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.OpenFile(filepath.Join(b, "race"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fa.WriteString("from a")
	fb.WriteString("from b")
	if err := fa.Close(); err != nil {
		t.Fatalf("first close: %v", err)
	}
	if err := fb.Close(); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("second creator's close: %v, want EEXIST", err)
	}
	if got := mustGet(t, srv, bucket, "race"); string(got.body) != "from a" {
		t.Errorf("race: %q", got.body)
	}

	// Another client changes a file open for writing: the upload does not
	// destroy that version.
	f := openRW(t, filepath.Join(a, "exists"))
	f.WriteAt([]byte("mine"), 0)
	putObject(t, srv, bucket, "exists", object{body: []byte("theirs")})
	if err := f.Close(); !errors.Is(err, syscall.ESTALE) {
		t.Errorf("close after a concurrent change: %v, want ESTALE", err)
	}
	if got := mustGet(t, srv, bucket, "exists"); string(got.body) != "theirs" {
		t.Errorf("the other client's version was overwritten: %q", got.body)
	}
}

func TestBadWrites(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"f": {body: []byte("x")}})
	mnt := mountBackground(t, srv, bucket)
	path := func(n string) string { return filepath.Join(mnt, n) }
	if err := os.Link(path("f"), path("hard")); !errors.Is(err, syscall.ENOTSUP) {
		t.Errorf("hard link: %v, want ENOTSUP", err)
	}
	if err := os.WriteFile(path(strings.Repeat("n", 256)), nil, 0o644); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("256-byte name: %v, want ENAMETOOLONG", err)
	}
	deep := mnt
	for i := 0; i < 6; i++ { // 6 × 201 bytes of key
		deep = filepath.Join(deep, strings.Repeat(string(rune('a'+i)), 200))
	}
	if err := os.MkdirAll(deep, 0o755); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("key over 1024 bytes: %v, want ENAMETOOLONG", err)
	}
	// Device nodes are stored, as s3fs stores them: TestDeviceNodesAreStored.
	if err := syscall.Mkfifo(path("fifo"), 0o644); err != nil {
		t.Errorf("mkfifo: %v", err)
	} else if m := mustGet(t, srv, bucket, "fifo"); m.meta["mode"] != strconv.Itoa(syscall.S_IFIFO|0o644) {
		t.Errorf("fifo mode: %v", m.meta)
	}
}

// TestLongestNameLookup: a 255-byte name is a valid name; MinIO refuses
// the probe of NAME/ as a key too long, which means nothing is there.
func TestLongestNameLookup(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	mnt := mountBackground(t, srv, bucket)
	name := filepath.Join(mnt, strings.Repeat("n", 255))
	if err := os.WriteFile(name, []byte("x"), 0o644); err != nil {
		t.Fatalf("create a 255-byte name: %v", err)
	}
	if _, err := os.Stat(name); err != nil {
		t.Errorf("stat of a 255-byte name: %v", err)
	}
	if _, err := os.Stat(filepath.Join(mnt, strings.Repeat("m", 255))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat of a missing 255-byte name: %v, want ENOENT", err)
	}
}
