package fs

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/bucketfs/bucketfs/backend/memory"
)

// TestRecursiveWalkListsFlat: a cold find over 2,000 files in 110
// directories sent a LIST per directory and a HEAD for each directory's
// marker (224 requests). Once it sees a walk (two subdirectories of one
// directory listed one after the other), the mount lists the subtree
// flat, a thousand keys a request, and answers the rest of the walk from
// that; no directory costs a HEAD.
func TestRecursiveWalkListsFlat(t *testing.T) {
	mem := memory.New("b")
	mem.ListHeaders = true // file headers from the listing: only directories are counted
	want := map[string]bool{}
	for d := range 10 {
		for e := range 10 {
			for f := range 20 {
				key := fmt.Sprintf("top/d%d/e%d/f%02d", d, e, f)
				put(t, mem, key, []byte("x"), nil, "")
				want[key] = true
			}
		}
	}
	put(t, mem, "top/d3/", nil, map[string]string{"mode": "16877"}, "") // a marker
	mnt := mountMemory(t, mem, nil)
	lists, heads := mem.Requests("list"), mem.Requests("head")
	seen := 0
	dirs := 0
	err := filepath.WalkDir(filepath.Join(mnt, "top"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs++
			return nil
		}
		rel, _ := filepath.Rel(mnt, p)
		if !want[rel] {
			t.Errorf("walk found %s", rel)
		}
		seen++
		return nil
	})
	if err != nil || seen != len(want) || dirs != 111 {
		t.Fatalf("walk: %d files of %d, %d directories, %v", seen, len(want), dirs, err)
	}
	lists, heads = mem.Requests("list")-lists, mem.Requests("head")-heads
	t.Logf("walk of %d files in %d directories: %d LIST, %d HEAD", seen, dirs, lists, heads)
	if lists+heads > 12 || heads > 1 {
		t.Errorf("walk cost %d LIST and %d HEAD, want at most 12 requests and no HEAD per directory", lists, heads)
	}
}

// A fresh `cat dir/file` costs two requests before its first byte: the
// LIST of dir/ (which also finds file) and the GET. A directory wins its
// name, so no HEAD asks whether "dir" is also a file. (The listing here
// carries headers, as MinIO's does; on a server whose listings do not,
// --posix-metadata decides whether the file gets a HEAD.) With plain
// listings (auto on MinIO), the lookup's listing still asks for the first
// few entries with headers: the file needs no sample HEAD.
func TestFreshCatCostsTwoRequests(t *testing.T) {
	for _, plain := range []bool{false, true} {
		mem := memory.New("b")
		mem.ListHeaders = true
		put(t, mem, "dir/file", bytes.Repeat([]byte("x"), 4<<20), nil, "")
		mnt := mountMemory(t, mem, func(c *Config) { c.PosixMetadata = map[bool]string{false: "always", true: "auto"}[plain] })
		f, err := os.Open(filepath.Join(mnt, "dir", "file"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if heads, lists := mem.Requests("head"), mem.Requests("list"); heads+lists != 1 {
			t.Fatalf("plain listings %v: open of a fresh path sent %d HEAD and %d LIST; want 1 LIST", plain, heads, lists)
		}
		if _, err := f.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		if heads := mem.Requests("head"); heads != 0 {
			t.Fatalf("plain listings %v: %d HEADs before the first byte", plain, heads)
		}
	}
}

// TestWalkListsWithHeaders: with one-level listings without headers
// (--posix-metadata auto on MinIO), find sampled every directory it
// entered, three HEADs each (300 for 100 directories). A flat walk that
// is statted gets the headers where the server lists them, in a few
// LISTs: modes show, whoever wrote the objects, with no HEAD at all.
func TestWalkListsWithHeaders(t *testing.T) {
	for _, c := range []struct {
		name string
		meta map[string]string
		mode os.FileMode
	}{
		{"written by other tools", nil, 0o644},
		{"with POSIX headers", map[string]string{"mode": "33152"}, 0o600},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := memory.New("b")
			mem.ListHeaders = true
			for d := range 10 {
				for e := range 10 {
					for f := range 5 {
						put(t, mem, fmt.Sprintf("top/d%d/e%d/f%d", d, e, f), []byte("x"), c.meta, "")
					}
				}
			}
			mnt := mountMemory(t, mem, func(cfg *Config) { cfg.PosixMetadata = "auto" })
			files := 0
			err := filepath.WalkDir(filepath.Join(mnt, "top"), func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				st, err := os.Lstat(p) // find -ls, ls -lR
				if err == nil && st.Mode() != c.mode {
					t.Errorf("%s: mode %v, want %v", p, st.Mode(), c.mode)
				}
				files++
				return err
			})
			if err != nil || files != 500 {
				t.Fatalf("walk: %d files of 500, %v", files, err)
			}
			lists, heads := mem.Requests("list"), mem.Requests("head")
			t.Logf("walk: %d LIST (%d objects with headers), %d HEAD", lists, mem.ListedWithHeaders(), heads)
			if heads > 0 || lists > 12 {
				t.Errorf("walk cost %d LIST and %d HEAD, want at most 12 and none", lists, heads)
			}
		})
	}
}

