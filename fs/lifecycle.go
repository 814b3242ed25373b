package fs

import (
	"cmp"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/cache"
)

// The write lifecycle of a file's local copy. Every change of state is a
// method of this file or, for what an upload's outcome changes, of
// lifecycle_upload.go; the journal is written there at the transitions
// that need it.
//
//	          open for writing, create
//	(none) ───────────────────────────▶ clean ◀─────────────────────┐
//	                                      │ write, truncate,          │ an upload
//	                                      │ chmod, setxattr           │ stored it
//	                                      ▼                           │
//	                      staged ⇄ streaming ─── flush, release ──────┤
//	                         │  (full parts upload while a            │
//	                         │   sequential writer writes)            │
//	                         └─ upload failed ─▶ pending ─ retry ─────┘
//	                                            (journaled durably,
//	                                             retried in the background)
//
//	upload refused, another client changed the key ─▶ conflict: the local
//	    copy is set aside in the cache dir; the node shows what S3 has
//	unlink ─▶ gone: readable and writable through open descriptors, never
//	    uploaded
//	a local write failed (full --cache-dir) ─▶ broken: never uploaded
//	last release of a clean, gone, conflict or broken file ─▶ dropped
type writeState int

const (
	stateClean     writeState = iota // S3 has every byte and header of the file
	stateStaged                      // local changes S3 lacks, stored at the next flush
	stateStreaming                   // staged, and its full parts are uploading already
	statePending                     // an upload failed: journaled, retried in the background
	stateConflict                    // another client's version won; the copy is set aside
	stateGone                        // unlinked: kept for its descriptors, never uploaded
	stateBroken                      // a local write failed: incomplete, never uploaded
	stateDropped                     // released: the staged copy is deleted
)

var stateNames = [...]string{"clean", "staged", "streaming", "pending", "conflict", "gone", "broken", "dropped"}

func (s writeState) String() string { return stateNames[s] }

// localFile is the local copy of one file while it is open for writing or
// holds changes S3 does not have: its staged data under --cache-dir and
// what its upload needs. Its key is its own, not its node's: a pending
// file outlives its node (the kernel forgets released nodes) and even its
// mount (the next mount takes it over from the journal).
type localFile struct {
	// Dependencies.
	fs     *filesystem
	staged *cache.StagedFile
	// flushMu serialises the file's uploads and loadMu its first
	// download; neither is taken while holding mu.
	flushMu sync.Mutex
	loadMu  sync.Mutex

	// mu protects the fields below.
	mu      sync.Mutex
	state   writeState
	key     string
	handles int    // open handles that write
	base    string // ETag the content replaces; "" for a key this mount creates
	size    int64  // the object's size while remote
	remote  bool   // not loaded yet: the object at base is the content
	// edits counts changes, so an upload can tell whether it stored the
	// last one; contentEdited says the bytes differ from the object at base.
	edits         uint64
	contentEdited bool
	mtimeSet      bool        // utimes set the mtime since the last upload
	headers       fileHeaders // what the upload writes
	stream        *cache.Stream
	// streamHeaders are the headers the stream's upload starts with;
	// multipart uploads fix headers at their start.
	streamHeaders fileHeaders
	partSize      int64 // of the stream's parts
	streamedParts int64 // full parts reported to the stream
	// direct is set once a write-only descriptor opened the file: its
	// writes bypass the kernel's page cache, which then cannot be trusted
	// to hold the new content.
	direct bool
	// failure is why the file is pending, in conflict or broken; since
	// and attempts say since when and how often its upload failed.
	failure  error
	since    time.Time
	attempts int
	retryAt  time.Time
	aside    string // where a conflict copy was set aside
	// final is what S3 holds of a copy let go clean: the version its
	// readers read on in.
	final backend.Object
}

// newLocal stages key's object (obj; the zero Object if there is none),
// emptied when trunc, for one writer.
func (f *filesystem) newLocal(key string, obj backend.Object, trunc bool) (*localFile, error) {
	staged, err := f.staging.Create(key)
	if err != nil {
		return nil, err
	}
	l := &localFile{fs: f, staged: staged, key: key, handles: 1, base: obj.ETag, size: obj.Size}
	if obj.Key == "" {
		l.headers = f.newHeaders(syscall.S_IFREG|f.owner.fileMode, f.owner.uid, f.owner.gid, key)
		l.state = stateStaged // a new file is stored even if empty
	} else {
		l.headers = f.headersOf(objectKind(obj), obj)
	}
	l.remote = !trunc && obj.Size > 0
	if trunc {
		if obj.Size > 0 {
			l.edited(true)
		}
		l.headers.mtime = time.Now()
		l.headers.changed(l.headers.mtime)
		l.startStream()
	}
	return l, nil
}

