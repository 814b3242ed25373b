package fs

import (
	"context"

	"github.com/bucketfs/bucketfs/backend"
)

// A descriptor open for reading reads the version it opened, so that
// another client's change never mixes two versions in one read. The
// mount's own changes are different: on a local disk a reader sees a
// chmod or another descriptor's write at once, and so it must here. The
// FUSE library even answers stat(path) with any open handle of the file
// (the kernel does not say whether a getattr is an fstat), so a handle
// stuck on its version made stat show the mode before a chmod and the
// size before a write.
//
// Every object this mount stores is therefore handed to the open readers
// it concerns, and each moves to exactly that version before its next
// read or getattr: never to one another client stored since, which would
// mix two versions in one read (a reader whose version was replaced by
// another client gets ESTALE, as documented).

// watchedBucket is the bucket as the filesystem's nodes use it: what they
// store is reported to stored, and a key's deferred delete is settled
// before anything is stored at it (tombstone.go).
type watchedBucket struct {
	backend.Bucket
	stored func(readersOf, ofVersion string, obj backend.Object, content bool)
	settle func(ctx context.Context, key string) error
}

func (b watchedBucket) Put(ctx context.Context, in backend.PutInput) (backend.Object, error) {
	if err := b.settle(ctx, in.Key); err != nil {
		return backend.Object{}, err
	}
	obj, err := b.Bucket.Put(ctx, in)
	if err == nil {
		b.stored(in.Key, "", obj, true)
	}
	return obj, err
}

func (b watchedBucket) CompleteUpload(ctx context.Context, in backend.CompleteInput) (backend.Object, error) {
	if err := b.settle(ctx, in.Key); err != nil {
		return backend.Object{}, err
	}
	obj, err := b.Bucket.CompleteUpload(ctx, in)
	if err == nil {
		b.stored(in.Key, "", obj, true)
	}
	return obj, err
}

// Copy onto the same key rewrites headers (or, from an older version,
// restores its content). A copy to another key is how a rename starts:
// the source's readers follow their file to its new name. Only readers of
// the copied version follow (a chmod may copy a version another client
// stored since they opened). The readers of a destination that a rename
// replaces keep what they read, as on a local disk.
func (b watchedBucket) Copy(ctx context.Context, in backend.CopyInput) (backend.Object, error) {
	if err := b.settle(ctx, in.Dst); err != nil {
		return backend.Object{}, err
	}
	obj, err := b.Bucket.Copy(ctx, in)
	if err == nil {
		b.stored(in.Src, in.SrcETag, obj, in.Src == in.Dst && in.SrcVersionID != "")
	}
	return obj, err
}

// addReader and dropReader keep the set of open read-only handles.
func (f *filesystem) addReader(h *fileHandle) {
	f.mu.Lock()
	f.readers[h] = struct{}{}
	f.mu.Unlock()
}

func (f *filesystem) dropReader(h *fileHandle) {
	f.mu.Lock()
	delete(f.readers, h)
	f.mu.Unlock()
}

// openReaders returns the open read-only handles, for use without f.mu.
func (f *filesystem) openReaders() []*fileHandle {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.readers) == 0 {
		return nil
	}
	readers := make([]*fileHandle, 0, len(f.readers))
	for h := range f.readers {
		readers = append(readers, h)
	}
	return readers
}

// readerOf returns an open read-only handle of n, if any.
func (f *filesystem) readerOf(n *fileNode) *fileHandle {
	f.mu.Lock()
	defer f.mu.Unlock()
	for h := range f.readers {
		if h.node == n {
			return h
		}
	}
	return nil
}

// stored hands obj to the open readers of key (of version ofVersion, if
// not ""), the content of which this mount stored. When the content changed,
// the kernel's cached pages of the file go too (asynchronously: a
// notification sent while a read of the same file waits could deadlock).
func (f *filesystem) stored(key, ofVersion string, obj backend.Object, content bool) {
	for _, h := range f.openReaders() {
		if k, ok := h.node.key(); ok && k == key {
			h.mu.Lock()
			reads := h.obj.ETag
			if h.next != nil {
				reads = h.next.ETag
			}
			follows := ofVersion == "" || reads == ofVersion
			if follows {
				h.next = &obj
			}
			h.mu.Unlock()
			if follows && content {
				go h.node.NotifyContent(0, 0)
			}
		}
	}
}

// follow moves the handle to the version this mount stored for it, once
// the node has that version's key (a renamed file's reader waits for the
// rename to finish). An unlinked file's reader reads what it opened.
func (h *fileHandle) follow(ctx context.Context) {
	h.mu.Lock()
	next := h.next
	h.mu.Unlock()
	if next == nil {
		return
	}
	if key, ok := h.node.key(); !ok || key != next.Key {
		return
	}
	obj := *next
	if !obj.HasHeaders {
		// A copy's answer has no headers; the cache, or a HEAD, has them,
		// unless another client changed the object since.
		if full, err := h.node.fs.headers(ctx, obj.Key); err == nil && full.ETag == obj.ETag {
			obj = full
		}
	}
	defer func() {
		h.node.mu.Lock()
		h.node.openedETag = obj.ETag // what the kernel caches of it, now
		h.node.mu.Unlock()
	}()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.next == next {
		h.next = nil
	}
	if h.reader == nil {
		return // reads the local copy; once it goes, what S3 got of it (openStoredLocked)
	}
	if !obj.HasHeaders {
		kept := h.obj // a rename keeps the headers
		kept.Key, kept.ETag, kept.Size, kept.VersionID = obj.Key, obj.ETag, obj.Size, obj.VersionID
		obj = kept
	}
	if obj.ETag != h.obj.ETag || obj.Key != h.obj.Key {
		// A read may still be using the old reader: it is closed at release.
		h.retired = append(h.retired, h.reader)
		h.reader = h.node.newReader(obj)
	}
	h.obj = obj // a header rewrite may keep the ETag (same content)
}

// closeReaders closes the handle's readers, at release.
func (h *fileHandle) closeReaders() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range append(h.retired, h.reader) {
		if r != nil {
			r.Close()
		}
	}
	h.retired = nil
}
