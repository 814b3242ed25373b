package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

// FUSE passthrough (Linux 6.9, CAP_SYS_ADMIN): a file opened for reading
// whose whole version is on local disk (a kept copy of --cache-size) is
// read by the kernel from that copy itself, with no round trip through the
// daemon: at local-disk speed, not FUSE's.
//
// While a node has a passthrough descriptor, the kernel wants every other
// open of it to pass through too (any other fails with EIO), and one that
// passes through the copy cannot write. So a node passes through only
// when no other descriptor is open on it (or all pass through: readers of
// the same version, whose copy is the same), and while one does, opening
// it for writing fails with ETXTBSY, as writing a running program does.

// passthroughHandle is a read handle whose reads the kernel serves from
// the extent's file.
type passthroughHandle struct {
	*fileHandle
	fd int
}

var _ = (gofs.FilePassthroughFder)((*passthroughHandle)(nil))

func (h *passthroughHandle) PassthroughFd() (int, bool) { return h.fd, true }

func (h *passthroughHandle) Release(ctx context.Context) syscall.Errno {
	n := h.node
	n.mu.Lock()
	n.passthroughs--
	n.mu.Unlock()
	return h.fileHandle.Release(ctx)
}

// passThroughLocked returns h as a passthrough handle when the mount may
// pass through, the whole version h reads is local, and every other
// descriptor of the node passes through; else nil. Called with n.mu held,
// h's open already counted in n.opens.
func (n *fileNode) passThroughLocked(h *fileHandle) *passthroughHandle {
	e := h.reader.Extent()
	if !n.fs.cfg.Passthrough || !e.Complete() || n.currentLocked() != nil || n.opens-1 != n.passthroughs {
		return nil
	}
	n.passthroughs++
	return &passthroughHandle{fileHandle: h, fd: e.Fd()}
}

// passingThrough tells whether descriptors of the node pass through.
func (n *fileNode) passingThrough() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.passthroughs > 0
}

// releaseGrace is how long an open for writing waits for the releases of
// passthrough readers: close(2) returns before the kernel sends their
// RELEASE, so `cat f; echo x >> f` got ETXTBSY now and then.
const releaseGrace = 2 * time.Second

// stillPassingThrough tells whether descriptors of the node pass through
// once the releases under way have come (or releaseGrace has passed).
func (n *fileNode) stillPassingThrough(ctx context.Context) bool {
	deadline := time.Now().Add(releaseGrace)
	for n.passingThrough() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// asFileHandle is the fileHandle of fh, passed through or not.
func asFileHandle(fh gofs.FileHandle) (*fileHandle, bool) {
	switch h := fh.(type) {
	case *fileHandle:
		return h, true
	case *passthroughHandle:
		return h.fileHandle, true
	}
	return nil, false
}
