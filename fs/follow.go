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
// Every object this mount stores therefore marks the open readers of its
// key stale; a stale reader looks the key up again (the cache has what
// was just stored) before its next read or getattr.

// watchedBucket is the bucket as the filesystem's nodes use it: what they
// store is reported to stored.
type watchedBucket struct {
	backend.Bucket
	stored func(key string, content bool)
}

func (b watchedBucket) Put(ctx context.Context, in backend.PutInput) (backend.Object, error) {
	obj, err := b.Bucket.Put(ctx, in)
	if err == nil {
		b.stored(in.Key, true)
	}
	return obj, err
}

func (b watchedBucket) CompleteUpload(ctx context.Context, in backend.CompleteInput) (backend.Object, error) {
	obj, err := b.Bucket.CompleteUpload(ctx, in)
	if err == nil {
		b.stored(in.Key, true)
	}
	return obj, err
}

// Copy onto the same key and version only rewrites headers; any other copy
// brings content. A copy to another key is how a rename starts: the
// source's readers follow their file to its new name.
func (b watchedBucket) Copy(ctx context.Context, in backend.CopyInput) (backend.Object, error) {
	obj, err := b.Bucket.Copy(ctx, in)
	if err == nil {
		b.stored(in.Dst, in.Src != in.Dst || in.SrcVersionID != "")
		if in.Src != in.Dst {
			b.stored(in.Src, false)
		}
	}
	return obj, err
}

// Delete ends a rename: the source's readers look again once the node has
// its new name (until then they keep the version they read).
func (b watchedBucket) Delete(ctx context.Context, key string) error {
	err := b.Bucket.Delete(ctx, key)
	if err == nil {
		b.stored(key, false)
	}
	return err
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

// stored marks the open readers of key stale. When the content changed,
// the kernel's cached pages of the file go too (asynchronously: a
// notification sent while a read of the same file waits could deadlock).
func (f *filesystem) stored(key string, content bool) {
	f.mu.Lock()
	if len(f.readers) == 0 {
		f.mu.Unlock()
		return
	}
	readers := make([]*fileHandle, 0, len(f.readers))
	for h := range f.readers {
		readers = append(readers, h)
	}
	f.mu.Unlock()
	for _, h := range readers {
		if k, ok := h.node.key(); ok && k == key {
			h.stale.Store(true)
			if content {
				go h.node.NotifyContent(0, 0)
			}
		}
	}
}

// follow brings a stale reader to the version its key now has. A key
// without an object (the file was unlinked, or is between the two halves
// of a rename) leaves it reading what it read, and stale.
func (h *fileHandle) follow(ctx context.Context) {
	if !h.stale.CompareAndSwap(true, false) {
		return
	}
	key, ok := h.node.key()
	if !ok {
		return // unlinked: reads what it opened, as on a local disk
	}
	obj, err := h.node.fs.headers(ctx, key)
	if err != nil {
		h.stale.Store(true)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reader == nil {
		return // reads the local copy; a reader made later asks afresh
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
