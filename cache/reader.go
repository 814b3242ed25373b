package cache

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/bucketfs/bucketfs/backend"
)

// Lock order of the reader: Reader.mu before Budget.mu.

const (
	defaultMaxWindow   = 64 << 20
	defaultMinWindow   = 1 << 20
	defaultChunkSize   = 8 << 20
	defaultRandomChunk = 256 << 10

	// piece is how much of a chunk arrives before waiting reads are woken,
	// so a read never waits for more of a chunk than it needs; the first
	// pieces of a GET are smaller, from firstPiece doubling, so that the
	// first byte (the kernel's first read of a file is 16 KiB) does not
	// wait for 128 KiB to arrive.
	piece      = 128 << 10
	firstPiece = 16 << 10
	// minPooled: smaller buffers are cheap to allocate and not worth pooling.
	minPooled = 64 << 10
	// randomSlack is how far from its last read a random reader's next
	// read may start and still begin a sequential stream.
	randomSlack = 64 << 10
)

// ReaderOptions tune read-ahead. Zero values take the defaults.
type ReaderOptions struct {
	MaxWindow   int64   // largest read-ahead window for a sequential reader; default 64 MiB (the --read-ahead flag)
	MinWindow   int64   // first window of a sequential reader; default 1 MiB
	ChunkSize   int64   // size of one ranged GET of the window; default 8 MiB (never above the window)
	RandomChunk int64   // size of the ranged GET for a random read; default 256 KiB (at least the request's length)
	Budget      *Budget // shared memory budget across all readers; nil = unbounded
	// Extent, when set, is the local copy of the version that its readers
	// share: reads it holds are served from disk, random reads fetch
	// only their own blocks and keep them there, and a reader that keeps
	// jumping around fetches the whole object into it. Close releases it.
	Extent *Extent
	// First, when it has a body, holds the version's first bytes, which a
	// lookup fetched: the first chunk is read from it instead of a GET.
	// The reader closes it, and clears it once a chunk took it or the
	// first read showed it of no use (under Reader.mu).
	First FirstBytes
}

func (o ReaderOptions) withDefaults() ReaderOptions {
	o.MaxWindow = orDefault(o.MaxWindow, defaultMaxWindow)
	o.MinWindow = min(orDefault(o.MinWindow, defaultMinWindow), o.MaxWindow)
	o.ChunkSize = min(orDefault(o.ChunkSize, defaultChunkSize), o.MaxWindow)
	o.RandomChunk = orDefault(o.RandomChunk, defaultRandomChunk)
	return o
}

func orDefault(v, d int64) int64 {
	if v <= 0 {
		return d
	}
	return v
}

// Reader serves reads of one version of an object from ranged GETs, with a
// read-ahead window that grows while the reads are sequential. It holds at
// most MaxWindow + ChunkSize bytes of buffers (counted at their pooled
// capacity); a read that finds no room under that bound or the Budget is
// fetched straight into the caller's buffer.
type Reader struct {
	b     backend.Bucket
	obj   backend.Object
	opts  ReaderOptions
	limit int64 // most bytes of buffers held at once: MaxWindow + ChunkSize

	// ctx is the reader's own: read-ahead must outlive the FUSE request that
	// started it, and only Close cancels it.
	ctx     context.Context
	cancel  context.CancelFunc
	fetches sync.WaitGroup

	// mu protects the fields below and the mutable fields of every chunk.
	mu     sync.Mutex
	chunks []*chunk // sorted by offset, never overlapping
	pos    int64    // end of the furthest read of the current stream
	ahead  int64    // read-ahead frontier: end of what the stream has asked for
	window int64    // current read-ahead window; 0 while reading randomly
	held   int64    // bytes of buffers held, counting dropped chunks still in use
	peak   int64    // highest held, for tests
	jumps  int      // reads that were not sequential, for tests
	closed bool
	// readBefore: a sequential read came before, so reads start read-ahead
	readBefore bool
}

// chunk is one ranged GET and its buffer.
type chunk struct {
	off    int64
	buf    []byte // len is the range's length
	cancel context.CancelFunc

	// Protected by Reader.mu.
	filled    int64 // bytes of buf that have arrived
	err       error
	fetching  bool
	listed    bool          // in Reader.chunks, so new reads can find it
	users     int           // reads waiting on or copying from buf
	readAhead bool          // fetched ahead of the reads; reaching it grows the window
	keep      bool          // goes into the extent once fetched
	wake      chan struct{} // closed when filled or err changes; nil while nobody waits
}

