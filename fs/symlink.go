package fs

import (
	"context"
	"io"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
)

// symlinkNode is a symbolic link stored as s3fs stores it: the object's
// body is the target and x-amz-meta-mode carries S_IFLNK.
type symlinkNode struct {
	gofs.Inode
	fs *filesystem
}

func (n *symlinkNode) key() (string, bool) { return n.fs.fileKey(&n.Inode, false) }

// maxTarget is PATH_MAX: a longer body is not a link target.
const maxTarget = 4096

var _ = (gofs.NodeReadlinker)((*symlinkNode)(nil))

func (n *symlinkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	key, ok := n.key()
	if !ok {
		return nil, syscall.ENOENT
	}
	body, _, err := n.fs.bucket.Get(ctx, backend.GetInput{Key: key, Length: maxTarget})
	if err != nil {
		return nil, n.fs.errno("readlink", key, err)
	}
	defer body.Close()
	target, err := io.ReadAll(io.LimitReader(body, maxTarget))
	if err != nil {
		return nil, n.fs.errno("readlink", key, err)
	}
	return target, 0
}

var _ = (gofs.NodeGetattrer)((*symlinkNode)(nil))

func (n *symlinkNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	key, ok := n.key()
	if !ok {
		return syscall.ENOENT
	}
	obj, err := n.fs.shownHeaders(ctx, key)
	if err != nil {
		return n.fs.errno("getattr", key, err)
	}
	n.fs.owner.attrOf(kindSymlink, obj, &out.Attr)
	return 0
}
