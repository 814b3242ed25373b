package cache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/bucketfs/bucketfs/backend"
)

// Lock order of uploads: Stream.mu is a leaf; StagedFile.mu is taken only by
// reads of the source, never while holding Stream.mu.

const (
	// DefaultPartSize is the part size when none is configured.
	DefaultPartSize    = 8 << 20
	defaultConcurrency = 8
	maxParts           = 10000 // S3's limit on the parts of one upload
	// abortTimeout bounds the abort of a failed upload, which must run even
	// when the caller's context is already done.
	abortTimeout = 30 * time.Second
)

// errStreamClosed is returned by Finish on a stream already aborted or
// finished.
var errStreamClosed = errors.New("upload stream already closed")

// UploadOptions tune uploads. Zero values take the defaults.
type UploadOptions struct {
	PartSize    int64        // --part-size, default 8 MiB; grown so a file never needs more than 10,000 parts
	Concurrency int          // --upload-concurrency, default 8 parts in flight
	Logger      *slog.Logger // where a failed abort is reported; slog.Default() when nil
	// OnStart, if set, is told of each multipart upload twice: just before
	// its start is requested (no ID yet) and once S3 answered with its ID,
	// so that whoever outlives a crash at either moment can abort it.
	OnStart func(UploadStart)
}

// UploadStart is what a journal records of a multipart upload's start.
type UploadStart struct {
	Requested time.Time // the upload may exist from then on
	ID        string    // "" until S3 answered
}

