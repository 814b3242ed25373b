// Package cache holds bucketfs's caches: a metadata cache that decorates a
// backend.Bucket, and the read-ahead reader that serves file reads.
package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/bucketfs/bucketfs/backend"
)

// MetaOptions configure a metadata cache.
type MetaOptions struct {
	TTL         time.Duration    // age bound of anything positive (--stat-ttl)
	NegativeTTL time.Duration    // age bound of "does not exist" (--negative-ttl)
	Entries     int              // LRU capacity in objects (--cache-entries)
	Now         func() time.Time // injected clock; time.Now when nil
	// HeaderPrefetch is how many HEADs may run at once to fetch the headers
	// of objects that a listing returned without them (plain S3 listings);
	// 0 fetches them only when asked.
	HeaderPrefetch int
	// MaxListing is the most entries a directory may have to be cached as
	// one listing; 0 means a quarter of Entries. A bigger one is read page
	// by page each time (Pages), so memory never grows with its size.
	MaxListing int
	// PlainListings lists without headers, flat walks included, until
	// ListHeaders or a walk's sample turns them on (--posix-metadata auto
	// or never): most buckets hold objects that other tools wrote, with no
	// POSIX headers to list.
	PlainListings bool
	// POSIXHeaders, if set, tells whether an object's headers carry POSIX
	// attributes. A walk listed without headers then samples a few of its
	// directories with it, and marks its listings names-only if they hold
	// none (NamesOnly).
	POSIXHeaders func(backend.Object) bool
}

// maxHeaderPrefetch bounds the HEADs one listing may start ahead of use.
const maxHeaderPrefetch = 10000

// Meta is a backend.Bucket that answers Head, List and HasPrefix from memory
// when it can. A complete one-level listing of a directory answers, while
// fresh, every Head and HasPrefix below that directory level, so `ls -l`
// costs one listing and no HEAD per entry. Objects that came from a listing
// have HasHeaders false: callers that need headers must ask Fresh.
//
// Writes through Meta keep the cache coherent with what this client did;
// changes by other clients are seen once entries age past the TTLs.
type Meta struct {
	next backend.Bucket
	opts MetaOptions

	objects  *lru.Cache[string, objectEntry] // key -> object or not-found
	listings *lru.Cache[string, *listing]    // prefix -> complete listing
	// listed counts the entries the cached listings held when stored:
	// together they hold at most Entries.
	listed atomic.Int64
	// firstPages keeps the first page of a big directory's listing, fetched
	// by a lookup, for the listing that usually follows.
	firstPages *lru.Cache[string, firstPage]
	flight     singleflight.Group

	// editMu serialises the edits that this client's writes make to cached
	// listings (listings are copied on write).
	editMu sync.Mutex

	// gen counts this client's writes, and changed holds the generation of
	// the last one that touched each key and each listing ("\x00" +
	// prefix): a fill (HEAD, listing) that began before a write and ended
	// after it would undo what the write recorded, so it is asked again.
	// A name pushed out of changed takes its generation to forgotten, and
	// a fill older than that is taken to have raced a write.
	gen       atomic.Uint64
	changed   *lru.Cache[string, uint64]
	forgotten atomic.Uint64

	// hits and misses count the lookups and listings answered from the
	// cache and those that had to ask the bucket.
	hits, misses atomic.Int64

	// plain: listings ask for no headers (MetaOptions.PlainListings),
	// until ListHeaders; noListHeaders: ListHeaders found that the server
	// lists none; statWalks: a walk listed plainly had its files
	// statted, so the mount's walks ask for headers from then on.
	plain, noListHeaders, statWalks atomic.Bool

	// ahead holds what lookups started before it was needed.
	ahead lookAhead
}

// CacheStats returns how many lookups and listings the cache answered
// itself (hits) and how many it asked the bucket for (misses).
func (m *Meta) CacheStats() (hits, misses int64) { return m.hits.Load(), m.misses.Load() }

// maxFills is how often a fill is asked again when this client's writes
// keep racing it; the last answer is returned but not cached.
const maxFills = 3

func listingName(prefix string) string { return "\x00" + prefix }

type objectEntry struct {
	obj     backend.Object
	missing bool
	at      time.Time
}

type firstPage struct {
	page backend.ListPage
	at   time.Time
}

