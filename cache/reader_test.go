package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
)

// getLog wraps a bucket to record every GET and, optionally, hold GETs until
// a gate opens.
type getLog struct {
	backend.Bucket

	gate    chan struct{} // when not nil, GETs wait until it is closed (or ctx ends)
	started chan struct{} // when not nil, gets a value as each GET begins

	mu   sync.Mutex
	gets []backend.GetInput
}

func (g *getLog) Get(ctx context.Context, in backend.GetInput) (io.ReadCloser, backend.Object, error) {
	g.mu.Lock()
	g.gets = append(g.gets, in)
	g.mu.Unlock()
	if g.started != nil {
		g.started <- struct{}{}
	}
	if g.gate != nil {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, backend.Object{}, ctx.Err()
		}
	}
	return g.Bucket.Get(ctx, in)
}

// log returns the GETs so far, by offset.
func (g *getLog) log() []backend.GetInput {
	g.mu.Lock()
	defer g.mu.Unlock()
	gets := append([]backend.GetInput(nil), g.gets...)
	sort.Slice(gets, func(i, j int) bool { return gets[i].Offset < gets[j].Offset })
	return gets
}

func putRandom(t *testing.T, m *memory.Bucket, key string, size int, seed uint64) ([]byte, backend.Object) {
	t.Helper()
	data := make([]byte, size)
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	rand.NewChaCha8(s).Read(data)
	obj, err := m.Put(context.Background(), backend.PutInput{Key: key, Body: bytes.NewReader(data), Size: int64(size)})
	if err != nil {
		t.Fatal(err)
	}
	return data, obj
}

// newTestReader stores size random bytes and opens a reader on them through a
// getLog; the reader is closed at cleanup.
func newTestReader(t *testing.T, size int, opts ReaderOptions) (*Reader, []byte, *getLog, *memory.Bucket) {
	t.Helper()
	mem := memory.New("b")
	data, obj := putRandom(t, mem, "k", size, uint64(size))
	log := &getLog{Bucket: mem}
	r := NewReader(log, obj, opts)
	t.Cleanup(func() { r.Close() })
	return r, data, log, mem
}

// readSeq reads the whole object in blocks of block bytes, checking the bound
// on buffers after every read.
func readSeq(t *testing.T, r *Reader, size, block int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, block)
	for off := 0; ; off += block {
		n, err := r.ReadAt(context.Background(), buf, int64(off))
		if err != nil {
			t.Fatalf("ReadAt(%d): %v", off, err)
		}
		if held, _ := r.buffered(); held > r.limit {
			t.Fatalf("after ReadAt(%d): %d bytes buffered, bound %d", off, held, r.limit)
		}
		out = append(out, buf[:n]...)
		if n < block {
			if off+n != size {
				t.Fatalf("ReadAt(%d) = %d bytes, short before the end (%d)", off, n, size)
			}
			return out
		}
	}
}

