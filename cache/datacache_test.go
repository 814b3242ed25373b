package cache

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
)

func openTestDataCache(t *testing.T, root string, opts DataOptions) *DataCache {
	t.Helper()
	dc, err := OpenDataCache(root, "bucket", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	return dc
}

// readerWithCache opens a reader of obj sharing dc's extent of it.
func readerWithCache(b backend.Bucket, dc *DataCache, obj backend.Object) *Reader {
	opts := smallOpts
	opts.Extent = dc.Acquire("", obj)
	return NewReader(b, obj, opts)
}

func fetched(log *getLog) (gets int, bytes int64) {
	for _, g := range log.log() {
		gets++
		bytes += g.Length
	}
	return gets, bytes
}

// Random reads of an object above the whole-fetch threshold fetch their
// own blocks only, at most about one byte fetched per byte read, and a
// block read twice is fetched once.
func TestRandomReadsFetchOnlyTheirBlocks(t *testing.T) {
	mem := memory.New("b")
	const size = 8 << 20
	data, obj := putRandom(t, mem, "k", size, 1)
	log := &getLog{Bucket: mem}
	dc := openTestDataCache(t, t.TempDir(), DataOptions{Whole: size - 1})
	r := readerWithCache(log, dc, obj)
	defer r.Close()

	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4<<10)
	offsets := make([]int64, 200)
	for i := range offsets {
		offsets[i] = rng.Int64N(size/BlockSize) * BlockSize
	}
	for pass := range 2 {
		for _, off := range offsets {
			n, err := r.ReadAt(context.Background(), buf, off)
			if err != nil || !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
				t.Fatalf("pass %d: read at %d: %d bytes, %v, or wrong bytes", pass, off, n, err)
			}
		}
	}
	gets, got := fetched(log)
	distinct := map[int64]bool{}
	for _, off := range offsets {
		distinct[off] = true
	}
	if want := int64(len(distinct)) * 4 << 10; got > 2*want || gets > len(distinct)+2 {
		t.Fatalf("%d GETs of %d bytes for %d distinct 4 KiB reads (%d bytes); want at most one GET each and 2 bytes per byte", gets, got, len(distinct), want)
	}
}

