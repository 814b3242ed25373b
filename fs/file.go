package fs

import (
	"context"
	"fmt"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/cache"
)

// fileNode is a regular file (or a FIFO or socket): the object at its key.
type fileNode struct {
	gofs.Inode
	fs       *filesystem
	shadowed bool // shown as NAME.__file__ because a directory NAME/ exists

	// mu protects the fields below.
	mu sync.Mutex
	// openedETag is the version the last open saw: the kernel may keep its
	// page cache across opens only while the ETag stays the same.
	openedETag string
	dirty      *dirtyFile // while open for writing or holding unsaved changes
}

func (n *fileNode) key() (string, bool) { return n.fs.fileKey(&n.Inode, n.shadowed) }

func notFoundErr(key string) error {
	return fmt.Errorf("%q: %w", key, backend.ErrNotFound)
}

var _ = (gofs.NodeGetattrer)((*fileNode)(nil))

func (n *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.mu.Lock()
	if d := n.dirty; d != nil {
		n.fs.dirtyAttr(d, &out.Attr)
		n.mu.Unlock()
		return 0
	}
	n.mu.Unlock()
	if h, ok := fh.(*fileHandle); ok {
		if obj, ok := h.object(); ok {
			// An open file shows the version it reads.
			n.fs.owner.attrOf(objectKind(obj), obj, &out.Attr)
			return 0
		}
	}
	key, ok := n.key()
	if !ok {
		return syscall.ENOENT
	}
	obj, err := n.fs.bucket.Head(ctx, key)
	if err != nil {
		return n.fs.errno("getattr", key, err)
	}
	n.fs.owner.attrOf(objectKind(obj), obj, &out.Attr)
	return 0
}

// dirtyAttr fills the attributes of a file being written.
func (f *filesystem) dirtyAttr(d *dirtyFile, out *fuse.Attr) {
	h := d.headers
	out.Mode = h.mode
	out.Owner = fuse.Owner{Uid: h.uid, Gid: h.gid}
	out.Nlink = 1
	out.Size = uint64(d.contentSize())
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 4096
	out.SetTimes(nil, &h.mtime, &h.mtime)
}

var _ = (gofs.NodeOpener)((*fileNode)(nil))

func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	key, ok := n.key()
	if !ok {
		return nil, 0, syscall.ENOENT
	}
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		if errno := n.openForWrite(ctx, key, flags&syscall.O_TRUNC != 0); errno != 0 {
			return nil, 0, errno
		}
		n.mu.Lock()
		fuseFlags := writeOpenFlags(n.dirty, flags)
		n.mu.Unlock()
		return &fileHandle{node: n, write: true}, fuseFlags, 0
	}
	n.mu.Lock()
	staged := n.dirty != nil
	n.mu.Unlock()
	if staged {
		// Reads come from the staged copy that writers share.
		return &fileHandle{node: n}, 0, 0
	}
	obj, err := n.fs.bucket.Head(ctx, key)
	if err != nil {
		return nil, 0, n.fs.errno("open", key, err)
	}
	var fuseFlags uint32
	n.mu.Lock()
	if n.openedETag == obj.ETag {
		fuseFlags |= fuse.FOPEN_KEEP_CACHE
	}
	n.openedETag = obj.ETag
	n.mu.Unlock()
	return &fileHandle{node: n, obj: obj, reader: n.newReader(obj)}, fuseFlags, 0
}

// newReader reads obj with the mount's read-ahead window and memory budget.
func (n *fileNode) newReader(obj backend.Object) *cache.Reader {
	return cache.NewReader(n.fs.bucket, obj, cache.ReaderOptions{
		MaxWindow: n.fs.cfg.ReadAhead,
		Budget:    n.fs.cfg.ReadBudget,
	})
}

// openForWrite gives the node a dirty state, or one more handle on it. The
// content is fetched only when a read or write needs it.
func (n *fileNode) openForWrite(ctx context.Context, key string, trunc bool) syscall.Errno {
	n.mu.Lock()
	if d := n.dirty; d != nil {
		d.handles++
		n.mu.Unlock()
		if trunc {
			return n.truncate(ctx, d, 0)
		}
		return 0
	}
	n.mu.Unlock()

	obj, err := n.fs.headers(ctx, key)
	if err != nil && !isNotFound(err) {
		return n.fs.errno("open", key, err)
	}
	d, err := n.fs.newDirty(key, obj, trunc)
	if err != nil {
		return n.fs.errno("open", key, err)
	}
	n.mu.Lock()
	if winner := n.dirty; winner != nil { // another open won the race
		winner.handles++
		n.mu.Unlock()
		d.staged.Remove()
		if trunc {
			return n.truncate(ctx, winner, 0)
		}
		return 0
	}
	n.dirty = d
	n.mu.Unlock()
	n.fs.track(n, true)
	return 0
}

