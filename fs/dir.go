package fs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/cache"
)

// dirNode is a directory: a key prefix ("" or the mount's prefix for the
// root, else ending in "/"). It exists through a marker object, an s3fs
// marker, or any key below it.
type dirNode struct {
	gofs.Inode
	fs         *filesystem
	bucketRoot bool // a bucket's directory in an --all-buckets mount

	// changedAt is when this mount last created, removed or renamed an
	// entry here: the directory's mtime and ctime from then on, kept in
	// memory only (storing them would rewrite the marker at every create).
	mu        sync.Mutex
	changedAt time.Time
}

// changedIfOK records, when *errno is 0, that an entry of d was created,
// removed or renamed now.
func (d *dirNode) changedIfOK(errno *syscall.Errno) {
	if *errno != 0 {
		return
	}
	d.mu.Lock()
	d.changedAt = time.Now()
	d.mu.Unlock()
}

// showChanges moves the times in out to the last change of d's entries.
func (d *dirNode) showChanges(out *fuse.Attr) {
	d.mu.Lock()
	at := d.changedAt
	d.mu.Unlock()
	if at.IsZero() {
		return
	}
	mtime, ctime := time.Unix(int64(out.Mtime), int64(out.Mtimensec)), time.Unix(int64(out.Ctime), int64(out.Ctimensec))
	if at.After(mtime) {
		mtime = at
	}
	if at.After(ctime) {
		ctime = at
	}
	out.SetTimes(nil, &mtime, &ctime)
}

// top tells whether d is its bucket's root.
func (d *dirNode) top() bool { return isTop(&d.Inode) }

// prefix is the directory's key prefix, from its place in the tree.
func (d *dirNode) prefix() (string, bool) { return d.fs.dirPrefix(&d.Inode) }

// entry is what a name in a directory resolved to.
type entry struct {
	kind     kind
	key      string         // object key of a file; prefix of a directory
	obj      backend.Object // the object (a directory's marker, if any)
	shadowed bool           // a file shown as NAME.__file__
	local    *localFile     // the local copy of a file this mount holds
}

// resolve finds what key is: a directory (dir wins over a file of the same
// name), a file, or nothing (ErrNotFound).
func (f *filesystem) resolve(ctx context.Context, key string, probe bool) (entry, error) {
	if l := f.localAt(key); l != nil {
		// What this mount holds is newer than anything S3 can say, and
		// may not be in S3 at all (pending).
		return entry{kind: kindFile, key: key, local: l}, nil
	}
	// A directory wins its name (a file of the same name shows as
	// NAME.__file__), so the listing is asked first, and the object only
	// when nothing lies under the name: `ls dir` costs one LIST and `cat
	// dir/file` a LIST and a GET, with no HEAD of "dir". What the cached
	// listing of the parent says answers both without a request.
	ahead, _ := f.cfg.Bucket.(lookAheader)
	var probing *cache.Probing
	if probe && ahead != nil && !f.isDeleted(key) && !f.isRemovedDir(parentPrefix(key)) {
		// Is it a file? asked along with the listing that tells whether
		// it is a directory, as a GET of its first bytes for the open
		// that usually follows (nil when the cache knows).
		probing = ahead.Probe(key)
	}
	isDir, listErr := f.hasDir(ctx, key+"/")
	if errors.Is(listErr, backend.ErrInvalid) {
		// Some servers refuse to list a prefix that cannot be a key (a
		// 255-byte name plus "/" is one byte too long for MinIO): then
		// nothing is under it.
		isDir, listErr = false, nil
	}
	if listErr != nil {
		return entry{}, listErr
	}
	if isDir {
		return f.dirEntry(ctx, key+"/")
	}
	if f.isDeleted(key) || f.isRemovedDir(parentPrefix(key)) {
		return entry{}, notFoundErr(key)
	}
	var obj backend.Object
	var headErr error
	if probing != nil {
		obj, headErr = probing.Wait(ctx)
	} else {
		obj, headErr = f.bucket.Head(ctx, key)
	}
	if headErr == nil && !obj.HasHeaders {
		// What a plain S3 listing says may not be enough: only the headers
		// tell a symlink, a mode or an s3fs directory object.
		obj, headErr = f.shownHeaders(ctx, key)
	}
	if headErr == nil {
		k := objectKind(obj)
		if k == kindDir {
			return entry{kind: kindDir, key: key + "/", obj: obj}, nil
		}
		return entry{kind: k, key: key, obj: obj}, nil
	}
	if !isNotFound(headErr) {
		return entry{}, headErr
	}
	legacy, err := f.bucket.Head(ctx, key+legacyDirSuffix)
	if errors.Is(err, backend.ErrInvalid) {
		err = notFoundErr(key) // a name too long to have a legacy marker
	}
	if err != nil {
		return entry{}, err
	}
	return entry{kind: kindDir, key: key + "/", obj: legacy}, nil
}