// TestWalkWithoutListingHeaders: on a server whose listings carry no
// headers (AWS, versitygw), find sampled every directory it entered, three
// HEADs each (300 for 100 directories), to give READDIRPLUS attributes it
// never looks at. Once a sample of two of the walk's directories finds no
// POSIX headers, the walk's files go to the kernel by name and type only;
// a tool that stats one (ls -l, du) has it looked up then, and its
// directory sampled as before, so the modes it shows are still right.
func TestWalkWithoutListingHeaders(t *testing.T) {
	mem := memory.New("b")
	putMixedTree(t, mem)
	mnt := mountMemory(t, mem, func(cfg *Config) { cfg.PosixMetadata = "auto" })
	if files := walkFiles(t, filepath.Join(mnt, "top"), false); files != 2020 {
		t.Fatalf("walk: %d files of 2,020", files)
	}
	lists, heads := mem.Requests("list"), mem.Requests("head")
	t.Logf("walk: %d LIST, %d HEAD", lists, heads)
	if lists+heads > 12 || heads > 6 {
		t.Errorf("walk cost %d LIST and %d HEAD, want at most 12 requests, 6 of them HEADs (the walk's sample)", lists, heads)
	}
	for p, want := range map[string]os.FileMode{"top/d7/e3/g05": 0o600, "top/d7/e3/f05": 0o644, "top/d2/e2/f02": 0o644} {
		if st, err := os.Stat(filepath.Join(mnt, p)); err != nil || st.Mode() != want {
			t.Errorf("stat %s after the walk: %v, %v; want %v", p, st.Mode(), err, want)
		}
	}
}

// TestWalkOnAServerThatListsHeaders: under --posix-metadata auto on MinIO,
// a flat walk asked for every object's headers, which costs MinIO a
// metadata read per object: find over 2,000 files took twice the time of
// a plain listing, for attributes it never reads. The walk now lists
// plainly and samples two of its directories with a small listing that
// carries headers (no HEAD); a stat afterwards has the whole walk listed
// again with headers, once, so the modes it shows stay right.
func TestWalkOnAServerThatListsHeaders(t *testing.T) {
	mem := memory.New("b")
	mem.ListHeaders = true
	putMixedTree(t, mem)
	for d := range 4 {
		for e := range 4 {
			for f := range 12 {
				put(t, mem, fmt.Sprintf("more/d%d/e%d/f%02d", d, e, f), []byte("x"), nil, "")
			}
		}
	}
	mnt := mountMemory(t, mem, func(cfg *Config) { cfg.PosixMetadata = "auto" })
	if files := walkFiles(t, filepath.Join(mnt, "top"), false); files != 2020 {
		t.Fatalf("walk: %d files of 2,020", files)
	}
	lists, heads, withHeaders := mem.Requests("list"), mem.Requests("head"), mem.ListedWithHeaders()
	t.Logf("walk: %d LIST (%d objects with headers), %d HEAD", lists, withHeaders, heads)
	if lists+heads > 12 || heads > 0 || withHeaders > 100 {
		t.Errorf("walk cost %d LIST (%d objects listed with headers) and %d HEAD; want at most 12 requests, no HEAD, and the 2,020 files listed plainly",
			lists, withHeaders, heads)
	}
	for p, want := range map[string]os.FileMode{"top/d7/e3/g05": 0o600, "top/d7/e3/f05": 0o644, "top/d2/e2/f02": 0o644} {
		if st, err := os.Stat(filepath.Join(mnt, p)); err != nil || st.Mode() != want {
			t.Errorf("stat %s after the walk: %v, %v; want %v", p, st.Mode(), err, want)
		}
	}
	lists, heads = mem.Requests("list"), mem.Requests("head")
	if lists > 14 || heads > 0 {
		t.Errorf("walk and stats cost %d LIST and %d HEAD; want at most 14 LISTs (the walk listed again with headers) and no HEAD", lists, heads)
	}

	// The mount's walks are statted (du, ls -lR): the next one asks for
	// headers at once instead of listing plainly first.
	withHeaders = mem.ListedWithHeaders()
	walkFiles(t, filepath.Join(mnt, "more"), true)
	lists, withHeaders = mem.Requests("list")-lists, mem.ListedWithHeaders()-withHeaders
	t.Logf("second walk, statted: %d LIST (%d objects with headers)", lists, withHeaders)
	if lists > 5 || withHeaders < 192 {
		t.Errorf("a walk after a statted one cost %d LIST (%d objects with headers); want at most 5, its 192 files listed once with headers", lists, withHeaders)
	}
}

// putMixedTree stores 2,000 files without headers in 110 directories under
// top/, and 20 with POSIX headers (mode 0600) deep in it, in top/d7/e3,
// where a walk's sample of its first and last directories does not look.
func putMixedTree(t *testing.T, mem *memory.Bucket) {
	t.Helper()
	for d := range 10 {
		for e := range 10 {
			for f := range 20 {
				put(t, mem, fmt.Sprintf("top/d%d/e%d/f%02d", d, e, f), []byte("x"), nil, "")
			}
		}
	}
	for f := range 20 {
		put(t, mem, fmt.Sprintf("top/d7/e3/g%02d", f), []byte("x"), map[string]string{"mode": "33152"}, "")
	}
}

// walkFiles walks root as find does, or as du does (stat), and returns
// how many files it found.
func walkFiles(t *testing.T, root string, stat bool) int {
	t.Helper()
	files := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		if stat {
			_, err = os.Lstat(p)
		}
		return err
	})
	if err != nil {
		t.Fatalf("walk of %s: %v", root, err)
	}
	return files
}
