package cache

import (
	"context"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bucketfs/bucketfs/backend"
)

// A recursive walk (find, du, ls -R, rsync, tar) lists every directory of
// a subtree, one LIST each. Once the mount sees one, it lists the subtree
// flat instead, a thousand keys a request whatever the directories, and
// answers the rest of the walk from that.

const (
	// walkWindow is how soon after a directory's listing the listings of
	// two of its subdirectories make a walk.
	walkWindow = 10 * time.Second
	// walkPages bounds the flat listing of one walk step, which also stops
	// at a page that completes no subdirectory; directories it does not
	// cover are listed as before (and may start a walk of their own), so a
	// walk of a huge bucket proceeds a slice at a time.
	walkPages = 20
)

// walking tells whether listing prefix is part of a walk of its parent
// directory, whose subtree has not been listed flat yet: the parent was
// listed within walkWindow and another of its subdirectories was listed
// after it.
func (m *Meta) walking(prefix string) (string, bool) {
	if prefix == "" {
		return "", false
	}
	parent := parentPrefix(prefix)
	l := m.freshListing(parent)
	if l == nil || m.opts.Now().Sub(l.at) > walkWindow {
		return "", false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.childrenListed++
	if l.childrenListed < 2 || l.walked {
		return "", false
	}
	l.walked = true
	return parent, true
}

// listSubtree lists root flat, at most walkPages pages, and stores a
// complete listing for every directory under it that the keys listed
// cover. The walk asks for headers only once listings do, or once a walk
// of this mount had its files statted (WalkHeaders): a listing with
// headers costs MinIO about twice a plain one, which find does not need,
// and du or ls -lR would then pay both. Under --posix-metadata auto a
// plain walk samples a few of its directories, and lists itself again
// with headers if they hold POSIX headers and the server can list them.
// Errors are left to the listings that follow.
func (m *Meta) listSubtree(ctx context.Context, root string) {
	m.flight.Do("w\x00"+root, func() (any, error) {
		plain := m.plain.Load() && !m.statWalks.Load()
		at, bare, err := m.storeWalk(ctx, root, plain)
		if err != nil || !plain || len(bare) == 0 || m.opts.POSIXHeaders == nil {
			return nil, err
		}
		if m.sampleWalk(ctx, at, root, bare) && m.canListHeaders() {
			m.plain.Store(false) // as ListHeaders: the bucket holds such objects
			_, _, err = m.storeWalk(ctx, root, false)
		}
		return nil, err
	})
}

// storeWalk lists root flat and stores the listings of the directories it
// covers: all of them when the listing ended, else those that sort wholly
// before the last key listed. It returns when the listing was made and the
// directories stored with objects that lack headers.
func (m *Meta) storeWalk(ctx context.Context, root string, plain bool) (time.Time, []string, error) {
	g, at := m.gen.Load(), m.opts.Now()
	var objects []backend.Object
	in := backend.ListInput{Prefix: root, Plain: plain}
	complete, lastChild := false, ""
	for range walkPages {
		page, err := m.next.List(ctx, in)
		if err != nil {
			return at, nil, err
		}
		objects = append(objects, page.Objects...)
		if page.NextToken == "" {
			complete = true
			break
		}
		// A page that ends in the same subdirectory as the one before
		// completed none: that one is big, and gets listings of its own.
		child := childOf(root, objects[len(objects)-1].Key)
		if child == lastChild {
			break
		}
		in.Token, lastChild = page.NextToken, child
	}
	if len(objects) == 0 {
		return at, nil, nil
	}
	last := objects[len(objects)-1].Key
	var bare []string
	for dir, d := range levelsOf(root, objects) {
		covered := complete || last > dir && !strings.HasPrefix(last, dir)
		if !covered {
			continue
		}
		prefixes := make([]string, 0, len(d.prefixes))
		for p := range d.prefixes {
			prefixes = append(prefixes, p)
		}
		slices.Sort(prefixes)
		m.storeUnlessChanged(listingName(dir), g, func() {
			l := m.storeListing(dir, at, d.objects, prefixes)
			l.walked = dir == root // its subdirectories are listed already
			l.walkRoot = root
			if slices.ContainsFunc(d.objects, func(o backend.Object) bool { return !o.HasHeaders }) {
				bare = append(bare, dir)
			}
		})
	}
	return at, bare, nil
}

// walkSampleDirs is how many of a walk's directories listed without
// headers are sampled (sampleSize objects each) to judge them all: the
// first and the last, far apart in the tree.
const walkSampleDirs = 2

// sampleWalk tells whether a sample of a few of dirs, the directories of
// root's walk stored at time at without headers, finds POSIX headers; if
// not, it marks their listings names-only. A walk (find) needs names and
// types; the attributes of a file it never stats would cost its directory
// a sample of its own. A tool that does stat (du, ls -l) has the file
// looked up, and the walk listed with headers (WalkHeaders) or its
// directory sampled then.
func (m *Meta) sampleWalk(ctx context.Context, at time.Time, root string, dirs []string) bool {
	slices.Sort(dirs)
	picks := dirs
	if len(dirs) > walkSampleDirs {
		picks = []string{dirs[0], dirs[len(dirs)-1]}
	}
	found := make([]bool, len(picks)) // POSIX headers, or no sample
	var g errgroup.Group
	for i, dir := range picks {
		g.Go(func() error {
			sample, ok := m.listedSample(ctx, dir)
			if !ok {
				sample, ok = m.HeaderSample(ctx, dir)
			}
			found[i] = !ok || slices.ContainsFunc(sample, m.opts.POSIXHeaders)
			return nil
		})
	}
	g.Wait()
	if slices.Contains(found, true) {
		return true // each directory is sampled as it is shown
	}
	for _, dir := range dirs {
		if l := m.freshListing(dir); l != nil && l.at.Equal(at) && l.walkRoot == root {
			l.mu.Lock()
			l.namesOnly = true
			l.mu.Unlock()
		}
	}
	return false
}

// listedSample returns the first few objects under dir with their headers,
// from one small listing that asks for them (no HEAD), where the server
// can list headers; ok is false where it cannot, or ignored the request.
func (m *Meta) listedSample(ctx context.Context, dir string) (sample []backend.Object, ok bool) {
	if !m.canListHeaders() {
		return nil, false
	}
	page, err := m.next.List(ctx, backend.ListInput{Prefix: dir, MaxKeys: sampleSize})
	if err != nil || len(page.Objects) == 0 || slices.ContainsFunc(page.Objects, func(o backend.Object) bool { return !o.HasHeaders }) {
		return nil, false
	}
	return page.Objects, true
}

// WalkHeaders is for a stat of a file in dir, a directory a walk stored
// names-only: where the server can list headers, the walk is listed again
// with them, once, which costs a few LISTs where sampling every directory
// the stats reach would cost three HEADs each. It reports whether dir's
// listing now carries headers.
func (m *Meta) WalkHeaders(ctx context.Context, dir string) bool {
	l := m.freshListing(dir)
	if l == nil || !m.canListHeaders() {
		return false
	}
	l.mu.Lock()
	namesOnly, root := l.namesOnly, l.walkRoot
	l.mu.Unlock()
	if !namesOnly {
		return false
	}
	m.statWalks.Store(true) // du, ls -lR, rsync: the next walk is listed so at once
	m.flight.Do("W\x00"+root, func() (any, error) {
		_, _, err := m.storeWalk(ctx, root, false)
		return nil, err
	})
	l = m.freshListing(dir)
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.namesOnly
}

// NamesOnly tells whether key, a file listed without headers by a walk
// whose sample found no POSIX headers, may be shown by name and type only
// until something asks for its attributes. Once its own directory is
// sampled, its attributes cost nothing, and it is shown whole again.
func (m *Meta) NamesOnly(key string) bool {
	l := m.freshListing(parentPrefix(key))
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	obj, ok := l.objects[key]
	return l.namesOnly && !l.sampled && ok && !obj.HasHeaders && !l.prefixes[key+"/"]
}

// childOf is the entry of directory root that key is or is under.
func childOf(root, key string) string {
	rest := key[len(root):]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return root + rest[:i+1]
	}
	return key
}

// level is one directory's part of a flat listing.
type level struct {
	objects  []backend.Object // in key order
	prefixes map[string]bool
}

// levelsOf splits a flat listing of root (in key order) into the one-level
// listings of root and of every directory under it, as a listing with
// delimiter "/" would return them: a marker lists under its own prefix.
func levelsOf(root string, objects []backend.Object) map[string]*level {
	levels := map[string]*level{}
	get := func(dir string) *level {
		d, ok := levels[dir]
		if !ok {
			d = &level{prefixes: map[string]bool{}}
			levels[dir] = d
		}
		return d
	}
	for _, obj := range objects {
		home := parentPrefix(obj.Key)
		if strings.HasSuffix(obj.Key, "/") {
			home = obj.Key
		}
		d := get(home)
		d.objects = append(d.objects, obj)
		for p := home; p != root && len(p) > len(root); p = parentPrefix(p) {
			get(parentPrefix(p)).prefixes[p] = true
		}
	}
	return levels
}
