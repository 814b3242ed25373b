package fs

import (
	"context"
	"maps"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/cache"
)

// truncate sets the size of a file being written. Shrinking to zero needs
// none of the old content; any other size needs it loaded.
func (n *fileNode) truncate(ctx context.Context, l *localFile, size int64) syscall.Errno {
	if errno := l.writable(); errno != 0 {
		return errno
	}
	if size > 0 {
		if err := l.load(ctx); err != nil {
			return n.fs.errno("truncate", l.keyNow(), err)
		}
	}
	key, err := l.changeContent(func(staged *cache.StagedFile) error {
		if size == 0 {
			l.remote = false // nothing of the object is needed
		}
		if err := staged.Truncate(size); err != nil {
			return err
		}
		if size == 0 && l.stream == nil && l.handles > 0 {
			// Written anew from the start (cp over a file truncates with
			// a setattr after opening it): stream its parts.
			l.startStream()
		}
		return nil
	})
	return n.fs.errno("truncate", key, err)
}

// changeHeaders applies a setattr's mode, owner and times to h; it reports
// whether anything changed.
func changeHeaders(h *fileHeaders, in *fuse.SetAttrIn) bool {
	changed := false
	if mode, ok := in.GetMode(); ok {
		h.mode = h.mode&syscall.S_IFMT | mode&07777
		changed = true
	}
	if uid, ok := in.GetUID(); ok {
		h.uid, changed = uid, true
	}
	if gid, ok := in.GetGID(); ok {
		h.gid, changed = gid, true
	}
	if mtime, ok := in.GetMTime(); ok {
		h.mtime, changed = mtime, true
	}
	if atime, ok := in.GetATime(); ok {
		h.atime, changed = atime, true
	}
	return changed // the store that follows moves the ctime (headers.changed)
}

var _ = (gofs.NodeSetattrer)((*fileNode)(nil))

// Setattr truncates through the staged copy; it changes mode, owner and
// times in the headers: at the next upload while the file is being
// written, else at once with a server-side copy (no data re-uploaded).
func (n *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	key, ok := n.key()
	if !ok && n.current() == nil {
		return syscall.ENOENT
	}
	if h, ok := fh.(*fileHandle); ok && h.write {
		// ftruncate, futimens (touch), fchmod: the descriptor changed the
		// file, so its close stores it.
		h.markWritten()
	}
	if size, ok := in.GetSize(); ok {
		if errno := n.setSize(ctx, key, int64(size)); errno != 0 {
			return errno
		}
	}
	_, mtimeSet := in.GetMTime()
	_, atimeSet := in.GetATime()
	readAt := n.lastRead()
	change := func(h *fileHeaders) (bool, syscall.Errno) {
		changed := changeHeaders(h, in)
		if changed && !atimeSet {
			carryRead(h, readAt) // the copy stores the atime reads gave
		}
		return changed, 0
	}
	errno, local := n.editLocalHeaders(ctx, change, mtimeSet)
	if !local {
		errno = n.rewriteHeaders(ctx, key, change)
	}
	if errno != 0 {
		return errno
	}
	return n.Getattr(ctx, fh, out)
}

// rewriteHeaders is filesystem.rewriteHeaders for a node that may have
// readers open. When another client replaced the object since they
// opened it, the change (made to what S3 has now) would show the new
// version's size on their node, cutting their reads short or padding
// them with zeros (found by the two-mount model test): it fails with
// ESTALE instead, which makes the kernel look the name up again, find the
// new version on a node of its own, and repeat the call there.
func (n *fileNode) rewriteHeaders(ctx context.Context, key string, change func(*fileHeaders) (bool, syscall.Errno)) syscall.Errno {
	obj, err := n.fs.headers(ctx, key)
	if err != nil {
		return n.fs.errno("setattr", key, err)
	}
	if n.readsOtherVersion(obj.ETag) {
		return n.fs.errno("setattr", key, errOtherVersionOpen)
	}
	// The copy is conditional on the version checked here.
	return n.fs.editHeadersOf(ctx, obj, change)
}

