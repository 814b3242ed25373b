package fs

import (
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Reads move a file's atime the way relatime does, in the mount's view
// only: storing it would rewrite the object at every read. The atime a
// read gave is stored with the next change that rewrites the object
// anyway (a chmod, a touch -m).

// relatimeAge is how old an atime may get before a read moves it even
// though it is later than the mtime and the ctime.
const relatimeAge = 24 * time.Hour

// noteRead records the first read of the descriptor; every read asks,
// so the others cost one atomic load.
func (h *fileHandle) noteRead() {
	if h.read.Load() || !h.read.CompareAndSwap(false, true) {
		return
	}
	var a fuse.Attr
	if l := h.readLocal(); l != nil {
		l.attr(&a)
	} else if obj, ok := h.object(); ok {
		h.node.fs.owner.attrOf(objectKind(obj), obj, &a)
	} else {
		return
	}
	h.node.readNow(a, time.Now())
}

// readNow moves the node's atime to now, by relatime's rule, from the
// times in a (those stored).
func (n *fileNode) readNow(a fuse.Attr, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	atime := time.Unix(int64(a.Atime), int64(a.Atimensec))
	if n.readAt.After(atime) {
		atime = n.readAt
	}
	mtime, ctime := time.Unix(int64(a.Mtime), int64(a.Mtimensec)), time.Unix(int64(a.Ctime), int64(a.Ctimensec))
	if !atime.After(mtime) || !atime.After(ctime) || now.Sub(atime) > relatimeAge {
		n.readAt = now
	}
}

// lastRead is the atime reads gave the node; zero if none did.
func (n *fileNode) lastRead() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.readAt
}

// showInMemory adds to out what the mount knows of the node and stores
// nowhere: the atime of the last read, and nlink 0 once its name went.
func (n *fileNode) showInMemory(out *fuse.Attr) {
	n.mu.Lock()
	at, unlinked := n.readAt, n.unlinked
	n.mu.Unlock()
	if at.After(time.Unix(int64(out.Atime), int64(out.Atimensec))) {
		out.SetTimes(&at, nil, nil)
	}
	if unlinked {
		out.Nlink = 0
	}
}

// carryRead gives headers about to be stored the atime reads gave (at),
// unless they set a later one.
func carryRead(h *fileHeaders, at time.Time) {
	if at.After(h.atime) {
		h.atime = at
	}
}
