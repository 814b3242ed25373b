package fs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend/memory"
	"github.com/bucketfs/bucketfs/cache"
)

// TestFileLookupSendsItsGETAlongWithTheListing: a file that no listing
// the mount holds answers for (here one in a directory of more than a
// page) took a LIST (is the name a directory?), then a HEAD, then the
// open's GET: three requests one after the other before the first byte.
// The HEAD is now a GET of the first bytes, sent at the same time as the
// LIST, and the open reads them from its body: one round trip, and a
// small file needs no other request.
func TestFileLookupSendsItsGETAlongWithTheListing(t *testing.T) {
	mem := memory.New("b")
	big := bytes.Repeat([]byte("0123456789abcdef"), 192<<10) // 3 MiB
	put(t, mem, "a/big", big, nil, "")
	put(t, mem, "a/small", []byte("tiny"), nil, "")
	put(t, mem, "a/sub/x", []byte("x"), nil, "")
	for i := range 2000 {
		put(t, mem, fmt.Sprintf("a/f%04d", i), []byte("x"), nil, "") // more than a page
	}
	mnt := mountMemory(t, mem, nil)
	if _, err := os.ReadDir(mnt); err != nil { // a/ is then known a directory: no GET of "a"
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "a")); err != nil {
		t.Fatal(err)
	}

	var (
		together atomic.Bool
		once     sync.Once
		getSent  = make(chan struct{})
	)
	together.Store(true)
	mem.SetFault(func(op, key string) error {
		switch {
		case op == "get" && key == "a/small":
			once.Do(func() { close(getSent) })
		case op == "list" && key == "a/small/":
			select { // the listing is answered once the GET went out
			case <-getSent:
			case <-time.After(2 * time.Second):
				together.Store(false)
			}
		}
		return nil
	})
	lists, heads, gets := mem.Requests("list"), mem.Requests("head"), mem.Requests("get")
	if data, err := os.ReadFile(filepath.Join(mnt, "a/small")); err != nil || string(data) != "tiny" {
		t.Fatalf("a/small = %q, %v", data, err)
	}
	mem.SetFault(nil)
	if !together.Load() {
		t.Errorf("the LIST of a/small/ waited 2 s for the GET of a/small: they ran one after the other")
	}
	if l, h, g := mem.Requests("list")-lists, mem.Requests("head")-heads, mem.Requests("get")-gets; l != 1 || h != 0 || g != 1 {
		t.Errorf("cat a/small sent LIST %d HEAD %d GET %d; want one LIST and one GET", l, h, g)
	}

	// A bigger file reads on from the lookup's first bytes.
	gets = mem.Requests("get")
	if data, err := os.ReadFile(filepath.Join(mnt, "a/big")); err != nil || !bytes.Equal(data, big) {
		t.Fatalf("a/big: %d bytes, %v; want the %d written", len(data), err, len(big))
	}
	if g := mem.Requests("get") - gets; g < 2 {
		t.Errorf("a/big took %d GETs: the lookup's and the reader's own", g)
	}
	if st, err := os.Stat(filepath.Join(mnt, "a/sub")); err != nil || !st.IsDir() {
		t.Errorf("a/sub: %v, %v (a directory wins its name)", st, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "a/nope")); !os.IsNotExist(err) {
		t.Errorf("a/nope: %v", err)
	}
}

// TestFreshMountWarmed: a mount lists its root and its first
// directories before it is ready (cache.Meta.Warm, which the binary
// calls), so the first `cat dir/file` sends only its GET.
func TestFreshMountWarmed(t *testing.T) {
	for _, listHeaders := range []bool{false, true} {
		t.Run(fmt.Sprintf("listHeaders=%v", listHeaders), func(t *testing.T) {
			mem := memory.New("b")
			mem.ListHeaders = listHeaders
			put(t, mem, "dir/file", []byte("contents"), map[string]string{"mode": "0100600"}, "")
			put(t, mem, "top.txt", []byte("top"), nil, "")
			meta := cache.NewMeta(mem, WithPosixMetadata("auto", cache.MetaOptions{TTL: time.Minute, NegativeTTL: 5 * time.Second}))
			mnt := mountMemory(t, mem, func(cfg *Config) { cfg.Bucket = meta })
			if err := meta.Warm(context.Background(), ""); err != nil {
				t.Fatal(err)
			}
			if n := mem.Requests("list"); n != 2 {
				t.Errorf("Warm sent %d LISTs, want 2 (the root and dir)", n)
			}
			lists, heads := mem.Requests("list"), mem.Requests("head")
			data, err := os.ReadFile(filepath.Join(mnt, "dir/file"))
			if err != nil || string(data) != "contents" {
				t.Fatalf("dir/file = %q, %v", data, err)
			}
			if l := mem.Requests("list") - lists; l != 0 {
				t.Errorf("cat dir/file sent %d LISTs after Warm, want 0", l)
			}
			st, err := os.Stat(filepath.Join(mnt, "dir/file"))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("dir/file: %v, %v; want mode 0600 from its headers", st, err)
			}
			if h := mem.Requests("head") - heads; listHeaders && h != 0 {
				t.Errorf("%d HEADs where listings carry headers", h)
			}
		})
	}
}

// TestListingSendsNoGETForItsDirectories: the lookups READDIRPLUS makes
// of a listing's subdirectories ask for their markers, and no GET of the
// names, which the listing showed to be directories (while a listing of
// several pages streams, no cached listing answers for them yet).
func TestListingSendsNoGETForItsDirectories(t *testing.T) {
	mem := memory.New("b")
	mem.ListHeaders = true // as on MinIO, where such a listing streams
	for i := range 5 {
		put(t, mem, fmt.Sprintf("top/a%d/file", i), []byte("x"), nil, "")
	}
	putDir(t, mem, "top", 2500)
	mnt := mountMemory(t, mem, nil)
	release := make(chan struct{})
	var lists atomic.Int32
	mem.SetFault(func(op, key string) error {
		if op == "list" && key == "top/" && lists.Add(1) > 3 {
			select { // the rest of the listing waits while the first entries go out
			case <-release:
			case <-time.After(5 * time.Second):
			}
		}
		return nil
	})
	defer mem.SetFault(nil)
	if _, err := os.Stat(filepath.Join(mnt, "top")); err != nil { // a cold lookup: LIST and GET
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a lookup's GET goes out in the background
	gets := mem.Requests("get")
	f, err := os.Open(filepath.Join(mnt, "top"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	first, err := f.ReadDir(10)
	if err != nil || len(first) != 10 {
		close(release)
		t.Fatalf("first entries: %d, %v", len(first), err)
	}
	time.Sleep(100 * time.Millisecond)
	n := mem.Requests("get") - gets
	close(release)
	if n != 0 {
		t.Errorf("the lookups of a listing's directories sent %d GETs, want 0", n)
	}
	if rest, err := f.ReadDir(-1); err != nil || len(rest) != 2495 {
		t.Errorf("the rest: %d entries, %v", len(rest), err)
	}
}