// newCreated is the local copy of a file that create(2) makes.
func (f *filesystem) newCreated(key string, headers fileHeaders) (*localFile, error) {
	staged, err := f.staging.Create(key)
	if err != nil {
		return nil, err
	}
	l := &localFile{fs: f, staged: staged, key: key, handles: 1, state: stateStaged, headers: headers}
	l.startStream()
	return l, nil
}

// recovered is a pending file an earlier mount left in its journal.
func (f *filesystem) recovered(r cache.RecoveredFile) *localFile {
	put := r.Entry.Put
	obj := backend.Object{Key: put.Key, ContentType: put.ContentType, Metadata: put.Metadata, HasHeaders: true,
		StorageClass: put.StorageClass, SSE: put.SSE, SSEKMSKeyID: put.SSEKMSKeyID}
	h := f.headersOf(kindFile, obj)
	h.acl = put.ACL
	return &localFile{fs: f, staged: r.File, key: put.Key, state: statePending, base: put.IfMatch,
		headers: h, contentEdited: true, failure: errors.New(r.Entry.Reason), since: r.Entry.Since}
}

// startStream begins uploading full parts while a new or truncated file is
// written from its start. Called before l is shared. A clean file may keep
// its stream (a small file closed once, written again); it streams again
// once edited.
func (l *localFile) startStream() {
	in := l.headers.putInput(l.key)
	in.IfNoneMatch, in.IfMatch = l.base == "", l.base
	l.stream = cache.StartStream(l.fs.bucket, l.staged, in, l.uploadOptions())
	l.streamHeaders = l.headers
	l.partSize = l.fs.cfg.Upload.PartSize
	if l.partSize <= 0 {
		l.partSize = cache.DefaultPartSize
	}
	if l.state == stateStaged {
		l.state = stateStreaming
	}
}

// uploadOptions are the mount's, with the file's upload IDs journaled.
func (l *localFile) uploadOptions() cache.UploadOptions {
	opts := l.fs.cfg.Upload
	opts.OnStart = l.recordUploadID
	return opts
}

// recordUploadID journals a multipart upload as it starts, so that a mount
// that dies mid-upload leaves none the next mount does not abort.
func (l *localFile) recordUploadID(start cache.UploadStart) {
	l.mu.Lock()
	state := cache.EntryOpen
	if l.state == statePending {
		state = cache.EntryPending // a retry: still pending until it completes
	}
	e := l.entry(state)
	l.mu.Unlock()
	e.UploadID, e.UploadRequested = start.ID, start.Requested
	if err := l.staged.Record(e, false); err != nil {
		l.fs.log.Warn("journal", "key", e.Put.Key, "err", err)
	}
}

// entry is the journal's record of the file. Called with mu held.
func (l *localFile) entry(state string) cache.Entry {
	put := l.headers.putInput(l.key)
	put.IfNoneMatch, put.IfMatch, put.Size = l.base == "", l.base, 0
	e := cache.Entry{Bucket: l.fs.bucket.Name(), State: state, Put: put, Size: l.contentSize(), Since: l.since}
	if l.failure != nil {
		e.Reason = l.failure.Error()
	}
	return e
}

// keyNow is the file's key at this moment.
func (l *localFile) keyNow() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.key
}

// discard deletes a local copy nobody saw (another open won the race).
func (l *localFile) discard() {
	l.mu.Lock()
	l.state = stateDropped
	s := l.stopStream()
	l.mu.Unlock()
	abortStream(s)
	l.staged.Remove()
}

// copiedIn records that a server-side copy made the object at key this
// file's whole content, with headers: nothing is left to upload, and the
// staged copy loads the object only if a read or write comes.
func (l *localFile) copiedIn(obj backend.Object, size int64, headers fileHeaders) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.base, l.size, l.remote, l.headers = obj.ETag, size, true, headers
	l.contentEdited, l.mtimeSet = false, false
	if l.state == stateStaged || l.state == stateStreaming || l.state == statePending {
		l.state = stateClean
	}
}

// freshEmpty tells whether the file is a new or truncated empty copy, as
// a copy's destination is.
func (l *localFile) freshEmpty() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.remote && l.staged.Size() == 0 && l.needsUpload()
}

// asObject describes the file as its next upload will store it.
func (l *localFile) asObject() backend.Object {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.asObjectLocked()
}