// listing is every entry of one directory level. This client's writes
// edit it in place; the sorted page is rebuilt when next asked for, so a
// thousand creates in one directory cost a thousand map updates, not a
// thousand copies of the listing.
type listing struct {
	at     time.Time
	stored int // entries when stored, for the bound on all listings

	// mu protects the fields below.
	mu       sync.Mutex
	objects  map[string]backend.Object // by full key
	prefixes map[string]bool           // common prefixes, full
	page     backend.ListPage          // the same, sorted; replaced, never modified
	stale    bool                      // page needs rebuilding

	// sample holds, with their headers, the few objects HeaderSample
	// asked about once sampled is set; prefetched is set once
	// PrefetchHeaders started.
	sample              []backend.Object
	sampled, prefetched bool
	// childrenListed counts the subdirectories listed from the server
	// soon after this listing; walked is set once its subtree was listed
	// flat (walk.go).
	childrenListed int
	walked         bool
	// namesOnly: stored by a walk whose sample found no POSIX headers,
	// that of walkRoot's subtree.
	namesOnly bool
	walkRoot  string
}

func (l *listing) object(key string) (backend.Object, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	obj, ok := l.objects[key]
	return obj, ok
}

func (l *listing) hasPrefix(p string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.prefixes[p]
}

func (l *listing) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.objects) + len(l.prefixes)
}

// snapshot returns the listing as one sorted page.
func (l *listing) snapshot() backend.ListPage {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stale {
		page := backend.ListPage{
			Objects:  make([]backend.Object, 0, len(l.objects)),
			Prefixes: make([]string, 0, len(l.prefixes)),
		}
		for _, obj := range l.objects {
			page.Objects = append(page.Objects, obj)
		}
		slices.SortFunc(page.Objects, func(a, b backend.Object) int { return strings.Compare(a.Key, b.Key) })
		for p := range l.prefixes {
			page.Prefixes = append(page.Prefixes, p)
		}
		slices.Sort(page.Prefixes)
		l.page, l.stale = page, false
	}
	return l.page
}

var _ backend.Bucket = (*Meta)(nil)