func (b *Budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// buffered reports the bytes of buffers held now and at most, for tests.
func (r *Reader) buffered() (held, peak int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held, r.peak
}

var smallOpts = ReaderOptions{MinWindow: 4 << 10, ChunkSize: 16 << 10, MaxWindow: 64 << 10, RandomChunk: 8 << 10}

func TestReaderSequentialBytes(t *testing.T) {
	chunk := int(smallOpts.ChunkSize)
	for _, size := range []int{0, 1, 100, 4095, chunk - 1, chunk, chunk + 1, 3*chunk + 7, 1<<20 + 13} {
		for _, block := range []int{1000, 4 << 10, 128 << 10} {
			r, data, log, _ := newTestReader(t, size, smallOpts)
			got := readSeq(t, r, size, block)
			if !bytes.Equal(got, data) {
				t.Errorf("size %d block %d: bytes differ", size, block)
			}
			for _, g := range log.log() {
				if g.IfMatch == "" || g.IfMatch != r.obj.ETag {
					t.Errorf("size %d block %d: GET without If-Match %q: %+v", size, block, r.obj.ETag, g)
				}
			}
			if size == 0 && len(log.log()) != 0 {
				t.Errorf("empty object: %d GETs, want none", len(log.log()))
			}
		}
	}
}

func TestReaderWindowGrows(t *testing.T) {
	const size, block = 4 << 20, 4 << 10
	opts := ReaderOptions{MinWindow: 4 << 10, ChunkSize: 64 << 10, MaxWindow: 256 << 10}
	r, data, log, _ := newTestReader(t, size, opts)
	if !bytes.Equal(readSeq(t, r, size, block), data) {
		t.Fatal("bytes differ")
	}
	gets := log.log()
	reads := size / block
	if max := size/int(opts.ChunkSize) + 8; len(gets) > max {
		t.Errorf("%d GETs for %d sequential reads, want at most %d", len(gets), reads, max)
	}
	if gets[0].Length != opts.MinWindow {
		t.Errorf("first GET of %d bytes, want MinWindow %d", gets[0].Length, opts.MinWindow)
	}
	var lengths []int64
	for i, g := range gets {
		lengths = append(lengths, g.Length)
		if i > 0 && g.Length < gets[i-1].Length && g.Offset+g.Length != size {
			t.Errorf("GET %d shrank: lengths %v", i, lengths)
		}
		if g.Length > opts.ChunkSize {
			t.Errorf("GET %d of %d bytes, above ChunkSize", i, g.Length)
		}
	}
	if !slicesContain(lengths, 2*opts.MinWindow) || !slicesContain(lengths, opts.ChunkSize) {
		t.Errorf("GET lengths %v: want the window doubling from %d up to %d", lengths[:8], opts.MinWindow, opts.ChunkSize)
	}
	if r.jumps != 0 {
		t.Errorf("%d jumps in a sequential read", r.jumps)
	}
	if _, peak := r.buffered(); peak > opts.MaxWindow+opts.ChunkSize {
		t.Errorf("peak %d bytes buffered, bound %d", peak, opts.MaxWindow+opts.ChunkSize)
	}
}

func slicesContain(s []int64, v int64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestReaderRandom(t *testing.T) {
	const size = 16 << 20
	offsets := []int64{9 << 20, 2<<20 + 123, 14 << 20, 5 << 20, 12<<20 + 7, 0, size - 1000}
	for _, tc := range []struct {
		name   string
		length int
	}{{"small reads", 4 << 10}, {"reads above RandomChunk", 512 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			r, data, log, _ := newTestReader(t, size, ReaderOptions{})
			buf := make([]byte, tc.length)
			for _, off := range offsets {
				n, err := r.ReadAt(context.Background(), buf, off)
				if err != nil {
					t.Fatalf("ReadAt(%d): %v", off, err)
				}
				want := data[off:min(off+int64(tc.length), size)]
				if !bytes.Equal(buf[:n], want) {
					t.Fatalf("ReadAt(%d): bytes differ", off)
				}
			}
			gets := log.log()
			if len(gets) != len(offsets) {
				t.Errorf("%d GETs for %d random reads, want one each (no read-ahead)", len(gets), len(offsets))
			}
			for _, g := range gets {
				want := min(max(defaultRandomChunk, int64(tc.length)), size-g.Offset)
				if g.Length != want {
					t.Errorf("GET at %d of %d bytes, want %d", g.Offset, g.Length, want)
				}
			}
			if r.jumps != len(offsets) || r.window != 0 {
				t.Errorf("jumps %d window %d, want %d jumps and no window", r.jumps, r.window, len(offsets))
			}
		})
	}
}

// TestReaderConcurrentOutOfOrder reads like the kernel: 128 KiB blocks, a few
// in flight at once, each pair swapped.
func TestReaderConcurrentOutOfOrder(t *testing.T) {
	const size, block, inFlight = 8 << 20, 128 << 10, 4
	opts := ReaderOptions{MinWindow: 1 << 20, ChunkSize: 1 << 20, MaxWindow: 4 << 20}
	r, data, log, _ := newTestReader(t, size, opts)

	blocks := size / block
	done := make([]chan struct{}, blocks)
	for i := range done {
		done[i] = make(chan struct{})
	}
	work := make(chan int)
	got := make([]byte, size)
	errs := make(chan error, blocks)
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for i := range work {
				n, err := r.ReadAt(context.Background(), got[i*block:(i+1)*block], int64(i*block))
				if err == nil && n != block {
					err = io.ErrShortBuffer
				}
				if err != nil {
					errs <- err
				}
				close(done[i])
			}
		})
	}
	for k := range blocks {
		i := k ^ 1 // 1, 0, 3, 2, ...
		if k >= inFlight {
			<-done[(k-inFlight)^1] // at most inFlight reads outstanding
		}
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
	gets := len(log.log())
	if r.jumps != 0 {
		t.Errorf("%d reads taken as jumps, want all sequential", r.jumps)
	}
	if max := size/int(opts.ChunkSize) + 3; gets > max {
		t.Errorf("%d GETs for %d reads, want at most %d", gets, blocks, max)
	}
	if _, peak := r.buffered(); peak > r.limit {
		t.Errorf("peak %d bytes buffered, bound %d", peak, r.limit)
	}
}