func (o UploadOptions) withDefaults() UploadOptions {
	if o.PartSize <= 0 {
		o.PartSize = DefaultPartSize
	}
	if o.Concurrency <= 0 {
		o.Concurrency = defaultConcurrency
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// partSizeFor grows partSize just enough that size fits in maxParts parts.
func partSizeFor(partSize, size int64) int64 {
	return max(partSize, (size+maxParts-1)/maxParts)
}

// Upload stores size bytes of src as in.Key with in's headers and conditions
// (in.Body and in.Size are ignored) and returns the stored object. Below one
// part it is one Put; above, a multipart upload with up to opts.Concurrency
// parts in flight, each read from src through its own io.SectionReader. Any
// error, or ctx being done, aborts the upload.
func Upload(ctx context.Context, b backend.Bucket, src io.ReaderAt, size int64, in backend.PutInput, opts UploadOptions) (backend.Object, error) {
	opts = opts.withDefaults()
	opts.PartSize = partSizeFor(opts.PartSize, size)
	// An upload whose size is known is a stream whose writer is done.
	return StartStream(b, src, in, opts).Finish(ctx, size)
}

// Stream uploads the parts of a file while it is being written sequentially,
// so that closing it waits only for the tail. Its part size is fixed at the
// start; the multipart upload starts with the first full part, so a small
// file costs a single Put.
//
// A file that grows past 10,000 parts cannot be streamed: the stream then
// drops its parts, and Finish uploads the whole file again with a grown part
// size (at 8 MiB parts this happens only above 78 GiB).
//
// Every stream ends with Finish or Abort, which release its goroutines.
type Stream struct {
	// Dependencies and constants.
	b        backend.Bucket
	src      io.ReaderAt
	in       backend.PutInput
	opts     UploadOptions
	ctx      context.Context // cancelled by Abort, or when Finish's ctx is done
	cancel   context.CancelFunc
	partsCtx context.Context // cancelled also when the queued parts are dropped
	dropAll  context.CancelFunc
	start    func() (string, error) // StartUpload, once
	onStart  func(UploadStart)      // told of the start before and after
	workers  sync.WaitGroup

	// mu protects the fields below.
	mu       sync.Mutex
	ready    int   // parts 1..ready may be uploaded
	next     int   // parts 1..next have been taken by a worker
	running  int   // workers running
	final    int64 // the file's size once Finish knows it, else -1
	overflow bool  // the file outgrew maxParts parts
	closed   bool  // Finish or Abort was called: no worker starts
	started  bool  // start was called: the upload may exist
	aborted  bool  // the upload was aborted or completed
	err      error // first failure of a part
	parts    map[int]uploadedPart
}

type uploadedPart struct {
	etag string
	size int64
}

// StartStream prepares the upload of src as in.Key; nothing is sent until
// Written reports a full part, or Finish.
func StartStream(b backend.Bucket, src io.ReaderAt, in backend.PutInput, opts UploadOptions) *Stream {
	s := &Stream{b: b, src: src, in: in, opts: opts.withDefaults(), final: -1, parts: map[int]uploadedPart{},
		onStart: opts.OnStart}
	s.in.Body, s.in.Size = nil, 0
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.partsCtx, s.dropAll = context.WithCancel(s.ctx)
	s.start = sync.OnceValues(func() (string, error) {
		s.mu.Lock()
		in, onStart := s.in, s.onStart
		s.mu.Unlock()
		start := UploadStart{Requested: time.Now()}
		if onStart != nil {
			onStart(start)
		}
		id, err := b.StartUpload(s.partsCtx, in)
		if err == nil && onStart != nil {
			start.ID = id
			onStart(start)
		}
		return id, err
	})
	return s
}

// SetHeaders replaces the headers and conditions the object is stored
// with. The conditions always take: they apply when the upload completes.
// It reports false when a multipart upload has already started: S3 fixed
// its headers then, and they stay.
func (s *Stream) SetHeaders(in backend.PutInput) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.in.IfNoneMatch, s.in.IfMatch = in.IfNoneMatch, in.IfMatch
	if s.started {
		return false
	}
	in.Body, in.Size = nil, 0
	s.in = in
	return true
}

// Written tells the stream that bytes [0, n) of src are final. Every full
// part below n is queued and uploaded in the background; Written never waits.
func (s *Stream) Written(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.overflow {
		return
	}
	if n > s.opts.PartSize*maxParts {
		s.overflow = true
		s.dropAll() // Finish starts over with bigger parts
		return
	}
	s.ready = max(s.ready, int(n/s.opts.PartSize))
	s.spawn()
}

// spawn starts workers for the ready parts, up to the concurrency. Called
// with s.mu held.
func (s *Stream) spawn() {
	for s.running < s.opts.Concurrency && s.next < s.ready && s.err == nil {
		s.running++
		s.workers.Add(1)
		go s.work()
	}
}

// work uploads ready parts until there are none.
func (s *Stream) work() {
	defer s.workers.Done()
	for {
		s.mu.Lock()
		if s.next >= s.ready || s.err != nil || s.partsCtx.Err() != nil {
			s.running--
			s.mu.Unlock()
			return
		}
		s.next++
		number := s.next
		off := int64(number-1) * s.opts.PartSize
		size := s.opts.PartSize
		if s.final >= 0 {
			size = min(size, s.final-off)
		}
		s.started = true
		s.mu.Unlock()

		etag, err := s.uploadPart(number, off, size)
		s.mu.Lock()
		if err != nil && s.err == nil && s.partsCtx.Err() == nil {
			s.err = err
			s.dropAll() // the upload is lost: stop the other parts
		}
		if err == nil {
			s.parts[number] = uploadedPart{etag: etag, size: size}
		}
		s.mu.Unlock()
		if st, ok := s.src.(storedNotifier); ok && err == nil {
			st.Stored(off, size)
		}
	}
}

// storedNotifier is a source that can free what is safely uploaded: a
// StagedFile drops the part's pages from memory.
type storedNotifier interface {
	Stored(off, n int64)
}

func (s *Stream) uploadPart(number int, off, size int64) (string, error) {
	id, err := s.start()
	if err != nil {
		return "", err
	}
	return s.b.UploadPart(s.partsCtx, backend.PartInput{Key: s.in.Key, UploadID: id, Number: number,
		Body: io.NewSectionReader(s.src, off, size), Size: size})
}

// Finish uploads what is left of the file, size bytes in all, and completes
// the upload with the stream's conditions. A file below one part is stored
// with a single Put instead. On any error the upload is aborted and the error
// returned; the stream is over either way.
func (s *Stream) Finish(ctx context.Context, size int64) (backend.Object, error) {
	defer s.cancel()
	defer context.AfterFunc(ctx, s.cancel)()
	ps := s.opts.PartSize
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return backend.Object{}, fmt.Errorf("upload %q: %w", s.in.Key, errStreamClosed)
	}
	s.closed = true
	whole := size < ps || size > ps*maxParts || s.overflow
	if !whole {
		s.final = size
		s.ready = int((size + ps - 1) / ps)
		s.spawn()
	}
	s.mu.Unlock()

	if whole {
		// Whatever was streamed is of no use: drop it.
		s.dropAll()
		s.workers.Wait()
		s.abort()
		var obj backend.Object
		var err error
		if size < ps {
			in := s.in
			in.Body, in.Size = io.NewSectionReader(s.src, 0, size), size
			obj, err = s.b.Put(s.ctx, in)
		} else {
			opts := s.opts
			opts.PartSize = partSizeFor(ps, size)
			obj, err = Upload(s.ctx, s.b, s.src, size, s.in, opts)
		}
		return s.result(ctx, obj, err)
	}

	s.workers.Wait()
	obj, err := s.complete(ctx, size)
	if err != nil {
		s.abort()
	}
	return s.result(ctx, obj, err)
}