func (c *chunk) end() int64 { return c.off + int64(len(c.buf)) }

// NewReader reads the version obj (obj.Key, obj.Size, obj.ETag) of an object.
// Every GET it sends carries IfMatch: obj.ETag, so an open file never mixes two versions;
// if the object changed, reads fail with an error wrapping backend.ErrPrecondition.
func NewReader(b backend.Bucket, obj backend.Object, opts ReaderOptions) *Reader {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Reader{b: b, obj: obj, opts: opts, limit: opts.MaxWindow + opts.ChunkSize, ctx: ctx, cancel: cancel}
}

// ReadAt fills p from offset off; it returns fewer bytes only at the end of
// the object, and 0, nil at or after it (what FUSE wants, rather than io.EOF).
// It is safe for concurrent use. A read waiting on a fetch returns when ctx is
// done, but the fetch goes on for later reads.
func (r *Reader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	return r.read(ctx, p, off, nil)
}

// read is ReadAt, and ReadView when view is not nil: then the bytes in the
// reader's buffers are not copied into p but added to the view, each buffer
// kept for it (a user until Release).
func (r *Reader) read(ctx context.Context, p []byte, off int64, view *View) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %q at %d: %w", r.obj.Key, off, backend.ErrInvalid)
	}
	if off >= r.obj.Size || len(p) == 0 {
		return 0, nil
	}
	end := min(off+int64(len(p)), r.obj.Size)
	p = p[:end-off]
	if r.opts.Extent.Has(off, end) {
		n, err := r.readLocal(p, off, end)
		view.add(p[:n], nil)
		return n, err
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, os.ErrClosed
	}
	r.plan(off, end)
	r.dropFirst() // the first bytes went to a chunk, or a read elsewhere came first
	n := 0
	for at := off; at < end; at = off + int64(n) {
		if r.closed {
			return n, os.ErrClosed
		}
		c, _ := r.locate(at)
		if c == nil {
			// No room under the bound or the budget: fetch just what is
			// asked, straight into p.
			keep := r.window == 0 || r.opts.Extent.Persistent()
			r.mu.Unlock()
			err := r.get(ctx, p[n:], at, nil)
			if err == nil && keep {
				r.opts.Extent.Put(p[n:], at)
			}
			r.mu.Lock()
			if err != nil {
				return n, err
			}
			view.add(p[n:], nil)
			return len(p), nil
		}
		to := min(end, c.end())
		c.users++
		err := r.wait(ctx, c, to-c.off)
		if err == nil && view != nil {
			view.add(c.buf[at-c.off:to-c.off], c) // c stays a user until Release
			n += int(to - at)
			continue
		}
		if err == nil {
			buf := c.buf
			r.mu.Unlock()
			n += copy(p[n:], buf[at-c.off:to-c.off])
			r.mu.Lock()
		}
		c.users--
		r.release(c)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// plan classifies the read [off, end) as sequential or not and starts the
// fetches it and the read-ahead need. Called with r.mu held.
func (r *Reader) plan(off, end int64) {
	// The kernel sends several reads at once and slightly out of order, so a
	// read anywhere near the stream (within a window) is still sequential.
	// A random reader becomes sequential only by reading on from where it
	// was: one that lands near its last read by chance is still random.
	slack := max(r.window, r.opts.MinWindow)
	if r.window == 0 && r.jumps > 0 {
		slack = min(slack, randomSlack)
	}
	if off < r.pos-slack || off > max(r.pos, r.ahead)+slack {
		r.jumps++
		if r.window > 0 {
			r.opts.Budget.leave()
		}
		r.window, r.ahead, r.pos = 0, 0, end
		// The old stream's buffers and fetches are of no use after a jump.
		r.drop(func(c *chunk) bool { return c.end() <= off || c.off >= end })
		if e := r.opts.Extent; e != nil {
			// With a local copy, a random read fetches its own blocks and
			// keeps them; from the second jump on, the whole object comes
			// in the background where it is small enough.
			if r.jumps >= 2 {
				e.FetchWhole(r.b)
			}
			from, to := off/BlockSize*BlockSize, min((end+BlockSize-1)/BlockSize*BlockSize, r.obj.Size)
			r.fill(from, to, to-from, false)
			return
		}
		r.fill(off, end, max(r.opts.RandomChunk, end-off), false)
		return
	}
	if r.window == 0 {
		r.window, r.ahead = r.opts.MinWindow, off
		r.opts.Budget.join()
	}
	r.pos = max(r.pos, end)
	// Keep a little behind the furthest read for the kernel's stragglers.
	r.drop(func(c *chunk) bool { return c.end() <= r.pos-r.opts.MinWindow })

	unit := min(r.opts.ChunkSize, r.window)
	to := end
	if !r.readBefore {
		to = max(end, off+unit) // the first window, as one GET's worth
	}
	if at := r.fill(off, to, unit, false); at >= end {
		r.ahead = max(r.ahead, at)
	}
	// Reaching read-ahead data means read-ahead pays: double the window.
	for _, c := range r.chunks {
		if c.readAhead && c.off < end && c.end() > off {
			c.readAhead = false
			r.window = min(2*r.window, r.opts.MaxWindow)
			unit = min(r.opts.ChunkSize, r.window)
		}
	}
	if !r.readBefore {
		// The first read starts only its window's GET: read-ahead would
		// share the server with the first byte (1.3 times its time on a
		// cold MinIO here), and many readers of a file's start (file(1),
		// head, a thumbnailer) want no more. The next read starts it.
		r.readBefore = true
		return
	}
	r.ahead = r.fill(max(r.ahead, off), r.pos+r.window, unit, true)
}

// fill starts fetches of up to unit bytes for the parts of [from, to) that no
// chunk covers. It returns how far the covered range reaches: to or beyond,
// or less when the bound or the budget left no room.
func (r *Reader) fill(from, to, unit int64, readAhead bool) int64 {
	at := from
	for at < min(to, r.obj.Size) {
		c, next := r.locate(at)
		if c != nil {
			at = c.end()
			continue
		}
		n := min(unit, r.obj.Size-at, next-at)
		if at == 0 && r.opts.First.Body != nil {
			n = min(n, r.opts.First.Length)
		}
		if !r.start(at, n, readAhead) {
			break
		}
		at += n
	}
	return at
}

// locate returns the chunk holding offset at, or nil and the offset of the
// next chunk after at.
func (r *Reader) locate(at int64) (*chunk, int64) {
	for _, c := range r.chunks {
		if at < c.off {
			return nil, c.off
		}
		if at < c.end() {
			return c, 0
		}
	}
	return nil, r.obj.Size
}

// start fetches [off, off+n) into a new chunk, if the bound and the budget
// have room for its buffer.
func (r *Reader) start(off, n int64, readAhead bool) bool {
	size := bufCap(n)
	if r.held+size > min(r.limit, r.opts.Budget.share()) || !r.opts.Budget.take(size) {
		return false
	}
	ctx, cancel := context.WithCancel(r.ctx)
	c := &chunk{off: off, buf: getBuf(n), cancel: cancel, fetching: true, listed: true, readAhead: readAhead,
		keep: r.window == 0 || r.opts.Extent.Persistent()}
	i := slices.IndexFunc(r.chunks, func(x *chunk) bool { return x.off > off })
	if i < 0 {
		i = len(r.chunks)
	}
	r.chunks = slices.Insert(r.chunks, i, c)
	r.held += size
	r.peak = max(r.peak, r.held)
	var first io.ReadCloser
	if off == 0 && r.opts.First.Body != nil && n == r.opts.First.Length {
		first, r.opts.First = r.opts.First.Body, FirstBytes{}
	}
	r.fetches.Add(1)
	go r.fetch(ctx, c, c.buf, first)
	return true
}

// fetch fills c, from body when it is not nil (the first bytes), else
// with a GET.
func (r *Reader) fetch(ctx context.Context, c *chunk, buf []byte, body io.ReadCloser) {
	defer r.fetches.Done()
	defer c.cancel()
	progress := func(n int) {
		r.mu.Lock()
		c.filled = int64(n)
		wake(c)
		r.mu.Unlock()
	}
	var err error
	if body != nil {
		stop := context.AfterFunc(ctx, func() { body.Close() })
		err = r.receive(body, buf, c.off, progress)
		stop()
		body.Close()
	} else {
		err = r.get(ctx, buf, c.off, progress)
	}
	if err == nil && c.keep {
		// The buffer stays c's while c.fetching is set.
		r.opts.Extent.Put(buf, c.off)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c.fetching = false
	if err != nil {
		if r.closed {
			err = os.ErrClosed
		}
		c.err = err
		// A failed chunk is not cached: a later read fetches it again.
		if c.listed {
			r.chunks = slices.DeleteFunc(r.chunks, func(x *chunk) bool { return x == c })
			r.forget(c)
		}
	}
	wake(c)
	r.release(c)
}

// get reads [off, off+len(p)) of the reader's version into p, reporting the
// bytes received so far to progress (if not nil) as they arrive.
func (r *Reader) get(ctx context.Context, p []byte, off int64, progress func(int)) error {
	body, _, err := r.b.Get(ctx, backend.GetInput{Key: r.obj.Key, Offset: off, Length: int64(len(p)), IfMatch: r.obj.ETag})
	if err != nil {
		return err
	}
	defer body.Close()
	return r.receive(body, p, off, progress)
}

// receive reads body, the range [off, off+len(p)), into p.
func (r *Reader) receive(body io.Reader, p []byte, off int64, progress func(int)) error {
	for n := 0; n < len(p); {
		step := min(piece, max(firstPiece, n)) // 16, 16, 32, 64, then 128 KiB
		m, err := io.ReadFull(body, p[n:min(n+step, len(p))])
		n += m
		if progress != nil && m > 0 {
			progress(n)
		}
		if err != nil {
			return fmt.Errorf("get %q at %d: %w", r.obj.Key, off+int64(n), err)
		}
	}
	return nil
}

// wait returns once c holds its first need bytes, or why it never will.
// Called with r.mu held, which it releases while waiting.
func (r *Reader) wait(ctx context.Context, c *chunk, need int64) error {
	for c.filled < need {
		if c.err != nil {
			return c.err
		}
		if !c.fetching {
			return fmt.Errorf("get %q at %d: %w", r.obj.Key, c.off+c.filled, io.ErrUnexpectedEOF)
		}
		if c.wake == nil {
			c.wake = make(chan struct{})
		}
		w := c.wake
		r.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
		}
		r.mu.Lock()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func wake(c *chunk) {
	if c.wake != nil {
		close(c.wake)
		c.wake = nil
	}
}

// drop forgets the chunks nobody is reading for which stale is true.
func (r *Reader) drop(stale func(*chunk) bool) {
	r.chunks = slices.DeleteFunc(r.chunks, func(c *chunk) bool {
		// A chunk whose bytes have all come but that is still going into the
		// extent stays findable: dropped, a read of it before the extent had
		// it would fetch it again (found under load by
		// TestRandomReadsFetchOnlyTheirBlocks). Its buffer is held until the
		// fetch ends either way, and there is nothing left to cancel.
		if c.users > 0 || c.keep && c.fetching && c.filled == int64(len(c.buf)) || !stale(c) {
			return false
		}
		r.forget(c)
		return true
	})
}

// forget marks c as out of r.chunks (the caller removes it) and stops its
// fetch; its buffer goes back once the fetch and its readers are done.
func (r *Reader) forget(c *chunk) {
	c.listed = false
	c.cancel()
	r.release(c)
}

func (r *Reader) release(c *chunk) {
	if c.listed || c.users > 0 || c.fetching || c.buf == nil {
		return
	}
	size := int64(cap(c.buf))
	putBuf(c.buf)
	c.buf = nil
	r.held -= size
	r.opts.Budget.give(size)
}

// Close cancels in-flight fetches and releases buffers and budget once the
// fetches have stopped. Reads still in progress fail. It is idempotent.
func (r *Reader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.dropFirst()
	if r.window > 0 {
		r.opts.Budget.leave()
	}
	r.cancel()
	for _, c := range r.chunks {
		r.forget(c)
	}
	r.chunks = nil
	r.mu.Unlock()
	r.fetches.Wait()
	r.opts.Extent.Release()
	return nil
}

// dropFirst lets go of the first bytes no chunk took. Called with r.mu
// held.
func (r *Reader) dropFirst() {
	if r.opts.First.Body != nil {
		go drainBody(r.opts.First.Body)
		r.opts.First = FirstBytes{}
	}
}

// Extent is the local copy the reader shares, or nil.
func (r *Reader) Extent() *Extent { return r.opts.Extent }

// Jumped tells whether the reader has read anywhere but sequentially.
func (r *Reader) Jumped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.jumps > 0
}

// readLocal serves [off, end) from the extent. A stream reading there
// moves on as if it had fetched it, so read-ahead resumes past it.
func (r *Reader) readLocal(p []byte, off, end int64) (int, error) {
	n, err := r.opts.Extent.ReadAt(p, off)
	if err != nil {
		return n, fmt.Errorf("read %q from the data cache at %d: %w", r.obj.Key, off, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, os.ErrClosed
	}
	if r.window > 0 && off >= r.pos-r.window && off <= r.pos+r.window {
		r.pos = max(r.pos, end)
		r.ahead = max(r.ahead, end)
	}
	return n, nil
}