// editLocalHeaders applies change to the headers of the node's local file
// and stores them now unless data waits for a writer's close to go up
// with them. It reports false, doing nothing, when the file has no local
// copy.
func (n *fileNode) editLocalHeaders(ctx context.Context, change func(*fileHeaders) (bool, syscall.Errno), mtimeSet bool) (syscall.Errno, bool) {
	l := n.current()
	if l == nil {
		return 0, false
	}
	l.mu.Lock()
	// A copy: the stream's start headers share the maps.
	h := l.headers
	h.user = maps.Clone(h.user)
	changed, errno := change(&h)
	if changed && errno == 0 {
		l.headers = h
		l.edited(false)
		l.mtimeSet = l.mtimeSet || mtimeSet
	}
	now := changed && errno == 0 && (l.handles == 0 || l.contentIsObject())
	l.mu.Unlock()
	if now {
		return n.closeLocal(ctx, l), true
	}
	return errno, true
}

// setSize truncates a file, staging it for the time it takes when it is
// not open for writing.
func (n *fileNode) setSize(ctx context.Context, key string, size int64) syscall.Errno {
	if l := n.current(); l != nil {
		if errno := n.truncate(ctx, l, size); errno != 0 || l.hasWriters() {
			return errno
		}
		// No writer will close it: a copy the last upload just stored
		// (not yet let go) or a pending one must store this change too.
		return n.closeLocal(ctx, l)
	}
	l, errno := n.openForWrite(ctx, key, size == 0)
	if errno != 0 {
		return errno
	}
	defer n.releaseWriter(ctx, l)
	if errno := n.truncate(ctx, l, size); errno != 0 {
		return errno
	}
	return n.flushLocal(ctx, l)
}

// rewriteHeaders changes an object's headers in place with a server-side
// copy onto itself (S3's REPLACE directive), conditional on its version.
func (f *filesystem) rewriteHeaders(ctx context.Context, key string, in *fuse.SetAttrIn) syscall.Errno {
	return f.editHeaders(ctx, key, func(h *fileHeaders) (bool, syscall.Errno) {
		return changeHeaders(h, in), 0
	})
}

// editHeaders applies change to key's headers and stores them with a
// server-side copy when it reports a change.
func (f *filesystem) editHeaders(ctx context.Context, key string, change func(*fileHeaders) (bool, syscall.Errno)) syscall.Errno {
	obj, err := f.headers(ctx, key)
	if err != nil {
		return f.errno("setattr", key, err)
	}
	return f.editHeadersOf(ctx, obj, change)
}

// editHeadersOf is editHeaders of the version obj (with its headers).
func (f *filesystem) editHeadersOf(ctx context.Context, obj backend.Object, change func(*fileHeaders) (bool, syscall.Errno)) syscall.Errno {
	key := obj.Key
	h := f.headersOf(objectKind(obj), obj)
	h.contentType = obj.ContentType
	changed, errno := change(&h)
	if errno != 0 || !changed {
		return errno
	}
	h.changed(time.Now()) // a chmod's, a touch's, a setxattr's
	_, err := f.bucket.Copy(ctx, h.copyInput(obj))
	return f.errno("setattr", key, err)
}

var _ = (gofs.NodeSetattrer)((*symlinkNode)(nil))

func (n *symlinkNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	key, ok := n.key()
	if !ok {
		return syscall.ENOENT
	}
	if errno := n.fs.rewriteHeaders(ctx, key, in); errno != 0 {
		return errno
	}
	return n.Getattr(ctx, fh, out)
}

var _ = (gofs.NodeSetattrer)((*dirNode)(nil))

// Setattr of a directory rewrites its marker, creating one for an implicit
// directory so the new mode or owner has somewhere to live.
func (d *dirNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	prefix, ok := d.prefix()
	if !ok {
		return syscall.ENOENT
	}
	if prefix == "" {
		// A bucket's root has no marker object to hold headers: the mount
		// keeps them while it lasts.
		f := d.fs
		f.mu.Lock()
		h := f.headersOf(kindDir, f.rootMarker)
		if changeHeaders(&h, in) {
			h.changed(time.Now())
			f.rootMarker = backend.Object{HasHeaders: true, Metadata: h.metadata()}
		}
		f.mu.Unlock()
		return d.Getattr(ctx, fh, out)
	}
	errno := d.fs.editMarker(ctx, prefix, func(h *fileHeaders) (bool, syscall.Errno) {
		return changeHeaders(h, in), 0
	})
	if errno != 0 {
		return errno
	}
	return d.Getattr(ctx, fh, out)
}