// dirEntry describes the directory prefix, with its marker's headers when
// there is a marker.
func (f *filesystem) dirEntry(ctx context.Context, prefix string) (entry, error) {
	marker, err := f.shownHeaders(ctx, prefix)
	if err != nil && !isNotFound(err) {
		return entry{}, err
	}
	if err != nil {
		marker = backend.Object{}
	}
	return entry{kind: kindDir, key: prefix, obj: marker}, nil
}

// newChild makes the node for e, named name under parent, and fills out.
func (f *filesystem) newChild(ctx context.Context, parent *gofs.Inode, name string, e entry, out *fuse.EntryOut) *gofs.Inode {
	if e.local != nil {
		e.local.attr(&out.Attr)
	} else {
		f.owner.attrOf(e.kind, e.obj, &out.Attr)
	}
	var node gofs.InodeEmbedder
	switch e.kind {
	case kindDir:
		node = &dirNode{fs: f}
	case kindSymlink:
		node = &symlinkNode{fs: f}
	default:
		node = &fileNode{fs: f, shadowed: e.shadowed, local: e.local}
	}
	attr := childAttr(parent, name, e.kind)
	if old := parent.GetChild(name); old != nil {
		switch o := old.Operations().(type) {
		case *fileNode:
			if o.readsOtherThan(e) {
				attr = gofs.StableAttr{Mode: uint32(e.kind)} // a new node: see readsOtherVersion
			} else {
				o.showInMemory(&out.Attr)
			}
		case *dirNode:
			o.showChanges(&out.Attr)
		}
	}
	child := parent.NewInode(ctx, node, attr)
	if fn, ok := child.Operations().(*fileNode); ok && e.local != nil {
		fn.attach(e.local) // the kernel already knew the node
	}
	return child
}

// childAttr numbers a node for name under parent: the number the kernel
// already knows for that child, else a new one from go-fuse. Numbers are
// not derived from keys: a key freed by a rename is taken by a new file
// while the renamed node still lives, and go-fuse identifies nodes by
// number.
func childAttr(parent *gofs.Inode, name string, k kind) gofs.StableAttr {
	if old := parent.GetChild(name); old != nil && old.StableAttr().Mode == uint32(k) {
		return old.StableAttr()
	}
	return gofs.StableAttr{Mode: uint32(k)}
}

var _ = (gofs.NodeLookuper)((*dirNode)(nil))

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return d.lookup(ctx, name, out, true)
}

// lookup is Lookup; probe is false for a name a listing just showed as a
// directory, which needs no GET to tell whether it is a file.
func (d *dirNode) lookup(ctx context.Context, name string, out *fuse.EntryOut, probe bool) (*gofs.Inode, syscall.Errno) {
	if len(name) > maxNameLen {
		return nil, syscall.ENAMETOOLONG
	}
	if !validName(name) {
		return nil, syscall.ENOENT
	}
	prefix, ok := d.prefix()
	if !ok {
		return nil, syscall.ENOENT
	}
	key := prefix + name
	if len(key) > maxKeyLen {
		return nil, syscall.ENAMETOOLONG
	}
	e, err := d.fs.resolve(ctx, key, probe)
	if isNotFound(err) {
		if base, ok := unshadow(name); ok {
			e, err = d.fs.lookupShadowed(ctx, prefix+base)
		}
	}
	if err != nil && d.fs.offlineMissing(key, err) {
		out.SetEntryTimeout(0) // not known to be missing: ask again next time
		return nil, syscall.ENOENT
	}
	if err != nil {
		return nil, d.fs.errno("lookup", key, err)
	}
	return d.fs.newChild(ctx, d.EmbeddedInode(), name, e, out), 0
}

// lookAheader is implemented by caches (cache.Meta) that can start what a
// path's lookups will need before they need it.
type lookAheader interface {
	Probe(key string) *cache.Probing
	TakeFirstBytes(key, etag string) (cache.FirstBytes, bool)
}

// offlineCache is implemented by caches (cache.Meta) that remember what
// they saw, for the time the server cannot be reached.
type offlineCache interface {
	StaleListing(prefix string) (backend.ListPage, bool)
	LastSeenMissing(key string) bool
}

// offlineMissing tells whether a lookup that failed because the server is
// unreachable may say "no such file": the last listing of the directory
// did not have the name. A file can then be created while the server is
// down; its upload, pending until the server is back, is conditional on
// the name being free, so it never replaces a file that appeared
// meanwhile. A name the mount knows nothing about fails with EIO.
func (f *filesystem) offlineMissing(key string, err error) bool {
	c, ok := f.cfg.Bucket.(offlineCache)
	return ok && errors.Is(err, backend.ErrUnavailable) && c.LastSeenMissing(key)
}

