package fs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/cache"
)

// fileNode is a regular file (or a FIFO or socket): the object at its key,
// or the local copy this mount holds of it.
type fileNode struct {
	gofs.Inode
	fs       *filesystem
	shadowed bool // shown as NAME.__file__ because a directory NAME/ exists

	// mu protects the fields below.
	mu sync.Mutex
	// openedETag is the version the last open saw: the kernel may keep its
	// page cache across opens only while the ETag stays the same.
	openedETag string
	local      *localFile // while open for writing or holding unsaved changes
	opens      int        // open handles, readers included
	pushedETag string     // the version pushed to the kernel's page cache (pagecache.go)
	// passthroughs counts the open handles whose reads the kernel serves
	// from a local copy itself (passthrough.go).
	passthroughs int
	noPush       bool      // opened for writing once: its pages are the writers'
	readAt       time.Time // the atime reads gave it, in memory (atime.go)
	unlinked     bool      // its name was removed or renamed over: nlink 0

	// pushMu is held across each piece pushed to the kernel's page cache,
	// so that stopPushes can wait for the last one.
	pushMu sync.Mutex
}

func (n *fileNode) key() (string, bool) { return n.fs.fileKey(&n.Inode, n.shadowed) }

func notFoundErr(key string) error {
	return fmt.Errorf("%q: %w", key, backend.ErrNotFound)
}

// current is the node's live local file, or nil. A local copy that was set
// aside (conflict) or dropped is let go: the node then shows S3.
func (n *fileNode) current() *localFile {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.currentLocked()
}

func (n *fileNode) currentLocked() *localFile {
	if l := n.local; l != nil && !l.live() {
		n.local = nil
	}
	return n.local
}

// attach makes l the node's local file unless it has a live one.
func (n *fileNode) attach(l *localFile) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.currentLocked() == nil {
		n.local = l
	}
}

var _ = (gofs.NodeGetattrer)((*fileNode)(nil))

func (n *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	errno := n.getattr(ctx, fh, out)
	n.showInMemory(&out.Attr)
	return errno
}

// markUnlinked records that the node lost its name: its descriptors show
// nlink 0, as on a local disk.
func (n *fileNode) markUnlinked() {
	n.mu.Lock()
	n.unlinked = true
	n.mu.Unlock()
}

func (n *fileNode) getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if l := n.current(); l != nil {
		l.attr(&out.Attr)
		return 0
	}
	if fh == nil && n.isOpen() {
		// The attributes the kernel keeps for the node must be those of
		// the version its readers read (see readsOtherVersion), also when
		// a setattr asks.
		if h := n.fs.readerOf(n); h != nil {
			fh = h
		}
	}
	if h, ok := asFileHandle(fh); ok {
		h.follow(ctx)
		if obj, ok := h.object(); ok {
			// An open file shows the version it reads, with the headers
			// its reads brought when it was opened from a listing.
			if !obj.HasHeaders {
				if c, err := n.fs.bucket.Head(ctx, obj.Key); err == nil && c.HasHeaders && c.ETag == obj.ETag {
					obj = c
				}
			}
			n.fs.owner.attrOf(objectKind(obj), obj, &out.Attr)
			return 0
		}
	}
	key, ok := n.key()
	if !ok {
		return syscall.ENOENT
	}
	// With headers, where they may say more than a listing of the mode,
	// the owner or the mtime.
	obj, err := n.fs.shownHeaders(ctx, key)
	if err != nil {
		return n.fs.errno("getattr", key, err)
	}
	n.fs.owner.attrOf(objectKind(obj), obj, &out.Attr)
	return 0
}

// attr fills the attributes of a file this mount holds locally.
func (l *localFile) attr(out *fuse.Attr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.headers
	out.Mode = h.mode
	out.Owner = fuse.Owner{Uid: h.uid, Gid: h.gid}
	out.Nlink = 1
	if l.state == stateGone {
		out.Nlink = 0 // unlinked, alive through its descriptors
	}
	out.Size = uint64(l.contentSize())
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 4096
	out.SetTimes(&h.atime, &h.mtime, &h.ctime)
}

var _ = (gofs.NodeOpener)((*fileNode)(nil))

