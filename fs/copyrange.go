package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

var _ = (gofs.NodeCopyFileRanger)((*fileNode)(nil))

// CopyFileRange turns `cp` between two paths of the mount into a
// server-side copy when it copies a whole object into an empty file: no
// byte passes through the mount. Other ranges get ENOTSUP, and cp falls
// back to reading and writing.
func (src *fileNode) CopyFileRange(ctx context.Context, fhIn gofs.FileHandle, offIn uint64, out *gofs.Inode, fhOut gofs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	dstHandle, ok := fhOut.(*fileHandle)
	if !ok || !dstHandle.write || offIn != 0 || offOut != 0 {
		return 0, syscall.ENOTSUP
	}
	dst := dstHandle.node
	srcKey, ok1 := src.key()
	dstKey, ok2 := dst.key()
	if !ok1 || !ok2 || srcKey == dstKey {
		return 0, syscall.ENOTSUP
	}
	src.mu.Lock()
	srcStaged := src.dirty != nil && src.dirty.needsUpload()
	src.mu.Unlock()
	dst.mu.Lock()
	d := dst.dirty
	fresh := d != nil && !d.remote && d.staged.Size() == 0
	dst.mu.Unlock()
	if srcStaged || !fresh {
		return 0, syscall.ENOTSUP
	}
	obj, err := src.fs.headers(ctx, srcKey)
	if err != nil {
		return 0, src.fs.errno("copy_file_range", srcKey, err)
	}
	if length < uint64(obj.Size) || obj.Size == 0 {
		return 0, syscall.ENOTSUP
	}

	dst.mu.Lock()
	headers := d.headers
	headers.contentType = obj.ContentType
	for name, v := range obj.Metadata {
		if !posixHeaders[name] {
			headers.user[name] = v
		}
	}
	if d.stream != nil {
		d.stream.Abort()
		d.stream = nil
	}
	dst.mu.Unlock()
	in := headers.copyInput(obj)
	in.Dst = dstKey
	copied, err := src.fs.bucket.Copy(ctx, in)
	if err != nil {
		return 0, src.fs.errno("copy_file_range", srcKey, err)
	}
	// The object now is the file's content: nothing is left to upload, and
	// the staged copy loads it only if a read or write comes.
	dst.mu.Lock()
	d.base, d.size, d.remote, d.pending = copied.ETag, obj.Size, true, false
	d.headers = headers
	dst.mu.Unlock()
	return uint32(min(obj.Size, 1<<31-1)), 0
}
