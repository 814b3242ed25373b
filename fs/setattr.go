package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// truncate sets the size of a file being written. Shrinking to zero needs
// none of the old content; any other size needs it loaded.
func (n *fileNode) truncate(ctx context.Context, d *dirtyFile, size int64) syscall.Errno {
	key, _ := n.key()
	if size > 0 {
		if err := n.loaded(ctx, d); err != nil {
			return n.fs.errno("truncate", key, err)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if d.remote && size == 0 {
		d.remote = false
	}
	if err := d.staged.Truncate(size); err != nil {
		return n.fs.uploadErrno(key, d, err)
	}
	d.pending = true
	d.touch()
	d.feedStream()
	return 0
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
	return changed
}

var _ = (gofs.NodeSetattrer)((*fileNode)(nil))

// Setattr truncates through the staged copy; it changes mode, owner and
// times in the headers: at the next upload while the file is being
// written, else at once with a server-side copy (no data re-uploaded).
func (n *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	key, ok := n.key()
	if !ok {
		return syscall.ENOENT
	}
	if size, ok := in.GetSize(); ok {
		if errno := n.setSize(ctx, key, int64(size)); errno != 0 {
			return errno
		}
	}
	n.mu.Lock()
	if d := n.dirty; d != nil {
		changed := changeHeaders(&d.headers, in)
		if changed {
			d.pending = true
		}
		// Store the change now unless data waits for the writer's close
		// to go up with it.
		now := changed && (d.handles == 0 || d.contentIsObject())
		n.mu.Unlock()
		if now {
			if errno := n.flush(ctx); errno != 0 {
				return errno
			}
		}
		return n.Getattr(ctx, fh, out)
	}
	n.mu.Unlock()
	if errno := n.fs.rewriteHeaders(ctx, key, in); errno != 0 {
		return errno
	}
	return n.Getattr(ctx, nil, out)
}

// setSize truncates a file, staging it for the time it takes when it is
// not open for writing.
func (n *fileNode) setSize(ctx context.Context, key string, size int64) syscall.Errno {
	n.mu.Lock()
	d := n.dirty
	n.mu.Unlock()
	if d != nil {
		return n.truncate(ctx, d, size)
	}
	if errno := n.openForWrite(ctx, key, size == 0); errno != 0 {
		return errno
	}
	defer n.release(ctx)
	n.mu.Lock()
	d = n.dirty
	n.mu.Unlock()
	if errno := n.truncate(ctx, d, size); errno != 0 {
		return errno
	}
	return n.flush(ctx)
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
	h := f.headersOf(objectKind(obj), obj)
	h.contentType = obj.ContentType
	changed, errno := change(&h)
	if errno != 0 || !changed {
		return errno
	}
	_, err = f.bucket.Copy(ctx, h.copyInput(obj))
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
	if !ok || prefix == "" {
		return syscall.EPERM // the bucket's root has no marker to hold headers
	}
	errno := d.fs.editMarker(ctx, prefix, func(h *fileHeaders) (bool, syscall.Errno) {
		return changeHeaders(h, in), 0
	})
	if errno != 0 {
		return errno
	}
	return d.Getattr(ctx, fh, out)
}