// lookupShadowed finds the file key that a directory of the same name hides.
func (f *filesystem) lookupShadowed(ctx context.Context, key string) (entry, error) {
	obj, err := f.bucket.Head(ctx, key)
	if err != nil {
		return entry{}, err
	}
	isDir, err := f.hasDir(ctx, key+"/")
	if err != nil {
		return entry{}, err
	}
	if !isDir || objectKind(obj) == kindDir {
		return entry{}, notFoundErr(key)
	}
	return entry{kind: objectKind(obj), key: key, obj: obj, shadowed: true}, nil
}

// listDir returns one directory level whole, page after page (the cache
// answers with one page; a bucket itself stops at 1,000 keys).
func (f *filesystem) listDir(ctx context.Context, prefix string) (backend.ListPage, error) {
	in := backend.ListInput{Prefix: prefix, Delimiter: "/"}
	var all backend.ListPage
	for {
		page, err := f.bucket.List(ctx, in)
		if err != nil {
			return backend.ListPage{}, err
		}
		page = f.withoutDeleted(page)
		all.Objects = append(all.Objects, page.Objects...)
		all.Prefixes = append(all.Prefixes, page.Prefixes...)
		if page.NextToken == "" {
			return all, nil
		}
		in.Token = page.NextToken
	}
}

// withLocals adds to a directory's entries the files this mount holds
// locally there (pending ones are not in S3 yet), and the directories
// that hold such files deeper down.
func (f *filesystem) withLocals(prefix string, entries []fuse.DirEntry) []fuse.DirEntry {
	locals := f.localsUnder(prefix)
	if len(locals) == 0 {
		return entries
	}
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Name] = true
	}
	for key, l := range locals {
		if !l.live() {
			continue
		}
		name := strings.TrimPrefix(key, prefix)
		mode := uint32(syscall.S_IFREG)
		if dir, _, ok := strings.Cut(name, "/"); ok {
			name, mode = dir, syscall.S_IFDIR
		}
		if validName(name) && !have[name] {
			have[name] = true
			entries = append(entries, fuse.DirEntry{Name: name, Mode: mode})
		}
	}
	return entries
}

// dirEntries turns one complete listing into directory entries: common
// prefixes and s3fs markers become directories, the directory's own marker
// and names that cannot be paths are left out, and a file hidden by a
// directory of the same name is shown under its shadowed name.
func dirEntries(prefix string, page backend.ListPage) []fuse.DirEntry {
	dirs := map[string]bool{}
	var out []fuse.DirEntry
	addDir := func(name string) {
		if validName(name) && !dirs[name] {
			dirs[name] = true
			out = append(out, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR})
		}
	}
	for _, p := range page.Prefixes {
		addDir(strings.TrimSuffix(p[len(prefix):], "/"))
	}
	for _, obj := range page.Objects {
		if name, ok := strings.CutSuffix(obj.Key[len(prefix):], legacyDirSuffix); ok {
			addDir(name)
		}
	}
	keys := map[string]bool{}
	for _, obj := range page.Objects {
		keys[obj.Key[len(prefix):]] = true
	}
	for _, obj := range page.Objects {
		name := obj.Key[len(prefix):]
		if strings.HasSuffix(name, legacyDirSuffix) || !validName(name) {
			continue
		}
		k := objectKind(obj)
		if k == kindDir {
			addDir(name)
			continue
		}
		if dirs[name] {
			name = shadowedName(name)
			if keys[name] || dirs[name] {
				// A key already has the shadowed name, and a lookup finds
				// that key first: this file stays hidden (found by
				// FuzzDirEntries).
				continue
			}
		}
		out = append(out, fuse.DirEntry{Name: name, Mode: uint32(k)})
	}
	return out
}

var _ = (gofs.NodeGetattrer)((*dirNode)(nil))

func (d *dirNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	var marker backend.Object
	switch prefix, ok := d.prefix(); {
	case ok && prefix != "":
		e, err := d.fs.dirEntry(ctx, prefix)
		if err != nil {
			return d.fs.errno("getattr", prefix, err)
		}
		marker = e.obj
	case ok:
		d.fs.mu.Lock()
		marker = d.fs.rootMarker
		d.fs.mu.Unlock()
	}
	d.fs.owner.attrOf(kindDir, marker, &out.Attr)
	d.showChanges(&out.Attr)
	return 0
}

var _ = (gofs.NodeStatfser)((*dirNode)(nil))

func (d *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	statfs(out)
	return 0
}

// statfs reports a huge, empty filesystem, as s3fs does.
func statfs(out *fuse.StatfsOut) {
	const blocks = 1 << 40 // 4 PiB of 4 KiB blocks
	out.Bsize, out.Frsize, out.NameLen = 4096, 4096, maxNameLen
	out.Blocks, out.Bfree, out.Bavail = blocks, blocks, blocks
	out.Files, out.Ffree = 1<<32, 1<<32
}
