package fs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
	"github.com/bucketfs/bucketfs/cache"
)

// TestStreamedEntriesMatchWhole: a directory turned into entries a segment
// at a time, over pages of any size, shows exactly what the whole listing
// shows, for keys built to collide: files and directories of one name,
// s3fs markers, names that sort between them, and files already named
// like a shadowed file.
func TestStreamedEntriesMatchWhole(t *testing.T) {
	const prefix = "p/"
	bases := []string{"a", "a-", "a.", "a.__file__", "a0", "ab", "a_", "b", "b.__file__.__file__"}
	suffixes := []string{"", "/x", legacyDirSuffix, shadowSuffix, shadowSuffix + "/y", shadowSuffix + legacyDirSuffix, "/"}
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 3000 {
		keys := map[string]bool{}
		for range 1 + rng.IntN(12) {
			keys[prefix+bases[rng.IntN(len(bases))]+suffixes[rng.IntN(len(suffixes))]] = true
		}
		sorted := slices.Sorted(func(yield func(string) bool) {
			for k := range keys {
				if !yield(k) {
					return
				}
			}
		})
		// The listing S3 gives, in pages of up to size items.
		var whole backend.ListPage
		var items []string
		for _, k := range sorted {
			rest := k[len(prefix):]
			if i := strings.Index(rest, "/"); i >= 0 {
				p := prefix + rest[:i+1]
				if !slices.Contains(whole.Prefixes, p) {
					whole.Prefixes = append(whole.Prefixes, p)
					items = append(items, p)
				}
				continue
			}
			whole.Objects = append(whole.Objects, backend.Object{Key: k})
			items = append(items, k)
		}
		want := entryNames(dirEntries(prefix, whole))

		h := &dirHandle{d: &dirNode{fs: &filesystem{}}, prefix: prefix, minSegment: 1, locals: map[string]uint32{}, shown: map[string]entry{}}
		size := 1 + rng.IntN(4)
		for from := 0; from < len(items); from += size {
			var page backend.ListPage
			for _, it := range items[from:min(from+size, len(items))] {
				if strings.HasSuffix(it, "/") {
					page.Prefixes = append(page.Prefixes, it)
				} else {
					page.Objects = append(page.Objects, backend.Object{Key: it})
				}
			}
			h.gather(page)
		}
		h.flush()
		if got := entryNames(h.out); !slices.Equal(got, want) {
			t.Fatalf("trial %d, keys %q, pages of %d: streamed %q, whole %q", trial, sorted, size, got, want)
		}
	}
}

func entryNames(entries []fuse.DirEntry) []string {
	var names []string
	for _, e := range entries {
		names = append(names, fmt.Sprintf("%s:%o", e.Name, e.Mode&syscall.S_IFMT))
	}
	slices.Sort(names)
	return names
}

// TestMillionKeyDirectory: `ls` of a directory of a million keys streams
// it page by page: one LIST per 1,000 keys, no HEAD when listings carry
// headers, and live memory that does not grow with the directory (the
// whole listing was gathered, copied and cached, and every entry kept a
// node: +536 MiB). Past --cache-entries, READDIRPLUS gives names only.
func TestMillionKeyDirectory(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 200_000
	}
	mem := memory.New("b")
	mem.ListHeaders = true
	ctx := context.Background()
	for i := range n {
		if _, err := mem.Put(ctx, backend.PutInput{Key: fmt.Sprintf("big/file-%07d.dat", i), Body: strings.NewReader("")}); err != nil {
			t.Fatal(err)
		}
	}
	mem.Keys() // sorted once, as a server's index is
	const entries = 50_000
	mnt := mountMemory(t, mem, func(c *Config) {
		c.Bucket = cache.NewMeta(mem, cache.MetaOptions{TTL: time.Minute, NegativeTTL: time.Second, Entries: entries})
	})
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	lists := mem.Requests("list")

	f, err := os.Open(filepath.Join(mnt, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var live uint64
	seen, last := 0, ""
	for {
		names, err := f.Readdirnames(4096)
		for _, name := range names {
			if name <= last {
				t.Fatalf("%q after %q: names out of order or repeated", name, last)
			}
			last = name
		}
		seen += len(names)
		if err != nil || len(names) == 0 {
			break
		}
		if seen%(64<<10) < 4096 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			live = max(live, ms.HeapAlloc)
		}
	}
	if seen != n {
		t.Fatalf("listed %d names of %d", seen, n)
	}
	if got := mem.Requests("list") - lists; got > int64(n/1000+2) {
		t.Errorf("%d LISTs for %d keys; want one per 1,000", got, n)
	}
	if got := mem.Requests("head"); got != 0 {
		t.Errorf("%d HEADs; the listing carries every header", got)
	}
	const bound = 96 << 20 // the nodes of --cache-entries entries, and pages
	if grew := int64(live) - int64(base); grew > bound {
		t.Errorf("live heap grew by %d MiB while listing; want at most %d MiB whatever the size", grew>>20, bound>>20)
	}
	t.Logf("%d keys: live heap +%d MiB, %d LISTs", n, (int64(live)-int64(base))>>20, mem.Requests("list")-lists)
}
