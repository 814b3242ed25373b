package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/bucketfs/bucketfs/backend"
)

// BlockSize is the unit in which an extent records what it holds: one
// page, so a 4 KiB random read fetches 4 KiB and not more.
const BlockSize = 4 << 10

const (
	// wholeChunk and wholeFetchers shape the background fetch of a whole
	// object: ranged GETs as large as the sequential reader's, as many at
	// once as an upload sends parts.
	wholeChunk    = 8 << 20
	wholeFetchers = 8
	// wholePiece is how much of a whole-fetch GET is written to disk, and
	// so becomes readable, at a time.
	wholePiece = 1 << 20
)

// Extent is the local copy of one version of an object: a sparse file
// under the data cache holding the ranges fetched so far, and a bitmap of
// the blocks it holds. Every reader of that version on the mount shares
// it, so no byte is fetched twice while the file is open.
type Extent struct {
	dc  *DataCache
	id  string
	obj backend.Object

	// file is made by the first Put (a kept copy's is open from the
	// start): a sequential reader stores nothing, and a file create at
	// open came before the first byte of every read. fileMu guards
	// making it; readers reach it only after a Put recorded blocks.
	fileMu  sync.Mutex
	file    *os.File
	fileErr error

	// ctx bounds the whole fetch; the last Release cancels it.
	ctx      context.Context
	cancel   context.CancelFunc
	fetching sync.WaitGroup
	done     chan struct{} // closed once a closing extent is saved or gone

	// mu protects the fields below; it is a leaf.
	mu      sync.Mutex
	have    []uint64 // bit i: block i is in the file
	held    int64    // bytes of the blocks held
	refs    int
	whole   bool // the whole object was asked for
	closing bool // the last reference went; being saved or removed
}

func newExtent(dc *DataCache, id string, obj backend.Object, file *os.File, have []uint64) *Extent {
	ctx, cancel := context.WithCancel(context.Background())
	e := &Extent{dc: dc, id: id, obj: obj, file: file, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		have: have, refs: 1}
	if e.have == nil {
		e.have = make([]uint64, (e.blocks()+63)/64)
	}
	e.held = popBytes(e.have, obj.Size)
	return e
}

func (e *Extent) blocks() int64 { return (e.obj.Size + BlockSize - 1) / BlockSize }

func (e *Extent) blockLen(i int64) int64 {
	return min(BlockSize, e.obj.Size-i*BlockSize)
}

func (e *Extent) has(i int64) bool { return e.have[i/64]&(1<<(i%64)) != 0 }

// Has tells whether the bytes [off, end) are all in the extent.
func (e *Extent) Has(off, end int64) bool {
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := off / BlockSize; i <= (end-1)/BlockSize; i++ {
		if !e.has(i) {
			return false
		}
	}
	return true
}

// Complete tells whether the extent holds the whole object.
func (e *Extent) Complete() bool { return e != nil && e.Held() == e.obj.Size }

// Fd is the descriptor of the local copy of a Complete extent, for FUSE
// passthrough; it stays open while the extent is acquired.
func (e *Extent) Fd() int { return int(e.file.Fd()) }

// localFile returns the extent's file, made at the first call.
func (e *Extent) localFile() (*os.File, error) {
	e.fileMu.Lock()
	defer e.fileMu.Unlock()
	if e.file == nil && e.fileErr == nil {
		e.file, e.fileErr = e.dc.create(e.id, e.obj.Size)
	}
	return e.file, e.fileErr
}

// closeFile closes the extent's file, if it was made.
func (e *Extent) closeFile() {
	e.fileMu.Lock()
	defer e.fileMu.Unlock()
	if e.file != nil {
		e.file.Close()
	}
}

// Size and Key are the object's.
func (e *Extent) Size() int64 { return e.obj.Size }
func (e *Extent) Key() string { return e.obj.Key }

// Retain takes one more reference to an extent still in use; false when
// its last reference is already gone.
func (e *Extent) Retain() bool {
	e.dc.mu.Lock()
	defer e.dc.mu.Unlock()
	if e.closing {
		return false
	}
	e.refs++
	return true
}

// Held is how many bytes of the object the extent holds.
func (e *Extent) Held() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.held
}

