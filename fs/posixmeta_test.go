package fs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bucketfs/bucketfs/backend/memory"
)

// lsLong lists dir and lstats every entry, as ls -l does, and returns the
// modes seen and the HEADs it cost.
func lsLong(t *testing.T, mem *memory.Bucket, dir string) (map[os.FileMode]int, int64) {
	t.Helper()
	if _, err := os.Stat(dir); err != nil { // the directory's own lookup is not counted
		t.Fatal(err)
	}
	before := mem.Requests("head")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	modes := map[os.FileMode]int{}
	for _, e := range entries {
		st, err := os.Lstat(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		modes[st.Mode()]++
	}
	return modes, mem.Requests("head") - before
}

// TestPosixMetadataPolicy: on a server whose listings carry no headers
// (AWS, versitygw), `ls -l` of objects that other tools wrote, without
// POSIX headers, sent a HEAD per object for nothing. By default (auto) a
// directory's listing is sampled with at most three HEADs: without POSIX
// headers in the sample, its objects show from the listing alone; with
// them, every object gets its HEAD, so modes, owners and symlinks show.
// always HEADs every object, never none.
func TestPosixMetadataPolicy(t *testing.T) {
	const n = 200
	for _, c := range []struct {
		policy    string
		posix     bool // the objects carry x-amz-meta-mode
		wantMode  os.FileMode
		wantHeads func(int64) bool
	}{
		{"auto", false, 0o644, func(h int64) bool { return h <= 3 }},
		{"auto", true, 0o600, func(h int64) bool { return h >= n && h <= n+3 }},
		{"always", false, 0o644, func(h int64) bool { return h == n }},
		{"never", true, 0o644, func(h int64) bool { return h == 0 }},
	} {
		t.Run(fmt.Sprintf("%s, POSIX headers %v", c.policy, c.posix), func(t *testing.T) {
			mem := memory.New("b")
			var meta map[string]string
			if c.posix {
				meta = map[string]string{"mode": "33152", "uid": "1000", "gid": "1000"}
			}
			for i := range n {
				put(t, mem, fmt.Sprintf("d/f%03d", i), []byte("x"), meta, "")
			}
			mnt := mountMemory(t, mem, func(c2 *Config) { c2.PosixMetadata = c.policy })
			modes, heads := lsLong(t, mem, filepath.Join(mnt, "d"))
			if modes[c.wantMode] != n {
				t.Errorf("modes %v, want %d × %v", modes, n, c.wantMode)
			}
			if !c.wantHeads(heads) {
				t.Errorf("ls -l of %d objects sent %d HEADs", n, heads)
			}
		})
	}
}

// TestPosixMetadataFromReads: an object shown from a listing alone gets
// its headers from the first GET or HEAD the mount makes of it anyway:
// after a read, stat shows its mode, with no request of its own.
func TestPosixMetadataFromReads(t *testing.T) {
	mem := memory.New("b")
	for i := range 10 {
		put(t, mem, fmt.Sprintf("d/f%d", i), []byte("plain"), nil, "")
	}
	put(t, mem, "d/f1x", []byte("s3fs wrote me"), map[string]string{"mode": "33152"}, "") // not sampled: first, middle, last are f0, f4, f9
	mnt := mountMemory(t, mem, func(c *Config) { c.PosixMetadata = "auto" })
	modes, _ := lsLong(t, mem, filepath.Join(mnt, "d"))
	if modes[0o644] != 11 {
		t.Fatalf("modes before any read: %v (the sample should have missed d/f1x)", modes)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "d/f1x")); err != nil || string(b) != "s3fs wrote me" {
		t.Fatalf("read: %q, %v", b, err)
	}
	heads := mem.Requests("head")
	if st, err := os.Stat(filepath.Join(mnt, "d/f1x")); err != nil || st.Mode() != 0o600 {
		t.Errorf("stat after a read: %v, %v; want -rw-------", st.Mode(), err)
	}
	if d := mem.Requests("head") - heads; d != 0 {
		t.Errorf("stat after a read sent %d HEADs", d)
	}
}

// TestPosixMetadataOnAServerThatListsHeaders: on MinIO, whose listings can
// carry every object's headers at about twice the cost of a plain one,
// auto lists plainly until a directory's sample shows POSIX headers; from
// then on listings carry them, and that directory is listed again, so its
// objects show their modes with no HEAD of their own.
func TestPosixMetadataOnAServerThatListsHeaders(t *testing.T) {
	const n = 50
	mem := memory.New("b")
	mem.ListHeaders = true
	for i := range n {
		put(t, mem, fmt.Sprintf("foreign/f%02d", i), []byte("x"), nil, "")
		put(t, mem, fmt.Sprintf("native/f%02d", i), []byte("x"), map[string]string{"mode": "33152"}, "")
		put(t, mem, fmt.Sprintf("later/f%02d", i), []byte("x"), nil, "")
	}
	mnt := mountMemory(t, mem, func(c *Config) { c.PosixMetadata = "auto" })
	for _, step := range []struct {
		dir         string
		mode        os.FileMode
		maxHeads    int64
		withHeaders int64 // objects listed with headers, at most
	}{
		{"foreign", 0o644, 3, 8},    // the lookup's first few; the sample: no POSIX headers, the plain listing will do
		{"native", 0o600, 3, 8 + n}, // the sample has them: listed again, with headers
		{"later", 0o644, 0, n},      // with headers from the start, no sample
	} {
		listed := mem.ListedWithHeaders()
		modes, heads := lsLong(t, mem, filepath.Join(mnt, step.dir))
		if modes[step.mode] != n {
			t.Errorf("ls -l %s: modes %v, want %d × %v", step.dir, modes, n, step.mode)
		}
		if heads > step.maxHeads {
			t.Errorf("ls -l %s sent %d HEADs, want at most %d", step.dir, heads, step.maxHeads)
		}
		if got := mem.ListedWithHeaders() - listed; got > step.withHeaders {
			t.Errorf("ls -l %s: %d objects listed with headers, want at most %d", step.dir, got, step.withHeaders)
		}
	}
}
