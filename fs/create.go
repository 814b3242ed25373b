package fs

import (
	"bytes"
	"context"
	"errors"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
)

// childKey checks a new name and returns its key under d.
func (d *dirNode) childKey(name string) (string, syscall.Errno) {
	if len(name) > maxNameLen {
		return "", syscall.ENAMETOOLONG
	}
	if !validName(name) {
		return "", syscall.EINVAL
	}
	prefix, ok := d.prefix()
	if !ok {
		return "", syscall.ENOENT
	}
	if len(prefix)+len(name)+1 > maxKeyLen { // +1: a directory's marker
		return "", syscall.ENAMETOOLONG
	}
	return prefix + name, 0
}

// callerOwner is who new files belong to: the calling process, as on a
// local filesystem.
func (f *filesystem) callerOwner(ctx context.Context) (uint32, uint32) {
	if caller, ok := fuse.FromContext(ctx); ok {
		return caller.Uid, caller.Gid
	}
	return f.owner.uid, f.owner.gid
}

// putEmpty stores an empty object (a marker, a FIFO) or a symlink's target.
func (f *filesystem) putBody(ctx context.Context, key string, h fileHeaders, body []byte, exclusive bool) (backend.Object, error) {
	in := h.putInput(key)
	in.Body, in.Size, in.IfNoneMatch = bytes.NewReader(body), int64(len(body)), exclusive
	return f.bucket.Put(ctx, in)
}

func (f *filesystem) putEmpty(ctx context.Context, key string, h fileHeaders, exclusive bool) (backend.Object, error) {
	return f.putBody(ctx, key, h, nil, exclusive)
}

// createErrno maps the failure of an exclusive create: a lost condition
// means the name exists.
func (f *filesystem) createErrno(op, key string, err error) syscall.Errno {
	if errors.Is(err, backend.ErrPrecondition) {
		err = nameTaken(err)
	}
	return f.errno(op, key, err)
}

var _ = (gofs.NodeCreater)((*dirNode)(nil))

// Create makes a new file. It exists in S3 from its first upload (the
// close, or an fsync), which is conditional on the name being free: two
// mounts cannot both create it, and the loser's close fails with EEXIST.
func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (_ *gofs.Inode, _ gofs.FileHandle, _ uint32, errno syscall.Errno) {
	defer d.changedIfOK(&errno)
	key, errno := d.childKey(name)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	if flags&syscall.O_EXCL != 0 {
		// The kernel checked its own cache; S3 may know better.
		if _, err := d.fs.bucket.Head(ctx, key); err == nil {
			return nil, nil, 0, d.fs.errno("create", key, nameTaken(errors.New("S3 has it")))
		}
	}
	uid, gid := d.fs.callerOwner(ctx)
	h := d.fs.newHeaders(syscall.S_IFREG|mode&07777, uid, gid, name)
	d.inherit(ctx, &h)
	l, err := d.fs.newCreated(key, h)
	if err != nil {
		return nil, nil, 0, d.fs.errno("create", key, err)
	}
	fuseFlags := writeOpenFlags(l, flags)
	node := &fileNode{fs: d.fs, local: l, opens: 1}
	l.attr(&out.Attr)
	child := d.NewInode(ctx, node, gofs.StableAttr{Mode: syscall.S_IFREG})
	d.fs.replaceLocal(l)
	return child, d.fs.opened(&fileHandle{node: node, local: l, write: true}), fuseFlags, 0
}

var _ = (gofs.NodeMkdirer)((*dirNode)(nil))

// Mkdir writes a marker object "name/", as s3fs and the AWS console do.
func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (_ *gofs.Inode, errno syscall.Errno) {
	defer d.changedIfOK(&errno)
	key, errno := d.childKey(name)
	if errno != 0 {
		return nil, errno
	}
	if isDir, err := d.fs.hasDir(ctx, key+"/"); err != nil || isDir {
		if err != nil {
			return nil, d.fs.errno("mkdir", key, err)
		}
		return nil, d.fs.errno("mkdir", key, nameTaken(errors.New("an implicit directory")))
	}
	uid, gid := d.fs.callerOwner(ctx)
	h := d.fs.newHeaders(syscall.S_IFDIR|mode&07777, uid, gid, name)
	d.inherit(ctx, &h)
	marker, err := d.fs.putEmpty(ctx, key+"/", h, true)
	if err != nil {
		return nil, d.fs.createErrno("mkdir", key, err)
	}
	return d.fs.newChild(ctx, d.EmbeddedInode(), name, entry{kind: kindDir, key: key + "/", obj: marker}, out), 0
}

var _ = (gofs.NodeSymlinker)((*dirNode)(nil))

// Symlink stores the target as the object's body with S_IFLNK in its mode,
// as s3fs does.
func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (_ *gofs.Inode, errno syscall.Errno) {
	defer d.changedIfOK(&errno)
	key, errno := d.childKey(name)
	if errno != 0 {
		return nil, errno
	}
	if len(target) > maxTarget {
		return nil, syscall.ENAMETOOLONG
	}
	uid, gid := d.fs.callerOwner(ctx)
	h := d.fs.newHeaders(syscall.S_IFLNK|0o777, uid, gid, name)
	obj, err := d.fs.putBody(ctx, key, h, []byte(target), true)
	if err != nil {
		return nil, d.fs.createErrno("symlink", key, err)
	}
	return d.fs.newChild(ctx, d.EmbeddedInode(), name, entry{kind: kindSymlink, key: key, obj: obj}, out), 0
}

var _ = (gofs.NodeMknoder)((*dirNode)(nil))

// Mknod stores FIFOs, sockets and device nodes as empty objects whose
// mode carries the type, a device's number in x-amz-meta-rdev, as s3fs
// does. (The mount is nodev: a device node is shown, never opened.)
func (d *dirNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (_ *gofs.Inode, errno syscall.Errno) {
	defer d.changedIfOK(&errno)
	k := kind(mode & syscall.S_IFMT)
	switch k {
	case kindFIFO, kindSocket, kindChar, kindBlock:
	case kindFile:
		// mknod(2) of a regular file is a create.
	default:
		return nil, syscall.EPERM
	}
	key, errno := d.childKey(name)
	if errno != 0 {
		return nil, errno
	}
	uid, gid := d.fs.callerOwner(ctx)
	headers := d.fs.newHeaders(uint32(k)|mode&07777, uid, gid, name)
	if k == kindChar || k == kindBlock {
		headers.rdev = dev
	}
	d.inherit(ctx, &headers)
	obj, err := d.fs.putEmpty(ctx, key, headers, true)
	if err != nil {
		return nil, d.fs.createErrno("mknod", key, err)
	}
	return d.fs.newChild(ctx, d.EmbeddedInode(), name, entry{kind: k, key: key, obj: obj}, out), 0
}

var _ = (gofs.NodeLinker)((*dirNode)(nil))

// Link is refused: S3 has no way for two keys to share one object.
func (d *dirNode) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.ENOTSUP
}