func (l *localFile) asObjectLocked() backend.Object {
	h := l.headers
	return backend.Object{Key: l.key, Size: l.contentSize(), ETag: l.base, HasHeaders: true,
		ContentType: h.contentType, Metadata: h.metadata(), StorageClass: cmp.Or(h.storageClass, "STANDARD"),
		SSE: h.sse, SSEKMSKeyID: h.sseKMSKeyID}
}

// addHandle gives the file one more writer; false if it can have none
// (its copy was set aside or dropped).
func (l *localFile) addHandle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == stateConflict || l.state == stateDropped {
		return false
	}
	l.handles++
	return true
}

// hasWriters tells whether a descriptor open for writing holds the file.
func (l *localFile) hasWriters() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.handles > 0
}

// storedAs is the version S3 holds of a copy that was let go clean; the
// zero Object while the copy is in use, or if S3 never got it.
func (l *localFile) storedAs() backend.Object {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != stateDropped {
		return backend.Object{}
	}
	return l.final
}

// live tells whether the file's local copy is what its node shows.
func (l *localFile) live() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state != stateConflict && l.state != stateDropped
}

// unreachableProbe bounds the wait between retries while the server is
// unreachable.
const unreachableProbe = 3 * time.Second

// storable returns the errno for storing l: 0 when it can be stored or
// has nothing left to store (let go), else why it can never be stored.
func (l *localFile) storable() syscall.Errno {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == stateDropped {
		return 0 // beginUpload finds nothing to store: a dropped file never needs one
	}
	return l.writableLocked()
}

// writable returns the errno for a write to l: 0, or the reason no write
// can go there any more.
func (l *localFile) writable() syscall.Errno {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writableLocked()
}

// writableLocked is writable, called with mu held.
func (l *localFile) writableLocked() syscall.Errno {
	switch l.state {
	case stateConflict:
		return l.fs.errno("write", l.key, l.conflictErr())
	case stateDropped:
		return syscall.EBADF
	case stateBroken:
		return l.fs.errno("write", l.key, l.failure)
	}
	return 0
}

// conflictErr is why the file is in conflict: another client created its
// key (a new file) or changed the version it was based on. Called with mu
// held.
func (l *localFile) conflictErr() error {
	err := l.failure
	if err == nil {
		err = fmt.Errorf("%q: %w", l.key, backend.ErrPrecondition)
	}
	if l.base == "" {
		return nameTaken(err)
	}
	return err
}

// changeContent applies change (a write or truncate of the staged copy)
// with mu held, and records it: edited and fed to the stream, or, if the local copy
// could not take it, broken. It returns the key, for errors.
func (l *localFile) changeContent(change func(*cache.StagedFile) error) (string, error) {
	l.mu.Lock()
	err := change(l.staged)
	var abort *cache.Stream
	switch {
	case errors.Is(err, cache.ErrRefused):
		// Nothing changed: the file is as it was.
	case err != nil:
		abort = l.localWriteFailed(err)
	default:
		l.edited(true)
		abort = l.feedStream()
	}
	key := l.key
	l.mu.Unlock()
	abortStream(abort)
	return key, err
}

// edited records a change: of the bytes (content), or of headers only.
// Called with mu held.
func (l *localFile) edited(content bool) {
	l.edits++
	now := time.Now()
	if content {
		l.contentEdited = true
		l.headers.mtime = now
	}
	l.headers.changed(now)
	if l.state == stateClean {
		l.state = stateStaged
		if l.stream != nil {
			l.state = stateStreaming
		}
	}
}

// unsaved tells whether the file holds something S3 does not.
func (l *localFile) unsaved() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.needsUpload()
}

// needsUpload tells whether the file holds something S3 does not. Called
// with mu held.
func (l *localFile) needsUpload() bool {
	return l.state == stateStaged || l.state == stateStreaming || l.state == statePending
}

// contentIsObject tells whether the file's content is still the object
// at base: then a change of headers alone is a server-side copy. Called
// with mu held.
func (l *localFile) contentIsObject() bool {
	return l.base != "" && !l.contentEdited
}

// contentSize is the file's size as its writers see it. Called with mu
// held.
func (l *localFile) contentSize() int64 {
	if l.remote {
		return l.size
	}
	return l.staged.Size()
}