// A reader that jumps around an object under the threshold gets the whole
// object fetched in the background; then every read is local.
func TestJumpingReaderFetchesTheWholeObject(t *testing.T) {
	mem := memory.New("b")
	const size = 20<<20 + 123
	data, obj := putRandom(t, mem, "k", size, 2)
	log := &getLog{Bucket: mem}
	dc := openTestDataCache(t, t.TempDir(), DataOptions{Whole: size})
	r := readerWithCache(log, dc, obj)
	defer r.Close()
	buf := make([]byte, 4<<10)
	for _, off := range []int64{10 << 20, 3 << 20} {
		if _, err := r.ReadAt(context.Background(), buf, off); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !r.opts.Extent.Has(0, size) {
		if time.Now().After(deadline) {
			t.Fatalf("whole object not fetched: %d of %d bytes", r.opts.Extent.Held(), size)
		}
		time.Sleep(5 * time.Millisecond)
	}
	before, fetchedBytes := fetched(log)
	if fetchedBytes > size+2*(4<<10) {
		t.Fatalf("fetched %d bytes for an object of %d", fetchedBytes, size)
	}
	got := make([]byte, size)
	for off := int64(0); off < size; off += 64 << 10 {
		if _, err := r.ReadAt(context.Background(), got[off:min(off+64<<10, size)], off); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatal("bytes read from the data cache differ from the object's")
	}
	if after, _ := fetched(log); after != before {
		t.Fatalf("%d GETs after the whole fetch; want 0", after-before)
	}
}

// An object above the threshold is never fetched whole.
func TestNoWholeFetchAboveTheThreshold(t *testing.T) {
	mem := memory.New("b")
	_, obj := putRandom(t, mem, "k", 4<<20, 3)
	log := &getLog{Bucket: mem}
	dc := openTestDataCache(t, t.TempDir(), DataOptions{Whole: 1 << 20})
	r := readerWithCache(log, dc, obj)
	buf := make([]byte, 4<<10)
	for i := range 20 {
		r.ReadAt(context.Background(), buf, int64(i*7%20)<<17)
	}
	r.Close()
	if _, got := fetched(log); got > 2*20*(4<<10) {
		t.Fatalf("fetched %d bytes for 20 reads of 4 KiB; want at most 2 bytes per byte", got)
	}
}

// With Keep, what was fetched survives the last close and a new data
// cache on the same directory (a remount): a re-read sends no GET. Another
// version of the key is a different copy.
func TestKeptCopiesSurviveARemount(t *testing.T) {
	mem := memory.New("b")
	const size = 3<<20 + 5
	data, obj := putRandom(t, mem, "k", size, 4)
	root := t.TempDir()
	log := &getLog{Bucket: mem}
	dc := openTestDataCache(t, root, DataOptions{Keep: 64 << 20, Whole: 64 << 20})
	r := readerWithCache(log, dc, obj)
	readSeq(t, r, size, 64<<10)
	r.Close()
	if dc.KeptBytes() != size {
		t.Fatalf("kept %d bytes after a full read of %d", dc.KeptBytes(), size)
	}
	dc.Close()

	dc2 := openTestDataCache(t, root, DataOptions{Keep: 64 << 20, Whole: 64 << 20})
	if dc2.KeptBytes() != size {
		t.Fatalf("remount found %d kept bytes; want %d", dc2.KeptBytes(), size)
	}
	log2 := &getLog{Bucket: mem}
	r2 := readerWithCache(log2, dc2, obj)
	if got := readSeq(t, r2, size, 64<<10); !bytes.Equal(got, data) {
		t.Fatal("kept copy differs from the object")
	}
	r2.Close()
	if gets, _ := fetched(log2); gets != 0 {
		t.Fatalf("%d GETs re-reading a kept copy; want 0", gets)
	}

	newData, newObj := putRandom(t, mem, "k", size, 5)
	r3 := readerWithCache(log2, dc2, newObj)
	defer r3.Close()
	if got := readSeq(t, r3, size, 64<<10); !bytes.Equal(got, newData) {
		t.Fatal("a new version of the key was served from the old version's copy")
	}
	if gets, _ := fetched(log2); gets == 0 {
		t.Fatal("the new version was not fetched")
	}
}

// Kept copies stay within Keep: the least recently used go first.
func TestKeptCopiesAreEvictedLeastRecentlyUsedFirst(t *testing.T) {
	mem := memory.New("b")
	root := t.TempDir()
	dc := openTestDataCache(t, root, DataOptions{Keep: 5 << 20, Whole: 64 << 20})
	var objs []backend.Object
	for i := range 3 {
		_, obj := putRandom(t, mem, string(rune('a'+i)), 2<<20, uint64(10+i))
		objs = append(objs, obj)
	}
	read := func(obj backend.Object) {
		r := readerWithCache(mem, dc, obj)
		readSeq(t, r, int(obj.Size), 256<<10)
		r.Close()
	}
	read(objs[0])
	read(objs[1])
	read(objs[0]) // a is now the most recently used
	read(objs[2])
	if dc.KeptBytes() > 5<<20 {
		t.Fatalf("kept %d bytes; bound 5 MiB", dc.KeptBytes())
	}
	for i, want := range []bool{true, false, true} {
		_, err := os.Stat(filepath.Join(root, "data", "bucket", extentID("", objs[i])+dataSuffix))
		if (err == nil) != want {
			t.Errorf("copy of %s kept: %v, want %v", objs[i].Key, err == nil, want)
		}
	}
}

// A data file whose map is missing (a crash while saving) or damaged is
// removed at the next open, never served.
func TestHalfSavedCopiesAreRemoved(t *testing.T) {
	mem := memory.New("b")
	root := t.TempDir()
	_, obj := putRandom(t, mem, "k", 1<<20, 6)
	dc := openTestDataCache(t, root, DataOptions{Keep: 64 << 20})
	r := readerWithCache(mem, dc, obj)
	readSeq(t, r, 1<<20, 64<<10)
	r.Close()
	dc.Close()
	id := extentID("", obj)
	dir := filepath.Join(root, "data", "bucket")
	if err := os.WriteFile(filepath.Join(dir, id+mapSuffix), []byte(mapMagic+"garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	dc2 := openTestDataCache(t, root, DataOptions{Keep: 64 << 20})
	if dc2.KeptBytes() != 0 {
		t.Fatalf("a damaged copy was kept (%d bytes)", dc2.KeptBytes())
	}
	if _, err := os.Stat(filepath.Join(dir, id+dataSuffix)); err == nil {
		t.Fatal("the damaged copy's data file is still there")
	}
}

// Without Keep, an extent leaves nothing on disk, even while open.
func TestUnkeptExtentsLeaveNothing(t *testing.T) {
	mem := memory.New("b")
	root := t.TempDir()
	_, obj := putRandom(t, mem, "k", 1<<20, 7)
	dc := openTestDataCache(t, root, DataOptions{Whole: 64 << 20})
	r := readerWithCache(mem, dc, obj)
	buf := make([]byte, 4<<10)
	r.ReadAt(context.Background(), buf, 500<<10)
	// The file is made by the first data, maybe by a fetch still running,
	// and is unlinked once made.
	entries, _ := os.ReadDir(filepath.Join(root, "data", "bucket"))
	for deadline := time.Now().Add(2 * time.Second); len(entries) != 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		entries, _ = os.ReadDir(filepath.Join(root, "data", "bucket"))
	}
	if len(entries) != 0 {
		t.Fatalf("data dir holds %d entries while open; want 0 (unlinked)", len(entries))
	}
	r.Close()
}

func TestBitmapRoundTrip(t *testing.T) {
	for _, blocks := range []int64{1, 63, 64, 65, 1000} {
		have := make([]uint64, (blocks+63)/64)
		for i := int64(0); i < blocks; i += 3 {
			have[i/64] |= 1 << (i % 64)
		}
		back, err := decodeBitmap(encodeBitmap(have), blocks)
		if err != nil || !slices.Equal(back, have) {
			t.Fatalf("%d blocks: %v", blocks, err)
		}
	}
	if _, err := decodeBitmap(encodeBitmap([]uint64{1 << 63}), 10); err == nil {
		t.Fatal("a bit past the last block was accepted")
	}
}

// An extent makes its file on disk when it first holds data, not when it
// is acquired: a sequential reader stores nothing, and creating the file
// at open put a file create (milliseconds on a cold disk) before the first
// byte of every read.
func TestExtentFileMadeOnFirstData(t *testing.T) {
	mem := memory.New("b")
	root := t.TempDir()
	data, obj := putRandom(t, mem, "k", 1<<20, 8)
	dc := openTestDataCache(t, root, DataOptions{Keep: 64 << 20, Whole: 64 << 20})
	dir := filepath.Join(root, "data", "bucket")
	files := func() int {
		entries, _ := os.ReadDir(dir)
		n := 0
		for _, e := range entries {
			if filepath.Ext(e.Name()) == dataSuffix {
				n++
			}
		}
		return n
	}
	e := dc.Acquire("", obj)
	if n := files(); n != 0 {
		t.Fatalf("%d data files after Acquire; want none before any data", n)
	}
	e.Put(data[:64<<10], 0)
	if n := files(); n != 1 || !e.Has(0, 64<<10) {
		t.Fatalf("after Put: %d data files, holds the range %v; want 1, true", n, e.Has(0, 64<<10))
	}
	got := make([]byte, 64<<10)
	if _, err := e.ReadAt(got, 0); err != nil || !bytes.Equal(got, data[:64<<10]) {
		t.Fatalf("ReadAt after Put: %v", err)
	}
	e.Release()
	if dc.KeptBytes() != 64<<10 {
		t.Fatalf("kept %d bytes; want %d", dc.KeptBytes(), 64<<10)
	}

	empty := dc.Acquire("", backend.Object{Key: "other", ETag: "e", Size: 1 << 20})
	empty.Release() // held nothing: nothing kept, nothing left
	if n := files(); n != 1 {
		t.Fatalf("%d data files after an extent that held nothing; want the 1 kept", n)
	}
}
