package fs

import (
	"context"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

// maxUserMetadata is S3's limit on the x-amz-meta-* headers of an object
// (names and values, POSIX ones included).
const maxUserMetadata = 2048

// userXattr returns the metadata name behind a writable user.* xattr.
// user.s3.* names are the object's own attributes, not metadata.
func userXattr(attr string) (string, syscall.Errno) {
	name, ok := strings.CutPrefix(attr, "user.")
	name = strings.ToLower(name) // S3 keeps metadata names lower-case
	switch {
	case !ok:
		return "", syscall.ENOTSUP // security.*, system.* (ACLs), trusted.*
	case strings.HasPrefix(name, "s3."):
		// user.S3.x would be stored as s3.x and read back as user.s3.x,
		// S3's own namespace.
		return "", syscall.ENOTSUP
	case name == "" || posixHeaders[name]:
		return "", syscall.EINVAL
	}
	return name, 0
}

// setUserMetadata is the header change of setfattr: set (value non-nil) or
// remove one metadata entry.
func setUserMetadata(name string, value []byte, flags uint32) func(*fileHeaders) (bool, syscall.Errno) {
	return func(h *fileHeaders) (bool, syscall.Errno) {
		_, exists := h.user[name]
		if _, s3fs := s3fsXattrs(h.user[s3fsXattrHeader]); s3fs && name == s3fsXattrHeader {
			return false, syscall.EINVAL // s3fs's header of all attributes, not one
		}
		// The name leaves s3fs's header either way: set, it is ours.
		fromS3fs := dropS3fsXattr(h.user, "user."+name)
		exists = exists || fromS3fs
		switch {
		case value == nil && !exists:
			return false, syscall.ENODATA
		case value == nil:
			delete(h.user, name)
			return true, 0
		case flags&xattrCreate != 0 && exists:
			return false, syscall.EEXIST
		case flags&xattrReplace != 0 && !exists:
			return false, syscall.ENODATA
		}
		h.user[name] = string(value)
		if metadataSize(h.metadata()) > maxUserMetadata {
			return false, syscall.E2BIG
		}
		return true, 0
	}
}

// metadataSize is what S3 counts against its 2 KiB of x-amz-meta-*.
func metadataSize(m map[string]string) int {
	size := 0
	for k, v := range m {
		size += len(k) + len(v)
	}
	return size
}

// setxattr flags of setxattr(2).
const (
	xattrCreate  = 1
	xattrReplace = 2
)

// editFileHeaders changes a file's headers: in its local copy while it
// has one (stored by the next upload), else in place.
func (n *fileNode) editFileHeaders(ctx context.Context, change func(*fileHeaders) (bool, syscall.Errno)) syscall.Errno {
	if errno, local := n.editLocalHeaders(ctx, change, false); local {
		return errno
	}
	key, ok := n.key()
	if !ok {
		return syscall.ENOENT
	}
	return n.fs.editHeaders(ctx, key, change)
}

var (
	_ = (gofs.NodeSetxattrer)((*fileNode)(nil))
	_ = (gofs.NodeRemovexattrer)((*fileNode)(nil))
	_ = (gofs.NodeSetxattrer)((*dirNode)(nil))
	_ = (gofs.NodeRemovexattrer)((*dirNode)(nil))
)

func (n *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if attr == aclAccessXattr || attr == aclDefaultXattr {
		n.fs.aclSeen.Store(true)
		return n.editFileHeaders(ctx, setACL(attr, data, false))
	}
	if s3name, ok := strings.CutPrefix(attr, "user.s3."); ok {
		return n.setS3Xattr(ctx, s3name, strings.TrimRight(string(data), "\x00\n"))
	}
	name, errno := userXattr(attr)
	if errno != 0 {
		return errno
	}
	if data == nil {
		data = []byte{}
	}
	return n.editFileHeaders(ctx, setUserMetadata(name, data, flags))
}

func (n *fileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if attr == aclAccessXattr || attr == aclDefaultXattr {
		return n.editFileHeaders(ctx, setACL(attr, nil, false))
	}
	if strings.HasPrefix(attr, "user.s3.") {
		return syscall.EPERM // S3's own attributes cannot be removed
	}
	name, errno := userXattr(attr)
	if errno != 0 {
		return errno
	}
	return n.editFileHeaders(ctx, setUserMetadata(name, nil, 0))
}

func (d *dirNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if attr == aclAccessXattr || attr == aclDefaultXattr {
		d.fs.aclSeen.Store(true)
		return d.editMarkerHeaders(ctx, setACL(attr, data, true))
	}
	if s3name, ok := strings.CutPrefix(attr, "user.s3."); ok {
		if !d.top() {
			return syscall.ENOTSUP
		}
		return d.fs.setRootXattr(ctx, s3name, strings.TrimRight(string(data), "\x00\n"))
	}
	name, errno := userXattr(attr)
	if errno != 0 {
		return errno
	}
	if data == nil {
		data = []byte{}
	}
	return d.editMarkerHeaders(ctx, setUserMetadata(name, data, flags))
}

func (d *dirNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if attr == aclAccessXattr || attr == aclDefaultXattr {
		return d.editMarkerHeaders(ctx, setACL(attr, nil, true))
	}
	if s3name, ok := strings.CutPrefix(attr, "user.s3."); ok {
		if !d.top() {
			return syscall.EPERM
		}
		return d.fs.removeRootXattr(ctx, s3name)
	}
	name, errno := userXattr(attr)
	if errno != 0 {
		return errno
	}
	return d.editMarkerHeaders(ctx, setUserMetadata(name, nil, 0))
}

// editMarkerHeaders changes the headers of a directory's marker.
func (d *dirNode) editMarkerHeaders(ctx context.Context, change func(*fileHeaders) (bool, syscall.Errno)) syscall.Errno {
	prefix, ok := d.prefix()
	if !ok || prefix == "" {
		return syscall.ENOTSUP // the bucket's root has no object to hold metadata
	}
	return d.fs.editMarker(ctx, prefix, change)
}

// editMarker changes the headers of the marker of directory prefix; an
// implicit directory gets a marker for the purpose.
func (f *filesystem) editMarker(ctx context.Context, prefix string, change func(*fileHeaders) (bool, syscall.Errno)) syscall.Errno {
	if _, err := f.headers(ctx, prefix); isNotFound(err) {
		h := f.newHeaders(syscall.S_IFDIR|f.owner.dirMode, f.owner.uid, f.owner.gid, "")
		if _, errno := change(&h); errno != 0 {
			return errno
		}
		_, err := f.putEmpty(ctx, prefix, h, false)
		return f.errno("edit marker", prefix, err)
	}
	return f.editHeaders(ctx, prefix, change)
}