func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	key, ok := n.key()
	if !ok {
		return nil, 0, syscall.ENOENT
	}
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		if n.stillPassingThrough(ctx) {
			return nil, 0, n.fs.errno("open", key, errPassingThrough)
		}
		l, errno := n.openForWrite(ctx, key, flags&syscall.O_TRUNC != 0)
		if errno != 0 {
			return nil, 0, errno
		}
		n.opened()
		return n.fs.opened(&fileHandle{node: n, local: l, write: true}), writeOpenFlags(l, flags), 0
	}
	n.mu.Lock()
	l := n.currentLocked()
	if l != nil {
		n.opens++ // with the look, so that a release sees this reader
	}
	n.mu.Unlock()
	if l != nil {
		// Reads come from the local copy that writers share. What the
		// kernel cached of the file since it was opened for writing is that
		// copy, unless a write-only descriptor wrote around the cache.
		var fuseFlags uint32
		l.mu.Lock()
		if !l.direct {
			fuseFlags = fuse.FOPEN_KEEP_CACHE
		}
		l.mu.Unlock()
		h := &fileHandle{node: n, viewed: l}
		n.fs.addReader(n.fs.opened(h))
		return h, fuseFlags, 0
	}
	obj, err := n.fs.shownHeaders(ctx, key) // fstat shows this version's attributes
	if err == nil && !n.holds(obj) {
		err = fmt.Errorf("%q: %w", key, errKindChanged)
	}
	if err != nil {
		return nil, 0, n.fs.errno("open", key, err)
	}
	h := &fileHandle{node: n, obj: obj, reader: n.newReader(obj)}
	var fuseFlags uint32
	n.mu.Lock()
	if n.opens > 0 && n.openedETag != "" && n.openedETag != obj.ETag {
		// Another version is open on this node: the kernel, which keeps
		// one size and one page cache per node, must see this one as a new
		// node. ESTALE makes it look the name up again, and the lookup
		// makes that node (readsOtherVersion).
		n.mu.Unlock()
		h.reader.Close()
		return nil, 0, n.fs.errno("open", key, errOtherVersionOpen)
	}
	changed := n.openedETag != obj.ETag
	if !changed {
		fuseFlags |= fuse.FOPEN_KEEP_CACHE
	}
	n.openedETag = obj.ETag
	n.opens++
	through := n.passThroughLocked(h)
	n.mu.Unlock()
	if changed {
		// The kernel drops its cached pages at this open, but it would read
		// them up to the size it last heard, until its attribute cache
		// expires: another version's size cuts a longer one short and pads
		// a shorter one with zeros. So it must ask again (offset -1 drops
		// the attributes only, which takes no lock an open holds).
		n.NotifyContent(-1, 0)
	}
	n.fs.addReader(n.fs.opened(h))
	if through != nil {
		return through, fuseFlags, 0
	}
	return h, fuseFlags, 0
}

// holds tells whether obj is of the node's kind. A symlink renamed over a
// regular file the kernel still has a node for must not be opened through
// that node as a file of its target's name (found by go-fuse's
// posixtest.OpenSymlinkRace): ESTALE makes the kernel look the name up
// again.
func (n *fileNode) holds(obj backend.Object) bool {
	return uint32(objectKind(obj)) == n.StableAttr().Mode&syscall.S_IFMT
}

// readsOtherVersion tells whether the node has readers open on a version
// other than etag (and no local copy). A lookup that finds etag then
// makes a new node for the name, as if the object had been replaced by a
// rename: the kernel keeps one size and one page cache per node, so the
// new version's size, reported on the same node, would cut the readers'
// reads short or pad them with zeros, and its pages would mix with
// theirs. The readers keep their node and their version.
func (n *fileNode) readsOtherVersion(etag string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.opens > 0 && n.currentLocked() == nil && n.openedETag != "" && n.openedETag != etag
}

// readsOtherThan tells whether the node's open readers read something
// other than what e found under its name: another version, or an S3
// version where e is a local file (one that a rename brought there, not
// theirs: attached to their node, it would have turned their reads into
// reads of it, found by the two-mount model test).
func (n *fileNode) readsOtherThan(e entry) bool {
	if e.local == nil {
		return n.readsOtherVersion(e.obj.ETag)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.opens > 0 && n.currentLocked() != e.local
}

// isOpen tells whether any descriptor of the node is open.
func (n *fileNode) isOpen() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.opens > 0
}

func (n *fileNode) opened() {
	n.mu.Lock()
	n.opens++
	n.mu.Unlock()
}

// writeOpenFlags are the FUSE open flags of a descriptor opened for
// writing. A write-only one writes with direct I/O: its data goes from the
// writer to the staged copy without also filling the kernel's page cache,
// which for a large file costs as much memory and more CPU than the
// staging itself, and that nobody reads through a write-only descriptor.
// Read-write descriptors keep the page cache, which mmap needs.
func writeOpenFlags(l *localFile, flags uint32) uint32 {
	if flags&syscall.O_ACCMODE != syscall.O_WRONLY {
		return 0
	}
	l.mu.Lock()
	l.direct = true
	l.mu.Unlock()
	return fuse.FOPEN_DIRECT_IO
}

