package cache

import (
	"context"
	"slices"
	"time"

	"github.com/bucketfs/bucketfs/backend"
)

// Pages reads the listing of one directory level a page at a time, for a
// reader that wants to start before the end (a readdir). A fresh cached
// listing is one page. Otherwise the server's pages are gathered, and
// cached as one listing at the end, only while they stay within
// MaxListing: a bigger directory is never held whole, so memory stays
// bounded whatever its size. Each page is asked for as soon as the one
// before came, so the server lists while the reader works on the entries.
type Pages struct {
	m      *Meta
	prefix string

	started, done bool
	token         string
	at            time.Time
	gen           uint64
	objects       []backend.Object
	prefixes      []string
	tooBig        bool
	ahead         *pageAhead // the next page, asked for already
}

// pageAhead is a page asked for before the reader wanted it.
type pageAhead struct {
	in     backend.ListInput
	done   chan struct{}
	page   backend.ListPage
	err    error
	cancel context.CancelFunc
}

// askAhead asks for the page that in names, in the background. The
// request outlives the reader's own (a FUSE request's context ends with
// its reply) but not Close, nor the timeout.
func (p *Pages) askAhead(ctx context.Context, in backend.ListInput) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pageAheadTimeout)
	a := &pageAhead{in: in, done: make(chan struct{}), cancel: cancel}
	p.ahead = a
	go func() {
		defer close(a.done)
		defer cancel()
		a.page, a.err = p.m.next.List(ctx, in)
	}()
}

// pageAheadTimeout bounds a page asked for ahead that nobody reads.
const pageAheadTimeout = 2 * time.Minute

// nextServerPage returns the page that in names: the one asked for ahead
// if it was asked for as in asks (headers or not), else a new request.
func (p *Pages) nextServerPage(ctx context.Context, in backend.ListInput) (backend.ListPage, error) {
	a := p.ahead
	if a == nil {
		return p.m.next.List(ctx, in)
	}
	select {
	case <-a.done:
	case <-ctx.Done():
		return backend.ListPage{}, ctx.Err() // a is kept for the next call
	}
	p.ahead = nil
	if a.in != in || a.err != nil {
		// Asked for otherwise (listings now carry headers), or failed
		// while nobody waited: asked again, and its error is this one's.
		return p.m.next.List(ctx, in)
	}
	return a.page, nil
}

// Close lets go of a page asked for ahead.
func (p *Pages) Close() {
	if p.ahead != nil {
		p.ahead.cancel()
		p.ahead = nil
	}
}

// Capacity is how many objects the cache holds (Entries).
func (m *Meta) Capacity() int { return m.opts.Entries }

// Pages starts a listing of directory prefix.
func (m *Meta) Pages(prefix string) *Pages { return &Pages{m: m, prefix: prefix} }

// Gathering tells whether the pages so far still fit in one cached
// listing (MaxListing).
func (p *Pages) Gathering() bool { return !p.tooBig }

// Next returns the next page and whether it is the last; after the last,
// an empty page.
func (p *Pages) Next(ctx context.Context) (page backend.ListPage, last bool, err error) {
	m := p.m
	if p.done {
		return backend.ListPage{}, true, nil
	}
	in := backend.ListInput{Prefix: p.prefix, Delimiter: "/", Token: p.token, Plain: p.m.plain.Load()}
	g := m.gen.Load()
	switch {
	case p.started:
		page, err = p.nextServerPage(ctx, in)
	default:
		if l := m.freshListing(p.prefix); l != nil {
			p.done = true
			return l.snapshot(), true, nil
		}
		if root, ok := m.walking(p.prefix); ok {
			m.listSubtree(ctx, root)
			if l := m.freshListing(p.prefix); l != nil {
				p.done = true
				return l.snapshot(), true, nil
			}
		}
		p.gen, p.at = m.gen.Load(), m.opts.Now()
		if fp, ok := m.firstPages.Get(p.prefix); ok && m.fresh(fp.at, m.opts.TTL) {
			// A lookup fetched the first page already: the listing is as
			// old as that page.
			m.firstPages.Remove(p.prefix)
			page, p.at = fp.page, fp.at
			if page.NextToken != "" && len(page.Objects)+len(page.Prefixes) <= lookupPage {
				// Only the lookup's few entries with headers: the reader
				// gets the page after them too, which its sample of the
				// directory's objects without headers needs.
				next, nextErr := m.next.List(ctx, backend.ListInput{Prefix: p.prefix, Delimiter: "/", Token: page.NextToken, Plain: in.Plain})
				page = backend.ListPage{Objects: slices.Concat(page.Objects, next.Objects), Prefixes: slices.Concat(page.Prefixes, next.Prefixes), NextToken: next.NextToken}
				err = nextErr
			}
		} else {
			page, err = m.next.List(ctx, in)
		}
		// A one-page listing that this client's writes raced is asked
		// again, as List does: a file stored while the listing was on its
		// way, its local copy let go meanwhile, would be missing from it
		// (found by posixtest.DirSeek on versitygw).
		for attempt := 1; err == nil && page.NextToken == "" && attempt < maxFills && m.changedSince(listingName(p.prefix), p.gen); attempt++ {
			p.gen, p.at = m.gen.Load(), m.opts.Now()
			page, err = m.next.List(ctx, in)
		}
	}
	if err != nil {
		return backend.ListPage{}, false, err
	}
	p.started, p.token = true, page.NextToken
	if p.tooBig || page.NextToken != "" {
		// What a huge directory's pages say answers the lookups and
		// getxattrs that come while it streams.
		m.editMu.Lock()
		for _, obj := range page.Objects {
			if _, ok := m.objects.Peek(obj.Key); !ok && !m.changedSince(obj.Key, g) {
				m.objects.Add(obj.Key, objectEntry{obj: obj, at: p.at})
			}
		}
		m.editMu.Unlock()
	}
	if !p.tooBig {
		p.objects = append(p.objects, page.Objects...)
		p.prefixes = append(p.prefixes, page.Prefixes...)
		if p.tooBig = len(p.objects)+len(p.prefixes) > m.opts.MaxListing; p.tooBig {
			p.objects, p.prefixes = nil, nil
		}
	}
	if p.token != "" {
		in.Token, in.Plain = p.token, m.plain.Load()
		p.askAhead(ctx, in)
		return page, false, nil
	}
	p.done = true
	if !p.tooBig {
		m.storeUnlessChanged(listingName(p.prefix), p.gen, func() { m.storeListing(p.prefix, p.at, p.objects, p.prefixes) })
	}
	p.objects, p.prefixes = nil, nil
	return page, true, nil
}
