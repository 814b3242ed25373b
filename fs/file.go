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

// fileNode is a regular file: the object under key.
type fileNode struct {
	gofs.Inode
	fs  *filesystem
	key string

	// mu protects the field below.
	mu sync.Mutex
	// openedETag is the version the last open saw: the kernel may keep its
	// page cache across opens only while the ETag stays the same.
	openedETag string
}

func notFoundErr(key string) error {
	return fmt.Errorf("%q: %w", key, backend.ErrNotFound)
}

var _ = (gofs.NodeGetattrer)((*fileNode)(nil))

func (n *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(*fileHandle); ok {
		// An open file shows the version it reads.
		n.fs.owner.attrOf(kindFile, h.obj, &out.Attr)
		return 0
	}
	obj, err := n.fs.bucket.Head(ctx, n.key)
	if err != nil {
		return n.fs.errno("getattr", n.key, err)
	}
	n.fs.owner.attrOf(objectKind(obj), obj, &out.Attr)
	return 0
}

var _ = (gofs.NodeOpener)((*fileNode)(nil))

func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	obj, err := n.fs.bucket.Head(ctx, n.key)
	if err != nil {
		return nil, 0, n.fs.errno("open", n.key, err)
	}
	var fuseFlags uint32
	n.mu.Lock()
	if n.openedETag == obj.ETag {
		fuseFlags |= fuse.FOPEN_KEEP_CACHE
	}
	n.openedETag = obj.ETag
	n.mu.Unlock()
	reader := cache.NewReader(n.fs.bucket, obj, cache.ReaderOptions{
		MaxWindow: n.fs.cfg.ReadAhead,
		Budget:    n.fs.cfg.ReadBudget,
	})
	return &fileHandle{fs: n.fs, obj: obj, reader: reader}, fuseFlags, 0
}

// fileHandle reads one version of an object: every GET it sends is
// conditional on the ETag seen at open.
type fileHandle struct {
	fs     *filesystem
	obj    backend.Object
	reader *cache.Reader
}

var _ = (gofs.FileReader)((*fileHandle)(nil))

func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.reader.ReadAt(ctx, dest, off)
	if err != nil {
		return nil, h.fs.errno("read", h.obj.Key, err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

var _ = (gofs.FileReleaser)((*fileHandle)(nil))

func (h *fileHandle) Release(ctx context.Context) syscall.Errno {
	h.reader.Close()
	return 0
}