func TestReaderObjectReplaced(t *testing.T) {
	const size = 1 << 20
	opts := ReaderOptions{MinWindow: 64 << 10, ChunkSize: 64 << 10, MaxWindow: 64 << 10}
	r, data, _, mem := newTestReader(t, size, opts)
	ctx := context.Background()
	buf := make([]byte, 4<<10)
	if _, err := r.ReadAt(ctx, buf, 0); err != nil {
		t.Fatal(err)
	}
	newData, _ := putRandom(t, mem, "k", size, 99)

	check := func(off int64, mustFail bool) {
		t.Helper()
		n, err := r.ReadAt(ctx, buf, off)
		switch {
		case err != nil && !errors.Is(err, backend.ErrPrecondition):
			t.Errorf("ReadAt(%d): %v, want ErrPrecondition", off, err)
		case err == nil && mustFail:
			t.Errorf("ReadAt(%d) succeeded after the object changed", off)
		case err == nil && !bytes.Equal(buf[:n], data[off:off+int64(n)]):
			if bytes.Equal(buf[:n], newData[off:off+int64(n)]) {
				t.Errorf("ReadAt(%d) returned bytes of the new version", off)
			} else {
				t.Errorf("ReadAt(%d): bytes differ", off)
			}
		}
	}
	// A jump needs a new GET, which must fail; sequential reads either come
	// from what was fetched before the change or fail.
	check(512<<10, true)
	for off := int64(0); off < 256<<10; off += int64(len(buf)) {
		check(off, false)
	}
	check(900<<10, true)
}

func TestReaderFaultThenRetry(t *testing.T) {
	const size = 256 << 10
	mem := memory.New("b")
	data, obj := putRandom(t, mem, "k", size, 7)
	boom := errors.New("boom")
	var failing atomic.Bool
	mem.SetFault(func(op, key string) error {
		if op == "get" && failing.Load() {
			return boom
		}
		return nil
	})
	r := NewReader(mem, obj, smallOpts)
	t.Cleanup(func() { r.Close() })
	ctx := context.Background()
	buf := make([]byte, 4<<10)

	failing.Store(true)
	if _, err := r.ReadAt(ctx, buf, 0); !errors.Is(err, boom) {
		t.Fatalf("ReadAt with a failing GET: %v, want %v", err, boom)
	}
	// Read-ahead fetches started meanwhile fail too; let them finish first,
	// or a later read waiting on one of them rightly gets its error.
	r.fetches.Wait()
	failing.Store(false)
	// The failed chunk was not cached: the same read now succeeds, and so
	// does the whole object.
	n, err := r.ReadAt(ctx, buf, 0)
	if err != nil || !bytes.Equal(buf[:n], data[:len(buf)]) {
		t.Fatalf("retry: %d, %v", n, err)
	}
	if !bytes.Equal(readSeq(t, r, size, len(buf)), data) {
		t.Fatal("bytes differ after retry")
	}
}

