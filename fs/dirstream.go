package fs

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/cache"
)

// A directory is read through a handle that lists it a page at a time:
// a small one (or one whose listing is cached) arrives whole, a big one is
// shown while it is still being listed and is never held whole, so that a
// directory of a million keys costs the memory of a few pages. The
// entries of a big one are turned into names in segments that no later
// key can change: everything a name's entry depends on (a directory of
// the same name, an s3fs marker, the name a shadowed file is shown under)
// sorts within a short distance after the name (segmentEnd).

// pager is implemented by caches (cache.Meta) that list a directory page
// by page.
type pager interface {
	Pages(prefix string) *cache.Pages
	Capacity() int // entries the cache holds (--cache-entries)
}

// minSegment is how many keys a segment gathers before it may end: a
// segment is one dirEntries call.
const minSegment = 256

var (
	_ = (gofs.NodeOpendirHandler)((*dirNode)(nil))
	_ = (gofs.FileReaddirenter)((*dirHandle)(nil))
	_ = (gofs.FileLookuper)((*dirHandle)(nil))
	_ = (gofs.FileSeekdirer)((*dirHandle)(nil))
	_ = (gofs.FileReleasedirer)((*dirHandle)(nil))
)

func (d *dirNode) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return &dirHandle{d: d}, 0, 0
}

// dirHandle is an open directory. Its fields are guarded by mu; go-fuse
// calls it for one request at a time, but a lookup may come meanwhile.
type dirHandle struct {
	d  *dirNode
	mu sync.Mutex

	started, done bool
	prefix        string
	pages         *cache.Pages // nil when the bucket lists whole
	out           []fuse.DirEntry
	returned      uint64 // entries returned so far, the offset of the next

	// While a big directory streams: the keys of the segment being
	// gathered, the last key their entries depend on, the local files not
	// shown yet, and the file entries of the last two pages for the
	// lookups of READDIRPLUS (nil for a whole listing: the cached listing
	// answers those).
	seg           backend.ListPage
	segEnd        string
	minSegment    int // minSegment unless a test sets it
	locals        map[string]uint32
	shown, before map[string]entry
	bareIsEnough  *bool            // a listing's objects without headers can be shown as they are
	sample        []backend.Object // with headers: what bareIsEnough was decided on
	// linked counts the entries READDIRPLUS gave the kernel a node for;
	// past the cache's capacity the rest come as names only, since the
	// kernel keeps every node it was given (and the mount its state)
	// until it forgets it.
	linked, maxLinked int
}

// Readdirent returns the next entry, listing the next page when it needs
// one; nil at the end.
func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.out) == 0 && !h.done {
		if errno := h.fill(ctx); errno != 0 {
			return nil, errno
		}
	}
	if len(h.out) == 0 {
		return nil, 0
	}
	e := h.out[0]
	h.out = h.out[1:]
	h.returned++
	e.Off = h.returned
	if child := h.d.GetChild(e.Name); child != nil && e.Ino == 0 {
		// The number of a child the kernel knows; else go-fuse reports it
		// unknown (numbers are go-fuse's, not derived from keys).
		e.Ino = child.StableAttr().Ino
	}
	return &e, 0
}

// Seekdir starts over (rewinddir) and skips to entry off: a listing
// cannot be resumed from the middle.
func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	h.mu.Lock()
	h.closePages()
	h.started, h.done, h.pages, h.out, h.returned = false, false, nil, nil, 0
	h.seg, h.segEnd, h.locals, h.shown, h.before, h.bareIsEnough, h.sample = backend.ListPage{}, "", nil, nil, nil, nil, nil
	h.linked = 0
	h.mu.Unlock()
	for range off {
		e, errno := h.Readdirent(ctx)
		if errno != 0 {
			return errno
		}
		if e == nil {
			return syscall.EINVAL
		}
	}
	return 0
}

// Releasedir lets go of a page asked for ahead.
func (h *dirHandle) Releasedir(ctx context.Context, releaseFlags uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closePages()
}

// closePages ends the listing under way. Called with mu held.
func (h *dirHandle) closePages() {
	if h.pages != nil {
		h.pages.Close()
	}
}

