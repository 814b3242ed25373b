package fs

import (
	"context"
	"errors"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/bucketfs/bucketfs/backend"
)

// Linux's renameat2 flags.
const (
	renameNoReplace = 1
	renameExchange  = 2
)

// renameConcurrency bounds the copies and deletes of a directory rename.
const renameConcurrency = 16

var _ = (gofs.NodeRenamer)((*dirNode)(nil))

// Rename copies server-side, then deletes the source: a file with one
// CopyObject (in parts above 5 GiB), a directory key by key.
func (d *dirNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) (errno syscall.Errno) {
	defer d.changedIfOK(&errno)
	if dst, ok := newParent.(*dirNode); ok && dst != d {
		defer dst.changedIfOK(&errno)
	}
	if flags&renameExchange != 0 {
		return syscall.ENOTSUP
	}
	dst, ok := newParent.(*dirNode)
	if !ok {
		return syscall.EXDEV
	}
	dstKey, errno := dst.childKey(newName)
	if errno != 0 {
		return errno
	}
	if child := d.GetChild(name); child != nil {
		if _, isDir := child.Operations().(*dirNode); isDir {
			return d.fs.renameDir(ctx, child, dstKey+"/", flags)
		}
	}
	srcKey, node, ok := d.childFileKey(name)
	if !ok {
		return syscall.ENOENT
	}
	if flags&renameNoReplace != 0 {
		if _, err := d.fs.bucket.Head(ctx, dstKey); err == nil {
			return d.fs.errno("rename", dstKey, nameTaken(errors.New("S3 has it")))
		}
	}
	var local *localFile
	if node != nil {
		// A file still being written moves with its latest content.
		local = node.current()
		if errno := node.flushLocal(ctx, local); errno != 0 {
			return errno
		}
	}
	obj, err := d.fs.bucket.Head(ctx, srcKey)
	if err != nil {
		return d.fs.errno("rename", srcKey, err)
	}
	moved, err := d.fs.move(ctx, obj, dstKey, flags&renameNoReplace != 0, true)
	if errors.Is(err, backend.ErrPrecondition) && flags&renameNoReplace != 0 {
		err = nameTaken(err) // created meanwhile by another client
	}
	if err != nil {
		return d.fs.errno("rename", srcKey, err)
	}
	if local != nil {
		local.moved(dstKey, moved.ETag) // later uploads replace the copy
	} else if replaced := d.fs.localAt(dstKey); replaced != nil {
		replaced.unlinked() // renamed over
	}
	if old := dst.GetChild(newName); old != nil {
		if fn, ok := old.Operations().(*fileNode); ok && fn != node {
			fn.markUnlinked() // renamed over
		}
	}
	return 0
}

// move copies obj to dst, conditional on obj's version (and, with
// noReplace, on dst being free), then deletes it. The copy keeps the
// storage class and encryption, which S3 would not. What is renamed
// itself (not a file moved with its directory) gets a new ctime, on an
// object that carries POSIX headers, in the same copy.
func (f *filesystem) move(ctx context.Context, obj backend.Object, dst string, noReplace, renamed bool) (backend.Object, error) {
	if obj.Key == dst {
		return obj, nil
	}
	if !obj.HasHeaders {
		var err error
		if obj, err = f.headers(ctx, obj.Key); err != nil {
			return obj, err
		}
	}
	class := obj.StorageClass
	if class == "STANDARD" {
		class = ""
	}
	in := backend.CopyInput{Src: obj.Key, Dst: dst, SrcETag: obj.ETag, SrcSize: obj.Size,
		StorageClass: class, SSE: obj.SSE, SSEKMSKeyID: obj.SSEKMSKeyID, DstIfNoneMatch: noReplace}
	contentType := obj.ContentType
	ct, newType := renamedContentType(obj.ContentType, obj.Key, dst)
	if newType && objectKind(obj) == kindFile {
		// The same copy writes the new type, with every other header.
		in.ReplaceHeaders, in.ContentType, in.Metadata = true, ct, obj.Metadata
		contentType = ct
	}
	if renamed && hasPOSIXHeaders(obj) {
		h := f.headersOf(objectKind(obj), obj)
		h.changed(time.Now())
		in.ReplaceHeaders, in.ContentType, in.Metadata = true, contentType, h.metadata()
	}
	copied, err := f.bucket.Copy(ctx, in)
	if err != nil {
		return copied, err
	}
	return copied, f.bucket.Delete(ctx, obj.Key)
}

// listAll returns every object under prefix, at any depth.
func (f *filesystem) listAll(ctx context.Context, prefix string) ([]backend.Object, error) {
	var objects []backend.Object
	in := backend.ListInput{Prefix: prefix}
	for {
		page, err := f.bucket.List(ctx, in)
		if err != nil {
			return nil, err
		}
		objects = append(objects, f.withoutDeleted(page).Objects...)
		if page.NextToken == "" {
			return objects, nil
		}
		in.Token = page.NextToken
	}
}