// complete checks that the parts add up to size and assembles them.
func (s *Stream) complete(ctx context.Context, size int64) (backend.Object, error) {
	s.mu.Lock()
	// ctx is checked itself: it reaches s.ctx only through AfterFunc's
	// goroutine, which may not have run yet.
	err := cmp.Or(s.err, ctx.Err(), s.ctx.Err())
	parts := make([]backend.Part, s.ready)
	var sum int64
	for i := range parts {
		p, ok := s.parts[i+1]
		if !ok && err == nil {
			err = fmt.Errorf("upload %q: part %d missing", s.in.Key, i+1)
		}
		parts[i] = backend.Part{Number: i + 1, ETag: p.etag}
		sum += p.size
	}
	s.mu.Unlock()
	if err == nil && sum != size {
		err = fmt.Errorf("upload %q: parts hold %d bytes, want %d", s.in.Key, sum, size)
	}
	if err != nil {
		return backend.Object{}, err
	}
	id, _ := s.start() // a part succeeded, so this is the upload's ID
	s.mu.Lock()
	in := backend.CompleteInput{Key: s.in.Key, UploadID: id, Parts: parts, Size: size, Headers: s.in,
		IfNoneMatch: s.in.IfNoneMatch, IfMatch: s.in.IfMatch}
	s.mu.Unlock()
	obj, err := s.b.CompleteUpload(s.ctx, in)
	if err == nil {
		s.mu.Lock()
		s.aborted = true // completed: nothing left to abort
		s.mu.Unlock()
	}
	return obj, err
}

// result prefers the caller's context error to the stream's own.
func (s *Stream) result(ctx context.Context, obj backend.Object, err error) (backend.Object, error) {
	if err != nil && ctx.Err() != nil {
		return backend.Object{}, fmt.Errorf("upload %q: %w", s.in.Key, ctx.Err())
	}
	return obj, err
}

// Abort cancels the stream and discards the upload, for a writer that
// stopped being sequential or a file abandoned. It may be called at any
// time, more than once; it returns when no part is in flight.
func (s *Stream) Abort() {
	s.mu.Lock()
	s.closed = true
	cut := s.running > 0 // parts whose requests the cancel cuts
	s.mu.Unlock()
	s.cancel()
	s.workers.Wait()
	s.abort()
	if cut {
		s.abortAgain()
	}
}

// abort discards the multipart upload if one was started and is still open.
// Workers must have stopped.
func (s *Stream) abort() {
	s.mu.Lock()
	open := s.started && !s.aborted
	s.aborted = true
	s.mu.Unlock()
	if !open {
		return
	}
	id, err := s.start()
	if err != nil {
		return // never started
	}
	// The stream's context may be done; the abort must still reach S3, or
	// the parts are billed until a lifecycle rule removes them.
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	if err := s.b.AbortUpload(ctx, s.in.Key, id); err != nil {
		s.opts.Logger.Warn("abort multipart upload", "key", s.in.Key, "upload", id, "err", err)
	}
}

// abortAgain repeats the abort of an upload whose parts were cut in
// flight: the server may still write such a part after the abort and
// bring the upload back (versitygw does, found by the SIGTERM tests; S3
// documents that an abort may have to be repeated). It stops once the
// server no longer knows the upload.
func (s *Stream) abortAgain() {
	id, err := s.start()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	for attempt := 1; attempt <= abortRepeats; attempt++ {
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		if err := s.b.AbortUpload(ctx, s.in.Key, id); err != nil {
			return // NoSuchUpload: gone for good (or the server is gone)
		}
	}
}

// abortRepeats bounds the repeats of an abort that keeps succeeding.
const abortRepeats = 3