// newReader reads obj with the mount's read-ahead window, memory budget
// and data cache.
func (n *fileNode) newReader(obj backend.Object) *cache.Reader {
	opts := cache.ReaderOptions{
		MaxWindow: n.fs.cfg.ReadAhead,
		Budget:    n.fs.cfg.ReadBudget,
		Extent:    n.fs.cfg.DataCache.Acquire(n.fs.cfg.DataSpace, obj),
	}
	if ahead, ok := n.fs.cfg.Bucket.(lookAheader); ok {
		opts.First, _ = ahead.TakeFirstBytes(obj.Key, obj.ETag)
	}
	return cache.NewReader(n.fs.bucket, obj, opts)
}

// openForWrite returns the node's local file with one more writer,
// staging the file first if it has none. The content is fetched only when
// a read or write needs it.
func (n *fileNode) openForWrite(ctx context.Context, key string, trunc bool) (*localFile, syscall.Errno) {
	n.stopPushes()
	if l := n.current(); l != nil && l.addHandle() {
		return l, n.truncateAtOpen(ctx, l, trunc)
	}
	obj, err := n.fs.headers(ctx, key)
	if err == nil && !n.holds(obj) {
		err = fmt.Errorf("%q: %w", key, errKindChanged)
	}
	if err != nil && !isNotFound(err) {
		return nil, n.fs.errno("open", key, err)
	}
	l, err := n.fs.newLocal(key, obj, trunc)
	if err != nil {
		return nil, n.fs.errno("open", key, err)
	}
	n.mu.Lock()
	if winner := n.currentLocked(); winner != nil && winner.addHandle() { // another open won the race
		n.mu.Unlock()
		l.discard()
		return winner, n.truncateAtOpen(ctx, winner, trunc)
	}
	n.local = l
	n.mu.Unlock()
	n.fs.replaceLocal(l)
	return l, 0
}

func (n *fileNode) truncateAtOpen(ctx context.Context, l *localFile, trunc bool) syscall.Errno {
	if !trunc {
		return 0
	}
	if errno := n.truncate(ctx, l, 0); errno != 0 {
		n.releaseWriter(ctx, l)
		return errno
	}
	return 0
}

// fileHandle is an open file. A writer writes its local file; reads come
// from the local copy while the file has one, else from S3, conditional
// on the ETag seen at open.
type fileHandle struct {
	node  *fileNode
	write bool
	local *localFile // what a writer writes, even after a conflict set it aside

	// mu guards the fields below. A handle opened while the file was
	// staged has no reader until a read finds the staged copy gone (stored
	// and dropped after the last writer closed): it then reads the version
	// that copy became in S3, and none other.
	mu      sync.Mutex
	obj     backend.Object
	reader  *cache.Reader
	viewed  *localFile      // the local copy a reader without reader read last
	retired []*cache.Reader // replaced by follow, closed at release
	wrote   bool            // something was written through this handle

	// next is the version this mount stored for the handle's file since
	// the handle last looked (follow.go).
	next *backend.Object

	read atomic.Bool // something was read through this handle (atime.go)
}

// object is the version the handle reads from S3, if it reads from S3.
func (h *fileHandle) object() (backend.Object, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reader == nil && h.viewed != nil && !h.viewed.live() {
		_ = h.openStoredLocked() // without it (a conflict), nothing in S3 is the handle's
	}
	return h.obj, h.reader != nil
}

func (h *fileHandle) markWritten() {
	h.mu.Lock()
	h.wrote = true
	h.mu.Unlock()
}

func (h *fileHandle) written() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.wrote
}

// objectReader is the handle's reader of the object, made on first use by
// a handle opened while the file was staged.
func (h *fileHandle) objectReader(ctx context.Context) (*cache.Reader, backend.Object, error) {
	h.follow(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reader == nil {
		if err := h.openStoredLocked(); err != nil {
			return nil, h.obj, err
		}
	}
	return h.reader, h.obj, nil
}

// openStoredLocked gives a handle that read a local copy, now let go, the
// reader of the version S3 holds of that copy. Anything else S3 has under
// the name by now is another client's, and reading on in it would mix two
// versions; a copy S3 never got (set aside in a conflict) ends the reads
// with ESTALE. Called with h.mu held.
func (h *fileHandle) openStoredLocked() error {
	var obj backend.Object
	if h.viewed != nil {
		obj = h.viewed.storedAs()
	}
	if obj.ETag == "" {
		key, _ := h.node.key()
		return fmt.Errorf("%q: %w", key, errLocalCopyGone)
	}
	h.obj, h.reader = obj, h.node.newReader(obj)
	return nil
}

// readLocal is the local file a read comes from: the writer's own, else
// the node's, if any.
func (h *fileHandle) readLocal() *localFile {
	if h.local != nil {
		return h.local
	}
	l := h.node.current()
	if l != nil {
		h.mu.Lock()
		if h.reader == nil {
			h.viewed = l
		}
		h.mu.Unlock()
	}
	return l
}

var _ = (gofs.FileReader)((*fileHandle)(nil))

func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n := h.node
	h.noteRead()
	if l := h.readLocal(); l != nil {
		if err := l.load(ctx); err != nil {
			return nil, n.fs.errno("read", l.keyNow(), err)
		}
		got, err := l.staged.ReadAt(dest, off)
		if err != nil && got == 0 && off < l.staged.Size() {
			return nil, n.fs.errno("read", l.keyNow(), err)
		}
		return fuse.ReadResultData(dest[:got]), 0
	}
	reader, obj, err := h.objectReader(ctx)
	if err != nil {
		return nil, n.fs.errno("read", obj.Key, err)
	}
	view, err := reader.ReadView(ctx, dest, off)
	if err != nil {
		return nil, n.fs.errno("read", obj.Key, err)
	}
	h.pushWhenWhole(reader, obj.ETag)
	return viewResult{view}, 0
}