// feedStream tells the streaming upload how far the file is final, or
// stops it once the writer is no longer sequential. Called with mu held;
// it returns a stream to abort once mu is released (an abort waits for
// the parts in flight and asks S3).
func (l *localFile) feedStream() (abort *cache.Stream) {
	if l.stream == nil {
		return nil
	}
	if l.fs.isClosing() {
		// Shutdown aborts the streams of files still open; none starts again.
		return l.stopStream()
	}
	if end, ok := l.staged.Sequential(); ok {
		if parts := end / l.partSize; parts > l.streamedParts {
			// A part is complete and its upload may start now: with the
			// headers of now, the mtime above all.
			l.streamedParts = parts
			in := l.headers.putInput(l.key)
			in.IfNoneMatch, in.IfMatch = l.base == "", l.base
			if l.stream.SetHeaders(in) {
				l.streamHeaders = l.headers
			}
		}
		l.stream.Written(end)
		return nil
	}
	return l.stopStream()
}

// stopStream ends streaming: the file is uploaded whole at its next flush.
// Called with mu held; the caller aborts the returned stream after
// releasing mu.
func (l *localFile) stopStream() *cache.Stream {
	s := l.stream
	l.stream = nil
	if l.state == stateStreaming {
		l.state = stateStaged
	}
	return s
}

// abortStream aborts s, if any, without holding any lock.
func abortStream(s *cache.Stream) {
	if s != nil {
		s.Abort()
	}
}

// localWriteFailed records that the staged copy could not take a write:
// it is incomplete and never uploaded. Called with mu held.
func (l *localFile) localWriteFailed(err error) *cache.Stream {
	l.state, l.failure = stateBroken, err
	l.fs.log.Error("staging a write failed; the file will not be uploaded", "key", l.key, "err", err)
	return l.stopStream()
}

// errShuttingDown is why a file closed during shutdown is pending.
var errShuttingDown = fmt.Errorf("the mount is shutting down: %w", backend.ErrUnavailable)

// unlinked records that the file's name is gone: open descriptors keep
// the data, nothing is uploaded.
func (l *localFile) unlinked() {
	l.mu.Lock()
	s := l.stopStream()
	if l.state != stateConflict && l.state != stateDropped {
		l.state = stateGone
	}
	key := l.key
	l.mu.Unlock()
	l.fs.unregister(l, key)
	abortStream(s)
}

// moved records a rename of the file to key, whose object now has etag.
func (l *localFile) moved(key, etag string) {
	l.mu.Lock()
	if l.state == stateDropped {
		// Let go by a release that raced the rename: the copy S3 made is
		// the whole file, and no table entry may come back for it.
		l.mu.Unlock()
		return
	}
	old := l.key
	l.key = key
	if ct, ok := renamedContentType(l.headers.contentType, old, key); ok {
		l.headers.contentType = ct // what the next upload stores
	}
	l.headers.changed(time.Now())
	if l.base != "" || etag != "" {
		l.base = etag
	}
	s := l.stopStream() // its upload targets the old key
	if l.state == statePending {
		l.staged.Record(l.entry(cache.EntryPending), true)
	}
	l.mu.Unlock()
	l.fs.rekey(l, old)
	abortStream(s)
}

// release drops one writer and reports whether that was the last and the
// file still holds changes S3 lacks.
func (l *localFile) release() (last, unsaved bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handles--
	if l.handles == 0 && l.state == statePending {
		l.fs.wakeRetrier() // its retries were waiting for the writers
	}
	return l.handles == 0, l.handles == 0 && l.needsUpload() && l.state != statePending
}

// dropIfDone frees the local copy once no writer holds it and nothing of
// it remains to upload (readers then read S3). It reports whether it did.
// A gone file waits for its readers too (others says whether any is open).
func (l *localFile) dropIfDone(others bool) bool {
	l.mu.Lock()
	if l.handles > 0 || l.needsUpload() || l.state == stateDropped || (l.state == stateGone && others) {
		l.mu.Unlock()
		return false
	}
	prev, key, entry := l.state, l.key, l.entry(cache.EntryOpen)
	if prev == stateClean && l.contentIsObject() {
		l.final = l.asObjectLocked()
	}
	l.state = stateDropped
	s := l.stopStream()
	l.mu.Unlock()
	abortStream(s)
	switch prev {
	case stateConflict:
		l.staged.Close() // the copy stays where it was set aside
	case stateBroken:
		if path, err := l.staged.SetAside(l.fs.lostDir(), entry); err == nil {
			l.fs.log.Warn("an incomplete file was not uploaded; its staged data is kept", "key", key, "kept", path)
		}
	default:
		l.staged.Remove()
	}
	l.fs.unregister(l, key)
	return true
}