func TestReaderBudget(t *testing.T) {
	const size, block = 512 << 10, 16 << 10
	t.Run("empty budget reads exactly what is asked", func(t *testing.T) {
		budget := NewBudget(0)
		opts := smallOpts
		opts.Budget = budget
		r, data, log, _ := newTestReader(t, size, opts)
		if !bytes.Equal(readSeq(t, r, size, block), data) {
			t.Fatal("bytes differ")
		}
		for _, g := range log.log() {
			if g.Length != block {
				t.Errorf("GET at %d of %d bytes, want the read's %d", g.Offset, g.Length, block)
			}
		}
		if held, peak := r.buffered(); held != 0 || peak != 0 {
			t.Errorf("buffered %d, peak %d without budget", held, peak)
		}
	})
	t.Run("readers share a small budget", func(t *testing.T) {
		budget := NewBudget(smallOpts.ChunkSize)
		opts := smallOpts
		opts.Budget = budget
		mem := memory.New("b")
		dataA, objA := putRandom(t, mem, "a", size, 1)
		dataB, objB := putRandom(t, mem, "b", size, 2)
		a, b := NewReader(mem, objA, opts), NewReader(mem, objB, opts)
		var gotA, gotB []byte
		buf := make([]byte, block)
		for off := int64(0); off < size; off += block {
			for _, x := range []struct {
				r   *Reader
				got *[]byte
			}{{a, &gotA}, {b, &gotB}} {
				n, err := x.r.ReadAt(context.Background(), buf, off)
				if err != nil {
					t.Fatalf("ReadAt(%d): %v", off, err)
				}
				*x.got = append(*x.got, buf[:n]...)
				if used := budget.inUse(); used > smallOpts.ChunkSize {
					t.Fatalf("budget: %d bytes used of %d", used, smallOpts.ChunkSize)
				}
			}
		}
		if !bytes.Equal(gotA, dataA) || !bytes.Equal(gotB, dataB) {
			t.Fatal("bytes differ")
		}
		a.Close()
		b.Close()
		if used := budget.inUse(); used != 0 {
			t.Errorf("budget: %d bytes still used after Close", used)
		}
	})
}