// newDirty stages key's object (obj; the zero Object if there is none).
func (f *filesystem) newDirty(key string, obj backend.Object, trunc bool) (*dirtyFile, error) {
	staged, err := f.staging.Create(key)
	if err != nil {
		return nil, err
	}
	d := &dirtyFile{staged: staged, handles: 1, base: obj.ETag, size: obj.Size}
	if obj.Key == "" {
		d.headers = f.newHeaders(syscall.S_IFREG|f.owner.fileMode, f.owner.uid, f.owner.gid, key)
		d.pending = true
	} else {
		d.headers = f.headersOf(objectKind(obj), obj)
	}
	d.remote = !trunc && obj.Size > 0
	if trunc {
		d.pending = d.pending || obj.Size > 0
		if obj.Size > 0 {
			// Empty already; this records that it differs from the object.
			if err := staged.Truncate(0); err != nil {
				staged.Remove()
				return nil, err
			}
		}
		d.touch()
		f.startStream(key, d)
	}
	return d, nil
}

// startStream begins uploading full parts while a new or truncated file is
// written from its start.
func (f *filesystem) startStream(key string, d *dirtyFile) {
	in := d.headers.putInput(key)
	in.IfNoneMatch, in.IfMatch = d.base == "", d.base
	d.stream = cache.StartStream(f.bucket, d.staged, in, f.cfg.Upload)
	d.streamHeaders, d.streamKey = d.headers, key
	d.partSize = f.cfg.Upload.PartSize
	if d.partSize <= 0 {
		d.partSize = cache.DefaultPartSize
	}
}

// fileHandle is an open file. Reads come from the staged copy while the
// file has one, else from S3, conditional on the ETag seen at open.
type fileHandle struct {
	node  *fileNode
	write bool

	// mu guards obj and reader. A handle opened while the file was staged
	// has neither until a read finds the staged copy gone (stored and
	// dropped after the last writer closed): it then reads the object.
	mu     sync.Mutex
	obj    backend.Object
	reader *cache.Reader
}

// object is the version the handle reads from S3, if it reads from S3.
func (h *fileHandle) object() (backend.Object, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.obj, h.reader != nil
}

// objectReader is the handle's reader of the object, made on first use by
// a handle opened while the file was staged.
func (h *fileHandle) objectReader(ctx context.Context) (*cache.Reader, backend.Object, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reader == nil {
		key, ok := h.node.key()
		if !ok {
			return nil, backend.Object{}, notFoundErr("(unlinked)")
		}
		obj, err := h.node.fs.bucket.Head(ctx, key)
		if err != nil {
			return nil, backend.Object{Key: key}, err
		}
		h.obj, h.reader = obj, h.node.newReader(obj)
	}
	return h.reader, h.obj, nil
}

var _ = (gofs.FileReader)((*fileHandle)(nil))

func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n := h.node
	n.mu.Lock()
	d := n.dirty
	n.mu.Unlock()
	if d != nil {
		key, _ := n.key()
		if err := n.loaded(ctx, d); err != nil {
			return nil, n.fs.errno("read", key, err)
		}
		got, err := d.staged.ReadAt(dest, off)
		if err != nil && got == 0 && off < d.staged.Size() {
			return nil, n.fs.errno("read", key, err)
		}
		return fuse.ReadResultData(dest[:got]), 0
	}
	reader, obj, err := h.objectReader(ctx)
	if err != nil {
		return nil, n.fs.errno("read", obj.Key, err)
	}
	got, err := reader.ReadAt(ctx, dest, off)
	if err != nil {
		return nil, n.fs.errno("read", obj.Key, err)
	}
	return fuse.ReadResultData(dest[:got]), 0
}

var _ = (gofs.FileWriter)((*fileHandle)(nil))

