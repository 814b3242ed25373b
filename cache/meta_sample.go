package cache

import (
	"context"
	"errors"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bucketfs/bucketfs/backend"
)

// sampleSize is how many objects of a listing without headers HeaderSample
// asks about: the first, the middle and the last, so that one tool's
// batch of uploads is unlikely to be missed entirely.
const sampleSize = 3

// HeaderSample returns, with their headers, a few of the objects that
// prefix's fresh listing holds without them (none if it holds none such),
// asking for them once per listing; ok is false when no fresh listing of
// prefix is cached. Callers use it to decide whether the other objects of
// the directory are worth a HEAD each: a bucket that other tools filled
// has no POSIX headers to find.
func (m *Meta) HeaderSample(ctx context.Context, prefix string) (sample []backend.Object, ok bool) {
	l := m.freshListing(prefix)
	if l == nil {
		return nil, false
	}
	l.mu.Lock()
	if l.sampled {
		defer l.mu.Unlock()
		return l.sample, true
	}
	l.mu.Unlock()
	v, err, _ := m.flight.Do("s\x00"+prefix, func() (any, error) {
		var bare []backend.Object
		for _, obj := range l.snapshot().Objects {
			if !obj.HasHeaders {
				bare = append(bare, obj)
			}
		}
		var picks []backend.Object
		if n := len(bare); n <= sampleSize {
			picks = bare
		} else {
			picks = []backend.Object{bare[0], bare[n/2], bare[n-1]}
		}
		found := make([]*backend.Object, len(picks))
		var g errgroup.Group
		for i, obj := range picks {
			g.Go(func() error {
				full, err := m.Fresh(ctx, obj.Key)
				if errors.Is(err, backend.ErrNotFound) {
					return nil // deleted since the listing: no sample
				}
				found[i] = &full
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err // not kept: the next caller asks again
		}
		var sample []backend.Object
		for _, obj := range found {
			if obj != nil {
				sample = append(sample, *obj)
			}
		}
		l.mu.Lock()
		l.sample, l.sampled = sample, true
		l.mu.Unlock()
		return sample, nil
	})
	if err != nil {
		return nil, false
	}
	return v.([]backend.Object), true
}

// KeepSample records sample, objects of prefix's listing with their
// headers, as the listing's own, where no other was taken: a readdir that
// sampled the listing's first page while the rest came spares the lookups
// that follow a sample of their own.
func (m *Meta) KeepSample(prefix string, sample []backend.Object) {
	l := m.freshListing(prefix)
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.sampled {
		l.sample, l.sampled = sample, true
	}
}

// headerLister is implemented by buckets that know whether their listings
// can carry headers (the S3 backend learns it from the server).
type headerLister interface{ ListsHeaders() bool }

// canListHeaders tells whether listings may carry headers.
func (m *Meta) canListHeaders() bool {
	if m.noListHeaders.Load() {
		return false
	}
	hl, ok := m.next.(headerLister)
	return !ok || hl.ListsHeaders()
}

// lookupPage is how many entries a lookup's listing asks for with headers
// while listings are plain.
const lookupPage = 8

// ListHeaders turns on, for the rest of the mount, listings that carry each
// object's headers: the caller found POSIX headers in a sample, so the
// bucket holds objects that bucketfs or s3fs wrote, and one listing with
// headers is cheaper than a HEAD per object. Where the server can list
// headers, the listing of prefix, cached without them, is fetched again;
// it reports whether prefix's listing now carries them.
func (m *Meta) ListHeaders(ctx context.Context, prefix string) bool {
	m.plain.Store(false)
	if !m.canListHeaders() {
		return false
	}
	carries := func(page backend.ListPage) bool {
		return !slices.ContainsFunc(page.Objects, func(o backend.Object) bool { return !o.HasHeaders })
	}
	l := m.freshListing(prefix)
	if l == nil {
		return false
	}
	if page := l.snapshot(); len(page.Objects) == 0 || carries(page) {
		return len(page.Objects) > 0
	}
	v, err, _ := m.flight.Do("r\x00"+prefix, func() (any, error) {
		g := m.gen.Load()
		at, objects, prefixes, err := m.fetchListing(ctx, prefix, false)
		if err != nil {
			return false, err
		}
		// Judged on what the server sent: the listing cached would mix in
		// the sample's headers. A server that ignores the request
		// (versitygw answers a plain listing) is not asked again, and the
		// cached listing keeps its sample.
		if !slices.ContainsFunc(objects, func(o backend.Object) bool { return o.HasHeaders }) {
			m.noListHeaders.Store(true)
			return false, nil
		}
		m.storeUnlessChanged(listingName(prefix), g, func() { m.storeListing(prefix, at, objects, prefixes) })
		return true, nil
	})
	return err == nil && v.(bool)
}

// PrefetchHeaders fetches, a few at a time in the background, the headers
// of the objects that prefix's fresh listing holds without them, once per
// listing: the lookups that follow a listing (ls -l, find) then wait for at
// most one HEAD instead of sending one after another. Callers start it
// when they are about to ask one of them for its headers.
func (m *Meta) PrefetchHeaders(prefix string) {
	l := m.freshListing(prefix)
	if m.opts.HeaderPrefetch <= 0 || l == nil {
		return
	}
	l.mu.Lock()
	done := l.prefetched
	l.prefetched = true
	l.mu.Unlock()
	if done {
		return
	}
	var keys []string
	for _, obj := range l.snapshot().Objects {
		if !obj.HasHeaders && len(keys) < maxHeaderPrefetch {
			keys = append(keys, obj.Key)
		}
	}
	if len(keys) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var g errgroup.Group
		g.SetLimit(m.opts.HeaderPrefetch)
		for _, key := range keys {
			g.Go(func() error {
				m.Fresh(ctx, key) // errors surface on the lookup that needs it
				return nil
			})
		}
		g.Wait()
	}()
}