// NewMeta wraps next with a metadata cache.
func NewMeta(next backend.Bucket, opts MetaOptions) *Meta {
	if opts.Entries <= 0 {
		opts.Entries = 100000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxListing <= 0 {
		opts.MaxListing = max(opts.Entries/4, 1)
	}
	m := &Meta{next: next, opts: opts}
	m.plain.Store(opts.PlainListings)
	m.objects, _ = lru.New[string, objectEntry](opts.Entries)
	// Listings hold their entries twice (also in objects); a few hundred
	// directories is what a working set of `ls` and `find` needs.
	m.listings, _ = lru.NewWithEvict(max(opts.Entries/100, 64), func(_ string, l *listing) {
		m.listed.Add(-int64(l.stored))
	})
	m.firstPages, _ = lru.New[string, firstPage](64)
	m.changed, _ = lru.NewWithEvict(opts.Entries, func(_ string, g uint64) {
		for cur := m.forgotten.Load(); g > cur && !m.forgotten.CompareAndSwap(cur, g); cur = m.forgotten.Load() {
		}
	})
	return m
}

func (m *Meta) Name() string { return m.next.Name() }

// Next is the bucket this cache decorates.
func (m *Meta) Next() backend.Bucket { return m.next }

func (m *Meta) fresh(at time.Time, ttl time.Duration) bool {
	return m.opts.Now().Sub(at) < ttl
}

// parentPrefix is backend.ParentPrefix.
var parentPrefix = backend.ParentPrefix

// freshListing returns the complete listing of prefix while it is younger
// than the TTL. A complete listing is a snapshot of one directory level: for
// that long it answers both what exists there and what does not.
func (m *Meta) freshListing(prefix string) *listing {
	l, ok := m.listings.Get(prefix)
	if !ok || !m.fresh(l.at, m.opts.TTL) {
		return nil
	}
	return l
}

// fromListing answers Head(key) from fresh listings, if any holds the answer.
func (m *Meta) fromListing(key string) (obj backend.Object, found, known bool) {
	if strings.HasSuffix(key, "/") {
		// A marker shows in the listing of its own prefix; the level above
		// only says whether anything is under it.
		if l := m.freshListing(key); l != nil {
			obj, found = l.object(key)
			return obj, found, true
		}
		if l := m.freshListing(parentPrefix(key)); l != nil && !l.hasPrefix(key) {
			return backend.Object{}, false, true
		}
		return backend.Object{}, false, false
	}
	if l := m.freshListing(parentPrefix(key)); l != nil {
		obj, found = l.object(key)
		return obj, found, true
	}
	return backend.Object{}, false, false
}

func notFound(key string) error {
	return fmt.Errorf("head %q: %w", key, backend.ErrNotFound)
}

// Head answers from the object cache or a fresh listing of key's directory;
// otherwise it asks the bucket and caches the answer, missing keys included.
func (m *Meta) Head(ctx context.Context, key string) (backend.Object, error) {
	if obj, found, known := m.cached(key); known {
		m.hits.Add(1)
		if !found {
			return backend.Object{}, notFound(key)
		}
		return obj, nil
	}
	m.misses.Add(1)
	if strings.HasSuffix(key, "/") {
		// A directory's marker sorts first in its listing, whose first
		// page the readdir that usually follows wants anyway: a LIST
		// instead of a HEAD that mostly answers 404.
		page, err := m.firstPageOf(ctx, key)
		if err != nil {
			return backend.Object{}, err
		}
		if len(page.Objects) > 0 && page.Objects[0].Key == key {
			return page.Objects[0], nil
		}
		return backend.Object{}, notFound(key)
	}
	return m.Fresh(ctx, key)
}

// cached answers Head(key) from the object cache or a fresh listing of
// key's directory; known is false when neither holds the answer.
func (m *Meta) cached(key string) (obj backend.Object, found, known bool) {
	if e, ok := m.objects.Get(key); ok {
		if e.missing && m.fresh(e.at, m.opts.NegativeTTL) {
			return backend.Object{}, false, true
		}
		if !e.missing && m.fresh(e.at, m.opts.TTL) {
			return e.obj, true, true
		}
	}
	return m.fromListing(key)
}

// Fresh asks the bucket for key's object and headers, bypassing the cache,
// and caches the answer.
func (m *Meta) Fresh(ctx context.Context, key string) (backend.Object, error) {
	v, err, _ := m.flight.Do("h\x00"+key, func() (any, error) {
		return m.fetchHeaders(ctx, key, func() (backend.Object, error) { return m.next.Head(ctx, key) })
	})
	if err != nil {
		return backend.Object{}, err
	}
	return v.(backend.Object), nil
}

// fetchHeaders asks head for key's object and caches the answer, asking
// again with HEADs while this client's writes race it.
func (m *Meta) fetchHeaders(ctx context.Context, key string, head func() (backend.Object, error)) (backend.Object, error) {
	for attempt := 1; ; attempt++ {
		at, g := m.opts.Now(), m.gen.Load()
		obj, err := head()
		stored := m.storeUnlessChanged(key, g, func() {
			switch {
			case errors.Is(err, backend.ErrNotFound):
				m.objects.Add(key, objectEntry{missing: true, at: at})
			case err == nil:
				m.objects.Add(key, objectEntry{obj: obj, at: at})
			}
		})
		if !stored && attempt < maxFills {
			head = func() (backend.Object, error) { return m.next.Head(ctx, key) }
			continue
		}
		return obj, err
	}
}

// List serves a whole one-level listing (Delimiter "/", no token, no
// MaxKeys) from the cache when fresh, fetching every page otherwise and
// returning them as one page. Other listings pass through uncached.
func (m *Meta) List(ctx context.Context, in backend.ListInput) (backend.ListPage, error) {
	if in.Delimiter == "/" && in.Token == "" && in.MaxKeys > 0 {
		// A short page that a fresh listing holds whole (is this directory
		// empty?) needs no request.
		if l := m.freshListing(in.Prefix); l != nil && l.size() <= in.MaxKeys {
			m.hits.Add(1)
			return l.snapshot(), nil
		}
	}
	if in.Delimiter != "/" || in.Token != "" || in.MaxKeys != 0 {
		m.misses.Add(1)
		return m.next.List(ctx, in)
	}
	if l := m.freshListing(in.Prefix); l != nil {
		m.hits.Add(1)
		return l.snapshot(), nil
	}
	m.misses.Add(1)
	if root, ok := m.walking(in.Prefix); ok {
		m.listSubtree(ctx, root)
		if l := m.freshListing(in.Prefix); l != nil {
			return l.snapshot(), nil
		}
	}
	v, err, _ := m.flight.Do("l\x00"+in.Prefix, func() (any, error) {
		return m.listAll(ctx, in.Prefix)
	})
	if err != nil {
		return backend.ListPage{}, err
	}
	return v.(*listing).snapshot(), nil
}

func (m *Meta) listAll(ctx context.Context, prefix string) (*listing, error) {
	for attempt := 1; ; attempt++ {
		g := m.gen.Load()
		at, objects, prefixes, err := m.fetchListing(ctx, prefix, attempt == 1)
		if err != nil {
			return nil, err
		}
		var l *listing
		if m.storeUnlessChanged(listingName(prefix), g, func() { l = m.storeListing(prefix, at, objects, prefixes) }) {
			return l, nil
		}
		if attempt == maxFills {
			return newListing(at, objects, prefixes), nil
		}
	}
}

// fetchListing lists every page of directory prefix, continuing from the
// first page a lookup fetched when fromFirstPage allows.
func (m *Meta) fetchListing(ctx context.Context, prefix string, fromFirstPage bool) (time.Time, []backend.Object, []string, error) {
	at := m.opts.Now()
	var objects []backend.Object
	var prefixes []string
	in := backend.ListInput{Prefix: prefix, Delimiter: "/", Plain: m.plain.Load()}
	if fp, ok := m.firstPages.Get(prefix); ok && fromFirstPage && m.fresh(fp.at, m.opts.TTL) {
		// A lookup already fetched the first page: go on from there. The
		// listing is as old as its oldest page.
		m.firstPages.Remove(prefix)
		objects, prefixes, in.Token, at = fp.page.Objects, fp.page.Prefixes, fp.page.NextToken, fp.at
	} else {
		page, err := m.next.List(ctx, in)
		if err != nil {
			return at, nil, nil, err
		}
		objects, prefixes, in.Token = page.Objects, page.Prefixes, page.NextToken
	}
	for in.Token != "" {
		page, err := m.next.List(ctx, in)
		if err != nil {
			return at, nil, nil, err
		}
		objects = append(objects, page.Objects...)
		prefixes = append(prefixes, page.Prefixes...)
		in.Token = page.NextToken
	}
	return at, objects, prefixes, nil
}

func newListing(at time.Time, objects []backend.Object, prefixes []string) *listing {
	l := &listing{objects: map[string]backend.Object{}, prefixes: map[string]bool{}, at: at}
	l.page.Objects = slices.Clone(objects)
	l.page.Prefixes = prefixes
	for _, obj := range objects {
		l.objects[obj.Key] = obj
	}
	for _, p := range prefixes {
		l.prefixes[p] = true
	}
	return l
}

// storeListing records a complete listing of prefix and its objects,
// unless it is bigger than MaxListing: then it is only returned.
func (m *Meta) storeListing(prefix string, at time.Time, objects []backend.Object, prefixes []string) *listing {
	l := newListing(at, objects, prefixes)
	if l.stored = len(objects) + len(prefixes); l.stored > m.opts.MaxListing {
		return l
	}
	for i, obj := range l.page.Objects {
		// A listing never downgrades an entry that has headers (or the
		// metadata a copy set) and the same ETag: they are still right.
		if e, ok := m.objects.Peek(obj.Key); ok && !e.missing && (e.obj.HasHeaders || e.obj.Metadata != nil) && e.obj.ETag == obj.ETag {
			obj = e.obj
			l.page.Objects[i], l.objects[obj.Key] = obj, obj
		}
		m.objects.Add(obj.Key, objectEntry{obj: obj, at: at})
	}
	m.listings.Remove(prefix) // its count goes, as an eviction's does
	m.listed.Add(int64(l.stored))
	m.listings.Add(prefix, l)
	for m.listed.Load() > int64(m.opts.Entries) {
		if _, _, ok := m.listings.RemoveOldest(); !ok {
			break
		}
	}
	return l
}

// firstPageOf fetches the first page of the listing of directory prefix:
// for a small directory that is the whole listing, stored as such; for a
// big one it is kept for the listing that usually follows a lookup. Either
// way it shows the directory's marker, which sorts first.
func (m *Meta) firstPageOf(ctx context.Context, prefix string) (backend.ListPage, error) {
	if fp, ok := m.firstPages.Get(prefix); ok && m.fresh(fp.at, m.opts.TTL) {
		return fp.page, nil
	}
	if root, ok := m.walking(prefix); ok {
		m.listSubtree(ctx, root)
		if l := m.freshListing(prefix); l != nil {
			return l.snapshot(), nil // whole, which is more than a first page
		}
	}
	return m.listFirstPage(ctx, prefix, lookupPage)
}

// listFirstPage lists and keeps prefix's first page for firstPageOf,
// asking for pages of the server's size where keys is 0.
func (m *Meta) listFirstPage(ctx context.Context, prefix string, keys int) (backend.ListPage, error) {
	at := m.opts.Now()
	v, err, _ := m.flight.Do("f\x00"+prefix, func() (any, error) {
		g := m.gen.Load()
		in := backend.ListInput{Prefix: prefix, Delimiter: "/"}
		if keys > 0 && m.plain.Load() && m.canListHeaders() {
			// A lookup asks for the first few entries with headers, which
			// costs the server little: a small directory (that of `cat
			// dir/file`) then needs no sample HEAD before the first byte.
			// The listing that follows goes on plainly.
			in.MaxKeys = keys
		} else {
			in.Plain = m.plain.Load()
		}
		page, err := m.next.List(ctx, in)
		if err != nil {
			return page, err
		}
		// Not cached when a write of this client came after it.
		m.storeUnlessChanged(listingName(prefix), g, func() {
			if page.NextToken == "" {
				m.storeListing(prefix, at, page.Objects, page.Prefixes)
				return
			}
			m.firstPages.Add(prefix, firstPage{page: page, at: at})
			if len(page.Objects) > 0 && page.Objects[0].Key == prefix {
				m.objects.Add(prefix, objectEntry{obj: page.Objects[0], at: at})
			} else {
				m.objects.Add(prefix, objectEntry{missing: true, at: at})
			}
		})
		return page, nil
	})
	if err != nil {
		return backend.ListPage{}, err
	}
	return v.(backend.ListPage), nil
}

// HasPrefix answers for a directory prefix ("dir/") from a fresh listing
// of it or of the level above, else from the first page of its listing,
// which is kept for the readdir that usually follows.
func (m *Meta) HasPrefix(ctx context.Context, prefix string) (bool, error) {
	if strings.HasSuffix(prefix, "/") {
		if l := m.freshListing(prefix); l != nil {
			return l.size() > 0, nil
		}
		if l := m.freshListing(parentPrefix(prefix)); l != nil {
			return l.hasPrefix(prefix), nil
		}
		page, err := m.firstPageOf(ctx, prefix)
		if err != nil {
			return false, err
		}
		return len(page.Objects)+len(page.Prefixes) > 0, nil
	}
	// Only directory prefixes are asked for often enough to cache.
	return m.next.HasPrefix(ctx, prefix)
}

// Get passes through; a vanished object is forgotten so the next lookup
// asks. The headers every GET carries complete what a listing said of the
// same version, so an object shown from a listing alone shows its POSIX
// headers once read.
func (m *Meta) Get(ctx context.Context, in backend.GetInput) (io.ReadCloser, backend.Object, error) {
	g := m.gen.Load()
	body, obj, err := m.next.Get(ctx, in)
	if errors.Is(err, backend.ErrNotFound) || errors.Is(err, backend.ErrPrecondition) {
		m.Forget(in.Key)
	}
	if err == nil && obj.HasHeaders && in.VersionID == "" {
		m.storeUnlessChanged(in.Key, g, func() {
			if e, ok := m.objects.Peek(in.Key); ok && !e.missing && !e.obj.HasHeaders && e.obj.ETag == obj.ETag {
				m.objects.Add(in.Key, objectEntry{obj: obj, at: e.at})
			}
		})
	}
	return body, obj, err
}

// Forget drops everything cached about key and the listing that holds it.
func (m *Meta) Forget(key string) {
	m.touched(key, listingName(parentPrefix(key)))
	m.objects.Remove(key)
	parent := parentPrefix(key)
	m.listings.Remove(parent)
	m.firstPages.Remove(parent)
}
