package fs

import (
	"github.com/bucketfs/bucketfs/cache"
)

// pushPiece is how much of a whole-fetched object goes to the kernel in
// one notification.
const pushPiece = 1 << 20

// pushWhenWhole hands an object that a random reader got fetched whole
// (cache.Extent.FetchWhole) to the kernel's page cache, once per node and
// version: every page miss of a random reader costs a FUSE round trip
// (about 40 µs here) even when the data is on local disk, and with the
// pages in the kernel's cache those reads never leave it. The kernel may
// evict them like any other page; a read then comes here and is served
// from the extent. A sequential reader is not pushed to: the kernel's own
// read-ahead already fills its cache.
func (h *fileHandle) pushWhenWhole(r *cache.Reader, etag string) {
	e := r.Extent()
	if !e.Complete() || !r.Jumped() {
		return
	}
	n := h.node
	n.mu.Lock()
	first := n.pushedETag != etag && n.openedETag == etag
	if first {
		n.pushedETag = etag
	}
	n.mu.Unlock()
	if !first || !e.Retain() {
		return
	}
	go func() {
		defer e.Release()
		buf := make([]byte, pushPiece)
		for off := int64(0); off < e.Size(); off += pushPiece {
			if !n.pushPiece(e, etag, buf, off) {
				return
			}
		}
	}()
}

// pushPiece pushes the piece of e at off, unless the node stopped reading
// etag alone: closed, another version opened, or opened for writing.
func (n *fileNode) pushPiece(e *cache.Extent, etag string, buf []byte, off int64) bool {
	n.pushMu.Lock()
	defer n.pushMu.Unlock()
	n.mu.Lock()
	reading := n.opens > 0 && n.openedETag == etag && !n.noPush && n.currentLocked() == nil
	n.mu.Unlock()
	if !reading {
		return false
	}
	k, err := e.ReadAt(buf[:min(pushPiece, e.Size()-off)], off)
	if err != nil || k == 0 {
		return false
	}
	if errno := n.WriteCache(off, buf[:k]); errno != 0 {
		n.fs.log.Debug("page cache push stopped", "key", e.Key(), "errno", errno)
		return false
	}
	return true
}

// stopPushes ends pushing to the node's page cache for good, before it is
// opened for writing: a piece of the old version landing after a write
// would hide the written bytes from readers.
func (n *fileNode) stopPushes() {
	n.mu.Lock()
	n.noPush = true
	n.mu.Unlock()
	n.pushMu.Lock()
	//lint:ignore SA2001 a barrier: waits for the piece in flight
	n.pushMu.Unlock()
}
