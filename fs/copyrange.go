package fs

import (
	"context"
	"errors"
	"maps"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/bucketfs/bucketfs/backend"
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
	if l := src.current(); l != nil && l.unsaved() {
		return 0, syscall.ENOTSUP // S3 does not have what the source holds
	}
	d := dstHandle.local
	if d == nil || !d.freshEmpty() {
		return 0, syscall.ENOTSUP
	}
	obj, err := src.fs.headers(ctx, srcKey)
	if err != nil {
		return 0, src.fs.errno("copy_file_range", srcKey, err)
	}
	if length < uint64(obj.Size) || obj.Size == 0 {
		return 0, syscall.ENOTSUP
	}

	d.mu.Lock()
	headers := d.headers
	headers.contentType = obj.ContentType
	headers.user = maps.Clone(headers.user)
	for name, v := range obj.Metadata {
		if !posixHeaders[name] {
			headers.user[name] = v
		}
	}
	abort := d.stopStream()
	d.mu.Unlock()
	abortStream(abort)
	in := headers.copyInput(obj)
	in.Dst = dstKey
	// Like the upload it replaces: never over a version another client
	// wrote since the destination was opened.
	d.mu.Lock()
	in.DstIfNoneMatch, in.DstIfMatch = d.base == "", d.base
	newFile := d.base == ""
	d.mu.Unlock()
	copied, err := src.fs.bucket.Copy(ctx, in)
	if errors.Is(err, backend.ErrPrecondition) {
		if now, herr := src.fs.freshHeaders(ctx, dstKey); herr == nil && now.ETag != in.DstIfMatch {
			if newFile {
				err = nameTaken(err)
			}
			return 0, src.fs.errno("copy_file_range", dstKey, err)
		}
	}
	if err != nil {
		return 0, src.fs.errno("copy_file_range", srcKey, err)
	}
	d.copiedIn(copied, obj.Size, headers)
	dstHandle.markWritten()
	return uint32(min(obj.Size, 1<<31-1)), 0
}