// ReadAt reads from the local copy; the caller checked Has.
func (e *Extent) ReadAt(p []byte, off int64) (int, error) {
	n, err := e.file.ReadAt(p, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

// Put writes p, fetched from offset off of the object, into the local
// copy, and records the blocks it fills. A block only partly in p is not
// recorded: its other bytes are not there. A failed write (a full disk)
// records nothing, and the reads that need those bytes fetch them again.
func (e *Extent) Put(p []byte, off int64) {
	if e == nil || len(p) == 0 {
		return
	}
	end := off + int64(len(p))
	first := (off + BlockSize - 1) / BlockSize
	last := end / BlockSize // first block not filled
	if end == e.obj.Size {
		last = e.blocks()
	}
	if first >= last {
		return
	}
	start := first * BlockSize
	stop := min(last*BlockSize, e.obj.Size)
	file, err := e.localFile()
	if err == nil {
		_, err = file.WriteAt(p[start-off:stop-off], start)
	}
	if err != nil {
		e.dc.warn("data cache write failed; reading without it", err)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := first; i < last; i++ {
		if !e.has(i) {
			e.have[i/64] |= 1 << (i % 64)
			e.held += e.blockLen(i)
		}
	}
}

// Persistent tells whether what the extent holds outlives its last
// release (--cache-size), so sequential reads are worth keeping too.
func (e *Extent) Persistent() bool { return e != nil && e.dc.keep > 0 }

// FetchWhole starts fetching the rest of the object in the background,
// once, when the object is no larger than the data cache's threshold and
// the disk has room for it. Readers meanwhile fetch what they need
// themselves.
func (e *Extent) FetchWhole(b backend.Bucket) {
	if e == nil || e.obj.Size > e.dc.whole {
		return
	}
	e.mu.Lock()
	started := e.whole
	e.whole = true
	e.mu.Unlock()
	if started || !e.dc.room(e.obj.Size-e.Held()) {
		return
	}
	e.fetching.Add(1)
	go func() {
		defer e.fetching.Done()
		if err := e.fetchWhole(b); err != nil && e.ctx.Err() == nil {
			e.dc.warn("whole-object fetch stopped; reads fetch what they need", fmt.Errorf("%s: %w", e.obj.Key, err))
		}
	}()
}

func (e *Extent) fetchWhole(b backend.Bucket) error {
	g, ctx := errgroup.WithContext(e.ctx)
	g.SetLimit(wholeFetchers)
	for off := int64(0); off < e.obj.Size; off += wholeChunk {
		end := min(off+wholeChunk, e.obj.Size)
		if e.Has(off, end) {
			continue
		}
		g.Go(func() error { return e.fetchRange(ctx, b, off, end) })
	}
	return g.Wait()
}

func (e *Extent) fetchRange(ctx context.Context, b backend.Bucket, off, end int64) error {
	body, _, err := b.Get(ctx, backend.GetInput{Key: e.obj.Key, Offset: off, Length: end - off, IfMatch: e.obj.ETag})
	if err != nil {
		return err
	}
	defer body.Close()
	buf := getBuf(wholePiece)
	defer putBuf(buf)
	for at := off; at < end; {
		n, err := io.ReadFull(body, buf[:min(wholePiece, end-at)])
		e.Put(buf[:n], at)
		at += int64(n)
		if err != nil {
			return fmt.Errorf("get at %d: %w", at, err)
		}
	}
	return nil
}

// Release gives back a reference taken by DataCache.Acquire; the last one
// stops the whole fetch and keeps the extent (--cache-size) or removes it.
func (e *Extent) Release() {
	if e != nil {
		e.dc.release(e)
	}
}

// encodeBitmap is the saved form of a bitmap: little-endian words.
func encodeBitmap(have []uint64) []byte {
	out := make([]byte, 0, 8*len(have))
	for _, w := range have {
		out = binary.LittleEndian.AppendUint64(out, w)
	}
	return out
}

func decodeBitmap(b []byte, blocks int64) ([]uint64, error) {
	words := (blocks + 63) / 64
	if int64(len(b)) != 8*words {
		return nil, fmt.Errorf("bitmap of %d bytes for %d blocks", len(b), blocks)
	}
	have := make([]uint64, words)
	for i := range have {
		have[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	if tail := blocks % 64; tail != 0 && have[words-1]>>tail != 0 {
		return nil, errors.New("bitmap has blocks past the end")
	}
	return have, nil
}

// popBytes is how many bytes the blocks set in have hold, for an object of size.
func popBytes(have []uint64, size int64) int64 {
	var blocks int64
	for _, w := range have {
		blocks += int64(bits.OnesCount64(w))
	}
	n := blocks * BlockSize
	if last := (size - 1) / BlockSize; size > 0 && have[last/64]&(1<<(last%64)) != 0 {
		n -= BlockSize - (size - last*BlockSize)
	}
	return n
}
