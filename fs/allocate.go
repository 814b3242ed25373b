package fs

import (
	"context"
	"errors"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/bucketfs/bucketfs/cache"
)

var _ = (gofs.FileAllocater)((*fileHandle)(nil))

// Allocate is fallocate(2) on the staged copy: a preallocation (which
// downloaders and torrent clients make) grows the file, KEEP_SIZE changes
// nothing that is stored, and punched or zeroed ranges read as zeros.
func (h *fileHandle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	l := h.local
	if l == nil || !h.write {
		return syscall.EBADF
	}
	if errno := l.writable(); errno != 0 {
		return errno
	}
	if err := l.load(ctx); err != nil {
		return h.node.fs.errno("fallocate", l.keyNow(), err)
	}
	h.markWritten()
	key, err := l.changeContent(func(staged *cache.StagedFile) error {
		return staged.Allocate(mode, int64(off), int64(size))
	})
	if errno := syscall.Errno(0); errors.As(err, &errno) {
		return errno // the local filesystem's answer: EOPNOTSUPP for an unknown mode
	}
	if err != nil {
		return h.node.fs.errno("fallocate", key, err)
	}
	return 0
}