func TestReaderClose(t *testing.T) {
	mem := memory.New("b")
	_, obj := putRandom(t, mem, "k", 1<<20, 3)
	budget := NewBudget(1 << 30)
	log := &getLog{Bucket: mem, gate: make(chan struct{}), started: make(chan struct{}, 100)}
	r := NewReader(log, obj, ReaderOptions{Budget: budget})

	res := make(chan error, 1)
	go func() {
		_, err := r.ReadAt(context.Background(), make([]byte, 4<<10), 0)
		res <- err
	}()
	<-log.started
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err == nil {
		t.Error("ReadAt waiting on a fetch succeeded after Close")
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	before := len(log.log())
	if _, err := r.ReadAt(context.Background(), make([]byte, 10), 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("ReadAt after Close: %v, want os.ErrClosed", err)
	}
	if len(log.log()) != before {
		t.Error("ReadAt after Close sent a GET")
	}
	if held, _ := r.buffered(); held != 0 || budget.inUse() != 0 {
		t.Errorf("after Close: %d bytes buffered, %d of budget used", held, budget.inUse())
	}
}

// TestReaderCallerCancel: an interrupted read returns, but its fetch goes on
// and serves the next read without another GET.
func TestReaderCallerCancel(t *testing.T) {
	const size = 64 << 10
	mem := memory.New("b")
	data, obj := putRandom(t, mem, "k", size, 4)
	log := &getLog{Bucket: mem, gate: make(chan struct{}), started: make(chan struct{}, 100)}
	r := NewReader(log, obj, ReaderOptions{MinWindow: size, ChunkSize: size, MaxWindow: size})
	t.Cleanup(func() { r.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	buf := make([]byte, 4<<10)
	go func() {
		_, err := r.ReadAt(ctx, buf, 0)
		res <- err
	}()
	<-log.started
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted ReadAt: %v, want context.Canceled", err)
	}
	close(log.gate)
	n, err := r.ReadAt(context.Background(), buf, 0)
	if err != nil || !bytes.Equal(buf[:n], data[:len(buf)]) {
		t.Fatalf("ReadAt after interrupt: %d, %v", n, err)
	}
	if gets := len(log.log()); gets != 1 {
		t.Errorf("%d GETs, want the interrupted fetch to serve the retry", gets)
	}
}

func TestReaderEOF(t *testing.T) {
	const size = 10 << 10
	r, data, log, _ := newTestReader(t, size, smallOpts)
	for _, tc := range []struct {
		off, len int64
		want     int
	}{
		{size, 100, 0},
		{size + 1, 100, 0},
		{1 << 40, 100, 0},
		{size - 10, 100, 10},
		{0, 2 * size, size},
		{5, 0, 0},
	} {
		buf := make([]byte, tc.len)
		n, err := r.ReadAt(context.Background(), buf, tc.off)
		if n != tc.want || err != nil {
			t.Errorf("ReadAt(len %d, off %d) = %d, %v; want %d, nil", tc.len, tc.off, n, err, tc.want)
			continue
		}
		if !bytes.Equal(buf[:n], data[min(tc.off, size):min(tc.off, size)+int64(n)]) {
			t.Errorf("ReadAt(len %d, off %d): bytes differ", tc.len, tc.off)
		}
	}
	if _, err := r.ReadAt(context.Background(), make([]byte, 1), -1); !errors.Is(err, backend.ErrInvalid) {
		t.Errorf("ReadAt at -1: %v, want ErrInvalid", err)
	}

	empty := NewReader(log, backend.Object{Key: "none", Size: 0, ETag: "x"}, ReaderOptions{})
	defer empty.Close()
	before := len(log.log())
	if n, err := empty.ReadAt(context.Background(), make([]byte, 10), 0); n != 0 || err != nil {
		t.Errorf("empty object: %d, %v; want 0, nil", n, err)
	}
	if len(log.log()) != before {
		t.Error("reading an empty object sent a GET")
	}
}

// The budget tells how many readers read ahead at once (the mount sets
// its GOMAXPROCS by it): a reader counts from its first sequential read
// until it jumps or closes.
func TestBudgetCountsStreams(t *testing.T) {
	opts := smallOpts
	opts.Budget = NewBudget(1 << 20)
	var heard []int
	opts.Budget.OnStreams(func(n int) { heard = append(heard, n) })
	mem := memory.New("b")
	_, a := putRandom(t, mem, "a", 1<<20, 1)
	_, b := putRandom(t, mem, "b", 1<<20, 2)
	ra, rb := NewReader(mem, a, opts), NewReader(mem, b, opts)
	buf := make([]byte, 4<<10)
	ra.ReadAt(context.Background(), buf, 0)
	rb.ReadAt(context.Background(), buf, 0)
	ra.ReadAt(context.Background(), buf, 900<<10) // a jump
	rb.Close()
	ra.Close()
	if want := []int{1, 2, 1, 0}; !slices.Equal(heard, want) {
		t.Fatalf("heard %v, want %v", heard, want)
	}
}

// TestManyReadersStayWithinTheBudget: 64 sequential readers at once, on
// one budget, hold no more buffers together than the budget, at any
// moment, and each still reads its whole object right: a reader without
// budget fetches what it is asked instead of waiting for the others.
func TestManyReadersStayWithinTheBudget(t *testing.T) {
	const readers, size = 64, 1 << 20
	mem := memory.New("b")
	opts := smallOpts
	opts.Budget = NewBudget(8 * smallOpts.MaxWindow) // room for 8 of 64 at full window
	rs := make([]*Reader, readers)
	want := make([][]byte, readers)
	for i := range rs {
		data, obj := putRandom(t, mem, fmt.Sprintf("k%02d", i), size, uint64(i))
		rs[i], want[i] = NewReader(mem, obj, opts), data
		defer rs[i].Close()
	}
	done := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var most int64
		for {
			select {
			case <-done:
				peak <- most
				return
			default:
			}
			// One moment: every reader locked at once (a reader takes only
			// its own lock, then the budget's), else a buffer handed from
			// one reader to another between two looks counts twice.
			var sum int64
			for _, r := range rs {
				r.mu.Lock()
			}
			for _, r := range rs {
				sum += r.held
			}
			for _, r := range rs {
				r.mu.Unlock()
			}
			most = max(most, sum)
		}
	}()
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !bytes.Equal(readSeq(t, r, size, 4<<10), want[i]) {
				t.Errorf("reader %d: bytes differ", i)
			}
		}()
	}
	wg.Wait()
	close(done)
	if most, limit := <-peak, 8*smallOpts.MaxWindow; most > limit {
		t.Errorf("the readers held %d bytes of buffers together; the budget is %d", most, limit)
	}
}