var _ = (gofs.FileWriter)((*fileHandle)(nil))

func (h *fileHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	l := h.local
	if l == nil || !h.write {
		return 0, syscall.EBADF
	}
	if errno := l.writable(); errno != 0 {
		return 0, errno
	}
	if err := l.load(ctx); err != nil {
		return 0, h.node.fs.errno("write", l.keyNow(), err)
	}
	h.markWritten()
	var written int
	key, err := l.changeContent(func(staged *cache.StagedFile) (err error) {
		written, err = staged.WriteAt(data, off)
		return err
	})
	if err != nil {
		return uint32(written), h.node.fs.errno("write", key, err)
	}
	return uint32(written), 0
}

var _ = (gofs.FileFlusher)((*fileHandle)(nil))

// Flush runs at every close(2): the upload happens here, and close returns
// only once S3 has the object. A descriptor that wrote nothing stores
// nothing: a shell's `cmd > file` closes a duplicate of the descriptor
// before anything is written, and storing then would upload an empty
// version first. Its release stores what is left (`touch`, `: > file`).
func (h *fileHandle) Flush(ctx context.Context) syscall.Errno {
	if !h.write || !h.written() {
		return 0
	}
	return h.node.closeLocal(ctx, h.local)
}

var _ = (gofs.FileFsyncer)((*fileHandle)(nil))

func (h *fileHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return h.node.flushLocal(ctx, h.readLocal())
}

var _ = (gofs.FileReleaser)((*fileHandle)(nil))

func (h *fileHandle) Release(ctx context.Context) syscall.Errno {
	h.closeReaders()
	n := h.node
	n.fs.counters.openFiles.Add(-1)
	if !h.write {
		n.fs.dropReader(h)
	}
	n.mu.Lock()
	n.opens--
	n.mu.Unlock()
	if h.write {
		n.releaseWriter(ctx, h.local)
	}
	// Asked after the writer's release, which may have uploaded for a
	// while: a reader that opened meanwhile keeps an unlinked file (its
	// fstat got ENOENT, found by posixtest.FstatDeleted on versitygw).
	if l := n.current(); l != nil {
		l.dropIfDone(n.isOpen()) // an unlinked file's last reader
	}
	return 0
}

// flushLocal stores l (the node's local file) if it holds changes S3 does
// not have.
func (n *fileNode) flushLocal(ctx context.Context, l *localFile) syscall.Errno {
	if l == nil {
		return 0
	}
	etag, errno := l.flush(ctx)
	switch {
	case errno == 0 && etag != "":
		l.mu.Lock()
		direct := l.direct
		l.mu.Unlock()
		n.mu.Lock()
		n.openedETag = etag
		if direct {
			// Direct writes left the kernel's cache out: the next open drops it.
			n.openedETag = ""
		}
		n.mu.Unlock()
	case !l.live():
		// The copy was set aside: what the kernel cached of it is not the
		// file any more.
		n.mu.Lock()
		n.openedETag = ""
		n.mu.Unlock()
		go n.NotifyContent(0, 0)
	}
	return errno
}

// releaseWriter drops a writer of l. The last one stores what is still
// unsaved (a chmod that came between the last close's upload and this
// release, a file that was created or truncated and never written), then
// frees the local copy unless it is pending.
func (n *fileNode) releaseWriter(ctx context.Context, l *localFile) {
	last, unsaved := l.release()
	if !last {
		return
	}
	if unsaved {
		n.closeLocal(ctx, l) // a failure leaves it pending, and logged
	}
	n.mu.Lock()
	others := n.opens > 0
	n.mu.Unlock()
	l.dropIfDone(others)
}
