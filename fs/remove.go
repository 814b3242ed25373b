package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/bucketfs/bucketfs/backend"
)

// childFileKey is the key of the file or symlink named name in d, from its
// node when the kernel has one (a shadowed file's name is not its key).
func (d *dirNode) childFileKey(name string) (key string, node *fileNode, ok bool) {
	if child := d.GetChild(name); child != nil {
		switch c := child.Operations().(type) {
		case *fileNode:
			key, ok = c.key()
			return key, c, ok
		case *symlinkNode:
			key, ok = c.key()
			return key, nil, ok
		}
	}
	prefix, ok := d.prefix()
	return prefix + name, nil, ok
}

var _ = (gofs.NodeUnlinker)((*dirNode)(nil))

func (d *dirNode) Unlink(ctx context.Context, name string) (errno syscall.Errno) {
	defer d.changedIfOK(&errno)
	key, node, ok := d.childFileKey(name)
	if !ok {
		return syscall.ENOENT
	}
	var l *localFile
	if node != nil {
		var errno syscall.Errno
		if l, errno = node.keepForReaders(ctx, key); errno != 0 {
			return errno
		}
	}
	if l == nil {
		l = d.fs.localAt(key) // a pending file the kernel forgot
	}
	if l != nil {
		// An upload under way (a close's, a release's, a retry's) lands
		// before the delete, not after it, which would bring the file
		// back; once gone, the file starts no other.
		l.flushMu.Lock()
		defer l.flushMu.Unlock()
	}
	if err := d.fs.delete(ctx, key); err != nil {
		// The name stays, and so does what its writers write.
		return d.fs.errno("unlink", key, err)
	}
	if l != nil {
		l.unlinked()
	}
	if node != nil {
		node.markUnlinked()
	}
	return 0
}

// keepForReaders returns the node's local file, staging a copy of the
// object first when descriptors that read it from S3 are open: POSIX keeps
// an unlinked file's data for them, and S3 forgets it with the delete.
func (n *fileNode) keepForReaders(ctx context.Context, key string) (*localFile, syscall.Errno) {
	n.mu.Lock()
	l, readers := n.currentLocked(), n.opens > 0
	n.mu.Unlock()
	if l != nil && readers {
		// A copy that has not fetched the object yet must, while S3 has it.
		if err := l.load(ctx); err != nil {
			return nil, n.fs.errno("unlink", key, err)
		}
	}
	if l != nil || !readers {
		return l, 0
	}
	obj, err := n.fs.headers(ctx, key)
	if err != nil {
		return nil, n.fs.errno("unlink", key, err)
	}
	if h := n.fs.readerOf(n); h != nil {
		if read, ok := h.object(); ok && read.ETag != obj.ETag {
			// Another client replaced the version they read: S3 no longer
			// has it to copy, and a copy of the new one would hand them
			// its bytes. They read on from S3 while it lasts (then ESTALE).
			return nil, 0
		}
	}
	l, err = n.fs.newLocal(key, obj, false)
	if err == nil {
		err = l.load(ctx)
	}
	if err != nil {
		if l != nil {
			l.discard()
		}
		return nil, n.fs.errno("unlink", key, err)
	}
	l.release() // no writer holds it; the readers do, through the node
	n.attach(l)
	return l, 0
}

var _ = (gofs.NodeRmdirer)((*dirNode)(nil))

// Rmdir removes an empty directory's markers: "name/", and s3fs's
// "name_$folder$" and slash-less "name" when they exist.
func (d *dirNode) Rmdir(ctx context.Context, name string) (errno syscall.Errno) {
	defer d.changedIfOK(&errno)
	prefix, ok := d.prefix()
	if !ok {
		return syscall.ENOENT
	}
	dir := prefix + name + "/"
	empty, err := d.fs.isEmptyDir(ctx, dir)
	if err != nil {
		return d.fs.errno("rmdir", dir, err)
	}
	if !empty {
		return d.fs.errno("rmdir", dir, errNotEmpty)
	}
	for _, key := range []string{dir, prefix + name + legacyDirSuffix, prefix + name} {
		if d.fs.isDeleted(key) {
			continue
		}
		obj, err := d.fs.bucket.Head(ctx, key)
		if isNotFound(err) || (key == prefix+name && objectKind(obj) != kindDir) {
			continue
		}
		if err == nil {
			err = d.fs.delete(ctx, key)
		}
		if err != nil {
			return d.fs.errno("rmdir", key, err)
		}
	}
	if d.fs.cfg.WriteBack {
		d.fs.removedDir(dir)
	}
	return 0
}

// delete removes key: at once, or with write-back once the journal holds
// the delete (tombstone.go).
func (f *filesystem) delete(ctx context.Context, key string) error {
	if f.cfg.WriteBack {
		return f.deferDelete(key)
	}
	return f.bucket.Delete(ctx, key)
}

// isEmptyDir tells whether nothing but the directory's own marker lies
// under prefix, in S3 or among this mount's local files.
func (f *filesystem) isEmptyDir(ctx context.Context, prefix string) (bool, error) {
	if f.localDirUnder(prefix) {
		return false, nil // files S3 may not have yet (pending) are there
	}
	in := backend.ListInput{Prefix: prefix, Delimiter: "/", MaxKeys: 2}
	if f.deletesOutstanding() {
		in.MaxKeys = backend.MaxBatchDelete // S3 still lists what was removed
	}
	for {
		page, err := f.bucket.List(ctx, in)
		if err != nil {
			return false, err
		}
		page = f.withoutDeleted(page)
		if len(page.Prefixes) > 0 {
			return false, nil
		}
		for _, obj := range page.Objects {
			if obj.Key != prefix {
				return false, nil
			}
		}
		if page.NextToken == "" || in.MaxKeys == 2 {
			return true, nil
		}
		in.Token = page.NextToken
	}
}