// Lookup answers READDIRPLUS's lookup of an entry just returned: from the
// page it came in, for a file of a big directory, else as any lookup.
func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	f := h.d.fs
	h.mu.Lock()
	e, ok := h.shown[name]
	if !ok {
		e, ok = h.before[name]
	}
	if h.maxLinked > 0 && h.linked >= h.maxLinked {
		h.mu.Unlock()
		return nil, syscall.EAGAIN // a name only: the kernel looks it up when it needs it
	}
	h.linked++
	bareIsEnough := h.bareIsEnough != nil && *h.bareIsEnough
	h.mu.Unlock()
	dir := ok && e.kind == kindDir
	if (!ok || dir) && f.namesOnly(h.prefix+name) {
		return nil, syscall.EAGAIN // a name only, until a stat looks it up
	}
	if dir {
		return h.d.lookup(ctx, name, out, false)
	}
	if !ok || f.localAt(e.key) != nil || f.isDeleted(e.key) {
		return h.d.Lookup(ctx, name, out)
	}
	if !e.obj.HasHeaders && !bareIsEnough {
		// The page said it is a file; only its headers are missing.
		full, err := f.headers(ctx, e.key)
		if err != nil || full.ETag != e.obj.ETag {
			return h.d.Lookup(ctx, name, out)
		}
		e.kind, e.obj = objectKind(full), full
		if e.kind == kindDir {
			return h.d.Lookup(ctx, name, out)
		}
	}
	return f.newChild(ctx, h.d.EmbeddedInode(), name, e, out), 0
}

// fill lists the next page. Called with mu held.
func (h *dirHandle) fill(ctx context.Context) syscall.Errno {
	f := h.d.fs
	first := !h.started
	if first {
		prefix, ok := h.d.prefix()
		if !ok {
			h.done = true
			return 0
		}
		h.started, h.prefix = true, prefix
		// As on every local filesystem (ls -a, and tools that count on
		// them); the kernel answers lookups of these names itself.
		h.out = append(h.out, fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: h.d.StableAttr().Ino},
			fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR})
		if p, ok := f.cfg.Bucket.(pager); ok {
			h.pages, h.maxLinked = p.Pages(prefix), p.Capacity()
		}
		// The local files before the listing: one whose upload lands
		// meanwhile, and whose copy is let go, is then in the one or the
		// other (it was missing from both, found by posixtest.DirSeek).
		h.locals = map[string]uint32{}
		for _, e := range f.withLocals(prefix, nil) {
			h.locals[e.Name] = e.Mode
		}
	}
	page, last, err := h.nextPage(ctx, first)
	if first && !last && err == nil {
		page, last, err = h.firstPages(ctx, page)
	}
	if err != nil {
		return f.errno("readdir", h.prefix, err)
	}
	page = f.withoutDeleted(page)
	if first && last {
		// Whole: as it always was.
		h.flushWhole(page)
		h.keepSample()
		return 0
	}
	// Every entry returned before this page has had its lookup, but for
	// the last one, which a full reply may hold back for the next.
	h.before, h.shown = h.shown, map[string]entry{}
	h.gather(page)
	if last {
		h.flush()
		h.out = append(h.out, h.unlistedLocals()...)
		h.done = true
		h.keepSample()
	}
	return 0
}

// firstPages returns what fill shows first of a directory of more than
// one page: its first page, so that its entries go out while the server
// lists the rest; or, where
// those would need a HEAD each, the whole listing, which the lookups then
// prefetch in parallel. A directory bigger than the cache can hold always
// streams. Called with mu held.
func (h *dirHandle) firstPages(ctx context.Context, page backend.ListPage) (backend.ListPage, bool, error) {
	h.decideBare(ctx, page)
	if *h.bareIsEnough || !slices.ContainsFunc(page.Objects, func(o backend.Object) bool { return !o.HasHeaders }) {
		return page, false, nil
	}
	page = backend.ListPage{Objects: slices.Clone(page.Objects), Prefixes: slices.Clone(page.Prefixes)}
	last := false
	for !last && h.pages.Gathering() {
		next, end, err := h.pages.Next(ctx)
		if err != nil {
			return page, false, err
		}
		page.Objects = append(page.Objects, next.Objects...)
		page.Prefixes = append(page.Prefixes, next.Prefixes...)
		last = end
	}
	return page, last, nil
}

// keepSample gives the cache the sample the first page was judged by,
// for the lookups that follow. Called with mu held.
func (h *dirHandle) keepSample() {
	if sampler, ok := h.d.fs.cfg.Bucket.(headerSampler); ok && len(h.sample) > 0 {
		sampler.KeepSample(h.prefix, h.sample)
	}
}

// flushWhole turns a whole listing into entries, the local files it
// lacks added. Called with mu held.
func (h *dirHandle) flushWhole(page backend.ListPage) {
	h.d.fs.noteACLs(page.Objects)
	entries := dirEntries(h.prefix, page)
	for _, e := range entries {
		delete(h.locals, e.Name)
	}
	h.out = append(h.out, byName(append(entries, h.unlistedLocals()...))...)
	h.done = true
}

// unlistedLocals are the local files no listed entry showed. Called with
// mu held.
func (h *dirHandle) unlistedLocals() []fuse.DirEntry {
	var out []fuse.DirEntry
	for name, mode := range h.locals {
		out = append(out, fuse.DirEntry{Name: name, Mode: mode})
	}
	return byName(out)
}