func (h *fileHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n := h.node
	n.mu.Lock()
	d := n.dirty
	n.mu.Unlock()
	if d == nil || !h.write {
		return 0, syscall.EBADF
	}
	key, _ := n.key()
	if err := n.loaded(ctx, d); err != nil {
		return 0, n.fs.errno("write", key, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	written, err := d.staged.WriteAt(data, off)
	if err != nil {
		d.broken = err
		n.fs.log.Error("staging a write failed; the file will not be uploaded", "key", key, "err", err)
		return uint32(written), n.fs.errno("write", key, err)
	}
	d.touch()
	d.feedStream()
	return uint32(written), 0
}

var _ = (gofs.FileFlusher)((*fileHandle)(nil))

// Flush runs at every close(2): the upload happens here, and close returns
// only once S3 has the object.
func (h *fileHandle) Flush(ctx context.Context) syscall.Errno {
	if !h.write {
		return 0
	}
	return h.node.flush(ctx)
}

var _ = (gofs.FileFsyncer)((*fileHandle)(nil))

func (h *fileHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return h.node.flush(ctx)
}

var _ = (gofs.FileReleaser)((*fileHandle)(nil))

func (h *fileHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	if h.reader != nil {
		h.reader.Close()
	}
	h.mu.Unlock()
	if h.write {
		h.node.release(ctx)
	}
	return 0
}

// flush uploads the file if it holds changes S3 does not have.
func (n *fileNode) flush(ctx context.Context) syscall.Errno {
	n.mu.Lock()
	d := n.dirty
	n.mu.Unlock()
	if d == nil {
		return 0
	}
	if !n.fs.beginFlush() {
		return syscall.EIO // shutting down: the data stays staged
	}
	defer n.fs.flushes.Done()
	d.flushMu.Lock()
	defer d.flushMu.Unlock()

	n.mu.Lock()
	key, ok := n.key()
	if d.broken != nil {
		n.mu.Unlock()
		return n.fs.errno("flush", key, d.broken)
	}
	if !ok || !d.needsUpload() {
		n.mu.Unlock()
		return 0
	}
	gen := d.staged.Version()
	headers, base, size := d.headers, d.base, d.contentSize()
	headersOnly := d.contentIsObject() // a server-side copy will do
	stream := d.stream
	// A close before the first full part (a shell's `cmd > file` closes a
	// duplicate of the descriptor before anything is written) leaves the
	// stream to the writes that may follow: nothing of it is uploaded yet,
	// and a Put stores what there is now.
	keepStream := stream != nil && size < d.partSize
	if keepStream {
		stream = nil
	} else {
		d.stream = nil
	}
	n.mu.Unlock()

	in := headers.putInput(key)
	in.IfNoneMatch, in.IfMatch = base == "", base
	var obj backend.Object
	var err error
	switch {
	case headersOnly:
		// The content is still the object's: only headers changed.
		obj, err = n.fs.bucket.Copy(ctx, headers.copyInput(backend.Object{Key: key, ETag: base, Size: size}))
	case stream != nil:
		fixed := !stream.SetHeaders(in)
		if fixed {
			// The multipart upload started with the headers of that time,
			// and S3 keeps them. Its mtime stands (the writer's later writes
			// moved it by at most the upload's time): correcting it would
			// copy the whole object again. Other changes are worth a copy.
			headers.mtime = d.streamHeaders.mtime
		}
		obj, err = stream.Finish(ctx, size)
		if err == nil && fixed && !sameHeaders(headers, d.streamHeaders) {
			obj, err = n.fs.bucket.Copy(ctx, headers.copyInput(backend.Object{Key: key, ETag: obj.ETag, Size: size}))
		}
		if err == nil && fixed {
			n.mu.Lock()
			d.headers.mtime = headers.mtime // what S3 now says
			n.mu.Unlock()
		}
	default:
		obj, err = cache.Upload(ctx, n.fs.bucket, d.staged, size, in, n.fs.cfg.Upload)
	}
	if err != nil {
		return n.fs.uploadErrno(key, d, err)
	}
	n.mu.Lock()
	d.base, d.pending = obj.ETag, false
	d.staged.MarkClean(gen)
	n.openedETag = obj.ETag
	if d.direct {
		// Direct writes left the kernel's cache out: the next open drops it.
		n.openedETag = ""
	}
	n.mu.Unlock()
	return 0
}

func sameHeaders(a, b fileHeaders) bool {
	am, bm := a.metadata(), b.metadata()
	if a.contentType != b.contentType || a.storageClass != b.storageClass || a.sse != b.sse ||
		a.sseKMSKeyID != b.sseKMSKeyID || len(am) != len(bm) {
		return false
	}
	for k, v := range am {
		if bm[k] != v {
			return false
		}
	}
	return true
}

// release drops a writer. The last one stores what is still pending (a
// chmod that came between the last close's upload and this release, say),
// then frees the staged copy, unless an upload failed to store it.
func (n *fileNode) release(ctx context.Context) {
	n.mu.Lock()
	d := n.dirty
	if d == nil {
		n.mu.Unlock()
		return
	}
	d.handles--
	last := d.handles == 0
	pending := last && d.needsUpload()
	n.mu.Unlock()
	if !last {
		return
	}
	if pending && n.flush(ctx) != 0 {
		return // flush logged where the data stays
	}
	if n.dropClean() {
		n.fs.track(n, false) // the filesystem's lock is never taken under a node's
	}
}

// dropClean frees the dirty state of a file no handle holds and S3 has in
// full; it reports whether it did.
func (n *fileNode) dropClean() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.dirty
	if d == nil || d.handles > 0 {
		return false
	}
	if d.needsUpload() {
		n.fs.log.Warn("file closed with changes S3 does not have; staged data kept", "staged", d.staged.Path())
		return false
	}
	if d.stream != nil {
		d.stream.Abort()
	}
	d.staged.Remove()
	n.dirty = nil
	return true
}
