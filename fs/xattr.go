package fs

import (
	"context"
	"slices"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/bucketfs/bucketfs/backend"
)

// posixHeaders are the x-amz-meta-* names that carry POSIX metadata: they
// show as file attributes, not as user.* xattrs.
var posixHeaders = map[string]bool{"mode": true, "uid": true, "gid": true, "mtime": true, "atime": true, "ctime": true}

// objectXattrs lists an object's extended attributes in a stable order.
// obj may be the zero Object (an implicit directory): it has a URI only.
func (f *filesystem) objectXattrs(key string, obj backend.Object) [][2]string {
	attrs := [][2]string{{"user.s3.uri", "s3://" + f.bucket.Name() + "/" + key}}
	if obj.Key == "" {
		return attrs
	}
	attrs = append(attrs,
		[2]string{"user.s3.etag", obj.ETag},
		[2]string{"user.s3.storage_class", obj.StorageClass},
		[2]string{"user.s3.content_type", obj.ContentType},
	)
	if obj.VersionID != "" {
		attrs = append(attrs, [2]string{"user.s3.version_id", obj.VersionID})
	}
	names := make([]string, 0, len(obj.Metadata))
	for name := range obj.Metadata {
		if !posixHeaders[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		attrs = append(attrs, [2]string{"user." + name, obj.Metadata[name]})
	}
	return attrs
}

// xattrsOf returns the attributes of the object behind a node: key for a
// file, the marker for a directory prefix.
func (f *filesystem) xattrsOf(ctx context.Context, key string) ([][2]string, syscall.Errno) {
	if key == "" {
		// The bucket's root has no object.
		return f.objectXattrs(key, backend.Object{}), 0
	}
	obj, err := f.headers(ctx, key)
	if err != nil && !(isNotFound(err) && (key == "" || key[len(key)-1] == '/')) {
		return nil, f.errno("getxattr", key, err)
	}
	return f.objectXattrs(key, obj), 0
}

// ownXattr tells the names this filesystem has: user.* only. Other
// namespaces (security.*, system.* ACLs) get ENOTSUP, not ENODATA: tools
// such as ls remember an unsupported namespace per filesystem and stop
// asking, which saves `ls -l` two round trips per file.
func ownXattr(name string) bool { return strings.HasPrefix(name, "user.") }

func getxattr(attrs [][2]string, name string, dest []byte) (uint32, syscall.Errno) {
	for _, a := range attrs {
		if a[0] == name {
			if len(dest) < len(a[1]) {
				return uint32(len(a[1])), syscall.ERANGE
			}
			return uint32(copy(dest, a[1])), 0
		}
	}
	return 0, syscall.ENODATA
}

func listxattr(attrs [][2]string, dest []byte) (uint32, syscall.Errno) {
	var names []byte
	for _, a := range attrs {
		names = append(append(names, a[0]...), 0)
	}
	if len(dest) < len(names) {
		return uint32(len(names)), syscall.ERANGE
	}
	return uint32(copy(dest, names)), 0
}

// getxattrOf and listxattrOf serve the object behind a node: key for a
// file, the prefix (its marker) for a directory.
func (f *filesystem) getxattrOf(ctx context.Context, key, name string, dest []byte) (uint32, syscall.Errno) {
	if !ownXattr(name) {
		return 0, syscall.ENOTSUP
	}
	attrs, errno := f.xattrsOf(ctx, key)
	if errno != 0 {
		return 0, errno
	}
	return getxattr(attrs, name, dest)
}

func (f *filesystem) listxattrOf(ctx context.Context, key string, dest []byte) (uint32, syscall.Errno) {
	attrs, errno := f.xattrsOf(ctx, key)
	if errno != 0 {
		return 0, errno
	}
	return listxattr(attrs, dest)
}

var (
	_ = (gofs.NodeGetxattrer)((*fileNode)(nil))
	_ = (gofs.NodeListxattrer)((*fileNode)(nil))
	_ = (gofs.NodeGetxattrer)((*dirNode)(nil))
	_ = (gofs.NodeListxattrer)((*dirNode)(nil))
)

func (n *fileNode) Getxattr(ctx context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	key, ok := n.key()
	if !ok {
		return 0, syscall.ENOENT
	}
	return n.fs.getxattrOf(ctx, key, name, dest)
}

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	key, ok := n.key()
	if !ok {
		return 0, syscall.ENOENT
	}
	return n.fs.listxattrOf(ctx, key, dest)
}

func (d *dirNode) Getxattr(ctx context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	prefix, ok := d.prefix()
	if !ok {
		return 0, syscall.ENOENT
	}
	return d.fs.getxattrOf(ctx, prefix, name, dest)
}

func (d *dirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	prefix, ok := d.prefix()
	if !ok {
		return 0, syscall.ENOENT
	}
	return d.fs.listxattrOf(ctx, prefix, dest)
}
