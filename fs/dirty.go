package fs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/cache"
)

// dirtyFile is a file while it is open for writing, or while it holds
// changes that an upload has not yet stored: its staged copy under
// --cache-dir and what its upload needs. It belongs to one fileNode and is
// guarded by that node's mu, except flushMu and loadMu, which serialise the
// file's uploads and its first download and are never taken while holding
// the node's mu.
type dirtyFile struct {
	flushMu sync.Mutex
	loadMu  sync.Mutex

	staged  *cache.StagedFile
	handles int    // open handles on the file
	base    string // ETag the content started from; "" for a new file
	size    int64  // the object's size while remote
	remote  bool   // the staged copy is not loaded yet: the object at base is the content
	pending bool   // must be uploaded even if no byte changed (new file, truncate, new headers)
	gone    bool   // unlinked while open: nothing is uploaded
	// broken is the error of a failed local write (a full --cache-dir):
	// the staged copy is incomplete and is never uploaded.
	broken  error
	headers fileHeaders // what the upload writes
	stream  *cache.Stream
	// streamHeaders are the headers the stream's upload starts with;
	// multipart uploads fix headers at their start.
	streamHeaders fileHeaders
	streamKey     string
	partSize      int64 // of the stream's parts
	streamedParts int64 // full parts reported to the stream
	// direct is set once a write-only descriptor opened the file: its
	// writes bypass the kernel's page cache, which then cannot be trusted
	// to hold the new content.
	direct bool
}

// writeOpenFlags are the FUSE open flags of a descriptor opened for
// writing. A write-only one writes with direct I/O: its data goes from the
// writer to the staged copy without also filling the kernel's page cache,
// which for a large file costs as much memory and more CPU than the
// staging itself, and that nobody reads through a write-only descriptor.
// Read-write descriptors keep the page cache, which mmap needs.
func writeOpenFlags(d *dirtyFile, flags uint32) uint32 {
	if flags&syscall.O_ACCMODE != syscall.O_WRONLY {
		return 0
	}
	d.direct = true
	return fuse.FOPEN_DIRECT_IO
}

// loaded fetches the object into the staged copy, once, before the first
// read or write needs it. loadMu, taken before and never under the node's
// mu, makes others wait for the first.
func (n *fileNode) loaded(ctx context.Context, d *dirtyFile) error {
	d.loadMu.Lock()
	defer d.loadMu.Unlock()
	n.mu.Lock()
	remote, size, base := d.remote, d.size, d.base
	n.mu.Unlock()
	if !remote {
		return nil
	}
	key, ok := n.key()
	if !ok {
		return notFoundErr("(unlinked)")
	}
	if size > 0 {
		body, _, err := n.fs.bucket.Get(ctx, backend.GetInput{Key: key, Length: -1, IfMatch: base})
		if err != nil {
			return err
		}
		defer body.Close()
		if err := d.staged.Fill(body); err != nil {
			return fmt.Errorf("stage %q: %w", key, err)
		}
	}
	n.mu.Lock()
	d.remote = false
	n.mu.Unlock()
	return nil
}

// contentSize is the file's size as its writers see it.
func (d *dirtyFile) contentSize() int64 {
	if d.remote {
		return d.size
	}
	return d.staged.Size()
}

// contentIsObject tells whether the file's content is still the object
// at base: not loaded yet, or loaded and not changed since. Then a change
// of headers alone is a server-side copy.
func (d *dirtyFile) contentIsObject() bool {
	return d.base != "" && (d.remote || !d.staged.Dirty())
}

// needsUpload tells whether the file holds something S3 does not.
func (d *dirtyFile) needsUpload() bool {
	return !d.gone && d.broken == nil && (d.pending || (!d.remote && d.staged.Dirty()))
}

// feedStream tells the streaming upload how far the file is final, or
// stops it once the writer is no longer sequential. Called with the node's
// mu held.
func (d *dirtyFile) feedStream() {
	if d.stream == nil {
		return
	}
	if end, ok := d.staged.Sequential(); ok {
		if parts := end / d.partSize; parts > d.streamedParts {
			// A part is complete and its upload may start now: with the
			// headers of now, the mtime above all.
			d.streamedParts = parts
			in := d.headers.putInput(d.streamKey)
			in.IfNoneMatch, in.IfMatch = d.base == "", d.base
			if d.stream.SetHeaders(in) {
				d.streamHeaders = d.headers
			}
		}
		d.stream.Written(end)
		return
	}
	d.stream.Abort()
	d.stream = nil
}

// uploadErrno maps a failed upload: a conditional write that lost means
// another client created the file (EEXIST) or changed it (ESTALE).
func (f *filesystem) uploadErrno(key string, d *dirtyFile, err error) syscall.Errno {
	if errors.Is(err, backend.ErrPrecondition) {
		f.log.Warn("upload refused: the object changed since it was opened; staged data kept",
			"key", key, "staged", d.staged.Path())
		if d.base == "" {
			return syscall.EEXIST
		}
		return syscall.ESTALE
	}
	if errors.Is(err, syscall.ENOSPC) {
		return syscall.ENOSPC
	}
	f.log.Error("upload failed; staged data kept for the next flush", "key", key, "staged", d.staged.Path(), "err", err)
	return f.errno("upload", key, err)
}

// touch records a change of content now.
func (d *dirtyFile) touch() { d.headers.mtime = time.Now() }
