package fs

import (
	"context"
	"errors"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sync/errgroup"

	"github.com/bucketfs/bucketfs/backend"
)

// A directory rename moves its keys one by one (S3 has no rename), so it
// is not atomic: stopped halfway (a failed copy, a crash), some files are
// in the new place and the rest in the old one. What it guarantees:
//   - a file is copied (conditional on its version) before its source is
//     deleted, so no file is lost, and after a rename that succeeded no key
//     is left in both places;
//   - the target's marker, written first, names the source
//     (x-amz-meta-bucketfs-rename-from), so repeating the same mv finishes
//     the rename even though the target is no longer empty; the source's
//     own marker moves last and replaces it (an implicit source leaves
//     none).

// renameFromHeader names the source of a directory rename under way.
const renameFromHeader = "bucketfs-rename-from"

// renameDir moves every key under the directory node src to dstPrefix.
// An existing target directory must be empty, or the unfinished target
// of this same rename; it is replaced.
func (f *filesystem) renameDir(ctx context.Context, src *gofs.Inode, dstPrefix string, flags uint32) syscall.Errno {
	srcPrefix, ok := f.dirPrefix(src)
	if !ok {
		return syscall.ENOENT
	}
	if strings.HasPrefix(dstPrefix, srcPrefix) {
		return syscall.EINVAL // into itself
	}
	resuming, errno := f.prepareRenameTarget(ctx, srcPrefix, dstPrefix, flags)
	if errno != 0 {
		return errno
	}
	if !resuming {
		h := f.newHeaders(syscall.S_IFDIR|f.owner.dirMode, f.owner.uid, f.owner.gid, "")
		h.user[renameFromHeader] = srcPrefix
		if _, err := f.putEmpty(ctx, dstPrefix, h, false); err != nil {
			return f.errno("rename", dstPrefix, err)
		}
	}
	objects, err := f.listAll(ctx, srcPrefix)
	if err != nil {
		return f.errno("rename", srcPrefix, err)
	}
	var marker *backend.Object
	files := objects[:0:0]
	for i := range objects {
		if objects[i].Key == srcPrefix {
			marker = &objects[i]
		} else {
			files = append(files, objects[i])
		}
	}
	etags, err := f.moveAll(ctx, files, srcPrefix, dstPrefix)
	if err == nil {
		if marker != nil {
			_, err = f.move(ctx, *marker, dstPrefix, false, true)
		} else {
			err = f.bucket.Delete(ctx, dstPrefix)
		}
	}
	// Local files under the directory move with it, those S3 has on the
	// version their copy has: their next upload replaces it.
	for key, l := range f.localsUnder(srcPrefix) {
		if etag, ok := etags[key]; ok || err == nil {
			l.moved(dstPrefix+strings.TrimPrefix(key, srcPrefix), etag)
		}
	}
	if err != nil {
		return f.errno("rename", srcPrefix, err)
	}
	f.removedDirIfDeleting(srcPrefix)
	return 0
}

// prepareRenameTarget checks the target of a directory rename: missing,
// empty (its marker is deleted), or the unfinished target of a rename of
// the same source (resuming).
func (f *filesystem) prepareRenameTarget(ctx context.Context, srcPrefix, dstPrefix string, flags uint32) (resuming bool, errno syscall.Errno) {
	exists, err := f.hasDir(ctx, dstPrefix)
	if err != nil || !exists {
		return false, f.errno("rename", dstPrefix, err)
	}
	if marker, err := f.freshHeaders(ctx, dstPrefix); err == nil && marker.Metadata[renameFromHeader] == srcPrefix {
		return true, 0
	}
	if flags&renameNoReplace != 0 {
		return false, f.errno("rename", dstPrefix, nameTaken(errors.New("the directory exists")))
	}
	empty, err := f.isEmptyDir(ctx, dstPrefix)
	if err != nil {
		return false, f.errno("rename", dstPrefix, err)
	}
	if !empty {
		return false, f.errno("rename", dstPrefix, errNotEmpty)
	}
	return false, f.errno("rename", dstPrefix, f.bucket.Delete(ctx, dstPrefix))
}

// moveAll moves objects from under srcPrefix to under dstPrefix, a few at
// once, and returns the ETags of the copies made, by source key.
func (f *filesystem) moveAll(ctx context.Context, objects []backend.Object, srcPrefix, dstPrefix string) (map[string]string, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(renameConcurrency)
	moved := make([]string, len(objects))
	for i, obj := range objects {
		g.Go(func() error {
			copied, err := f.move(gctx, obj, dstPrefix+strings.TrimPrefix(obj.Key, srcPrefix), false, false)
			moved[i] = copied.ETag
			return err
		})
	}
	err := g.Wait()
	etags := map[string]string{}
	for i, obj := range objects {
		if moved[i] != "" {
			etags[obj.Key] = moved[i]
		}
	}
	return etags, err
}