// nextPage returns the next page of the listing, and whether it is the
// last. Called with mu held.
func (h *dirHandle) nextPage(ctx context.Context, first bool) (backend.ListPage, bool, error) {
	f := h.d.fs
	if h.pages == nil {
		page, err := f.listDir(ctx, h.prefix)
		return page, true, err
	}
	page, last, err := h.pages.Next(ctx)
	if c, ok := f.cfg.Bucket.(offlineCache); ok && first && errors.Is(err, backend.ErrUnavailable) {
		// Unreachable: what the mount last saw, and what it holds itself.
		f.errno("readdir", h.prefix, err)
		page, _ = c.StaleListing(h.prefix)
		return page, true, nil
	}
	return page, last, err
}

// gather adds a page's keys to the segment, ending segments where no
// later key can change their entries. Called with mu held.
func (h *dirHandle) gather(page backend.ListPage) {
	keys := make([]string, 0, len(page.Objects)+len(page.Prefixes))
	objects := map[string]backend.Object{}
	for _, obj := range page.Objects {
		keys = append(keys, obj.Key)
		objects[obj.Key] = obj
	}
	keys = append(keys, page.Prefixes...)
	slices.Sort(keys)
	for _, key := range keys {
		if len(h.seg.Objects)+len(h.seg.Prefixes) >= cmp.Or(h.minSegment, minSegment) && key > h.segEnd {
			h.flush()
		}
		if obj, ok := objects[key]; ok {
			h.seg.Objects = append(h.seg.Objects, obj)
		} else {
			h.seg.Prefixes = append(h.seg.Prefixes, key)
		}
		h.segEnd = max(h.segEnd, segmentEnd(h.prefix, key))
	}
}

// segmentEnd is the last key that can change the entry of key: entries
// depend on one another only between the keys of one name, which all
// start with it — the file, the directory (NAME/), its s3fs marker
// (NAME_$folder$), and the name a shadowed file is shown under with its
// own directory and marker.
func segmentEnd(prefix, key string) string {
	name := strings.TrimSuffix(key[len(prefix):], "/")
	name = strings.TrimSuffix(name, legacyDirSuffix)
	base := prefix + name
	shadow := prefix + shadowedName(name)
	return max(base+"/", base+legacyDirSuffix, shadow+"/", shadow+legacyDirSuffix)
}

// flush turns the gathered segment into entries. Called with mu held.
func (h *dirHandle) flush() {
	seg := h.seg
	h.seg = backend.ListPage{}
	if len(seg.Objects)+len(seg.Prefixes) == 0 {
		return
	}
	h.d.fs.noteACLs(seg.Objects)
	objects := map[string]backend.Object{}
	for _, obj := range seg.Objects {
		objects[obj.Key] = obj
	}
	entries := byName(dirEntries(h.prefix, seg))
	for _, e := range entries {
		delete(h.locals, e.Name)
		if e.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			// A directory's lookup asks for its marker, and no GET of
			// its name.
			h.shown[e.Name] = entry{kind: kindDir, key: h.prefix + e.Name + "/"}
			continue
		}
		key, shadowed := h.prefix+e.Name, false
		obj, ok := objects[key]
		if !ok {
			base, _ := unshadow(e.Name)
			key, shadowed = h.prefix+base, true
			obj, ok = objects[key]
		}
		if ok {
			h.shown[e.Name] = entry{kind: objectKind(obj), key: key, obj: obj, shadowed: shadowed}
		}
	}
	h.out = append(h.out, entries...)
}

// decideBare decides, at the first page of a big directory, whether its
// objects that came without headers are shown as they are, by the rule of
// --posix-metadata. Called with mu held.
func (h *dirHandle) decideBare(ctx context.Context, page backend.ListPage) {
	f := h.d.fs
	enough := false
	switch f.cfg.PosixMetadata {
	case "never":
		enough = true
	case "auto":
		var bare []backend.Object
		for _, obj := range page.Objects {
			if !obj.HasHeaders {
				bare = append(bare, obj)
			}
		}
		if n := len(bare); n > 3 {
			bare = []backend.Object{bare[0], bare[n/2], bare[n-1]}
		}
		enough = true
		for _, obj := range bare {
			full, err := f.headers(ctx, obj.Key)
			if err != nil {
				enough = false
				break
			}
			h.sample = append(h.sample, full)
			if hasPOSIXHeaders(full) {
				enough = false
				break
			}
		}
		if sampler, ok := f.cfg.Bucket.(headerSampler); ok && !enough {
			// The pages still to come carry the headers, where the server
			// can list them; this one's objects get a HEAD each.
			sampler.ListHeaders(ctx, h.prefix)
		}
	}
	h.bareIsEnough = &enough
}

// byName sorts entries by name, so that every listing of a directory
// gives the same order whatever this mount holds locally: a seekdir
// offset then finds the same entry (a file shown from its local copy
// came last, and moved once S3 listed it; found by posixtest.DirSeek on
// versitygw).
func byName(entries []fuse.DirEntry) []fuse.DirEntry {
	slices.SortFunc(entries, func(a, b fuse.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	return entries
}
