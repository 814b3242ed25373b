package cache

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/bucketfs/bucketfs/backend"
)

// What a path's lookups can ask before they need it. `cat dir/file` on a
// fresh mount waited for dir's listing (its marker and first entries),
// then for the file's GET: two round trips before the first byte. A
// mount now lists its root and the first pages of the root's first
// directories before it mounts (Warm). A file that no listing the
// cache holds answers for (one deep in a big directory) is asked for
// with a GET of its first bytes, sent along with the listing that tells
// whether the name is a directory, instead of a HEAD after it (Probe);
// the open takes its body (TakeFirstBytes).

const (
	// probeBytes is what a lookup's GET asks for: the first reads of an
	// open, and all of most small files. A stat that opens nothing drains
	// it, which costs little more than the HEAD it replaces.
	probeBytes = 64 << 10
	// probeKeep is how long a lookup's body waits for the open that
	// usually follows within a millisecond.
	probeKeep = time.Second
	// maxProbeBodies bounds the bodies waiting for an open.
	maxProbeBodies = 16
	// probeGrace is how many probes may go unopened before the first is
	// opened, and probeWindow about how many recent ones getsPay weighs.
	probeGrace  = 4
	probeWindow = 64
	// warmDirs is how many of the root's directories Warm lists: the
	// first ones a user of a fresh mount goes into, at one LIST each, all
	// at once.
	warmDirs = 16
)

// FirstBytes is the body of a GET of an object's first Length bytes,
// which a lookup sent (zero when there is none).
type FirstBytes struct {
	Body   io.ReadCloser
	Length int64
}

type probeBody struct {
	key, etag string
	FirstBytes
	timer *time.Timer
}

// lookAhead holds the bodies of the GETs that lookups sent.
type lookAhead struct {
	mu     sync.Mutex
	bodies []*probeBody // oldest first; a nil Body marks a HEAD's probe
	// taken and unused count the recent probes of files whose first
	// bytes an open took, and those nobody opened in time.
	taken, unused int
}

// Warm lists directory prefix's first page (a server's page, not a
// lookup's few entries), and, all at once, the first pages of its first
// directories (their markers and first entries, as their lookups would),
// so that the first lookups of a fresh mount need no request.
func (m *Meta) Warm(ctx context.Context, prefix string) error {
	m.misses.Add(1) // listings the cache asks for, as a lookup's would
	page, err := m.listFirstPage(ctx, prefix, 0)
	if err != nil {
		return err
	}
	var g errgroup.Group
	for _, dir := range page.Prefixes[:min(len(page.Prefixes), warmDirs)] {
		m.misses.Add(1)
		g.Go(func() error {
			_, err := m.listFirstPage(ctx, dir, lookupPage) // not a walk
			return err
		})
	}
	return g.Wait()
}

// Probing is a lookup of an object under way.
type Probing struct{ answer <-chan singleflight.Result }

// Wait returns what the lookup found, as Head would.
func (p *Probing) Wait(ctx context.Context) (backend.Object, error) {
	select {
	case r := <-p.answer:
		if r.Err != nil {
			return backend.Object{}, r.Err
		}
		return r.Val.(backend.Object), nil
	case <-ctx.Done():
		return backend.Object{}, context.Cause(ctx)
	}
}

// Probe starts looking key up, unless the cache knows key (then it
// returns nil: ask Head). While the opens that follow lookups take what
// the probes fetched, it asks with a GET of the first bytes, which
// answers what a HEAD would (and is cached as Fresh caches it), and
// whose body waits a moment for TakeFirstBytes; while lookups are stats
// that open nothing, with a HEAD (see lookAhead.getsPay). Where a GET is
// refused but a HEAD may answer (an archived object, one encrypted with a
// customer's key), the HEAD is sent; not to a server that cannot be
// reached.
func (m *Meta) Probe(key string) *Probing {
	if _, _, known := m.cached(key); known {
		return nil
	}
	answer := m.flight.DoChan("h\x00"+key, func() (any, error) {
		// The body outlives this call: the backend's request and stall
		// timeouts bound it, not a context.
		ctx := context.Background()
		return m.fetchHeaders(ctx, key, func() (backend.Object, error) {
			if !m.ahead.getsPay() {
				obj, err := m.next.Head(ctx, key)
				if err == nil {
					m.keepFirstBytes(obj, nil) // to learn whether it is opened
				}
				return obj, err
			}
			body, obj, err := m.next.Get(ctx, backend.GetInput{Key: key, Length: probeBytes})
			if err == nil {
				m.keepFirstBytes(obj, body)
				return obj, nil
			}
			if errors.Is(err, backend.ErrNotFound) || errors.Is(err, backend.ErrUnavailable) {
				return obj, err
			}
			return m.next.Head(ctx, key)
		})
	})
	return &Probing{answer: answer}
}

// keepFirstBytes keeps body (nil after a HEAD) for an open of obj's
// version.
func (m *Meta) keepFirstBytes(obj backend.Object, body io.ReadCloser) {
	if obj.Size == 0 || obj.ETag == "" {
		drainBody(body)
		return
	}
	b := &probeBody{key: obj.Key, etag: obj.ETag, FirstBytes: FirstBytes{Body: body, Length: min(probeBytes, obj.Size)}}
	a := &m.ahead
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.bodies) == maxProbeBodies {
		a.bodies[0].timer.Stop()
		a.count(false)
		go drainBody(a.bodies[0].Body)
		a.bodies = a.bodies[1:]
	}
	a.bodies = append(a.bodies, b)
	b.timer = time.AfterFunc(probeKeep, func() {
		a.mu.Lock()
		i := slices.Index(a.bodies, b)
		if i >= 0 {
			a.bodies = slices.Delete(a.bodies, i, i+1)
			a.count(false)
		}
		a.mu.Unlock()
		if i >= 0 {
			drainBody(b.Body)
		}
	})
}

// TakeFirstBytes returns the body of the first bytes of version etag of
// key that a lookup fetched, if it is still waiting; the caller reads and
// closes it.
func (m *Meta) TakeFirstBytes(key, etag string) (FirstBytes, bool) {
	a := &m.ahead
	a.mu.Lock()
	defer a.mu.Unlock()
	i := slices.IndexFunc(a.bodies, func(b *probeBody) bool { return b.key == key && b.etag == etag })
	if i < 0 {
		return FirstBytes{}, false
	}
	b := a.bodies[i]
	b.timer.Stop()
	a.bodies = slices.Delete(a.bodies, i, i+1)
	a.count(true)
	if b.Body == nil {
		return FirstBytes{}, false // a HEAD's probe: nothing to take
	}
	return b.FirstBytes, true
}

// getsPay tells whether a probe should be a GET: whether, of the recent
// probes of files, the opens took at least a fifth (after a few to learn
// from). A stat of many files in a directory no listing covers would
// otherwise fetch 64 KiB each for nothing; a HEAD costs the same request.
func (a *lookAhead) getsPay() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.unused <= 4*a.taken+probeGrace
}

// count records whether a probe's first bytes were taken, over the last
// hundred or so probes. Called with a.mu held.
func (a *lookAhead) count(taken bool) {
	if taken {
		a.taken++
	} else {
		a.unused++
	}
	if a.taken+a.unused > 2*probeWindow {
		a.taken, a.unused = a.taken/2, a.unused/2
	}
}

// drainBody reads what is left of a small body before closing it, which keeps
// its connection for the next request.
func drainBody(body io.ReadCloser) {
	if body == nil {
		return
	}
	io.Copy(io.Discard, io.LimitReader(body, probeBytes))
	body.Close()
}
