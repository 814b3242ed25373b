package cache

import (
	"context"
	"errors"
	"strings"

	"github.com/bucketfs/bucketfs/backend"
)

// Writes pass through, and what they change is recorded in the cache: this
// client sees its own changes at once, and a freshly listed directory keeps
// answering lookups after a create or a delete in it (cp -r, rm -rf and
// tar then cost one request per file).

// Put passes through and records the new object.
func (m *Meta) Put(ctx context.Context, in backend.PutInput) (backend.Object, error) {
	obj, err := m.next.Put(ctx, in)
	if err != nil {
		m.forgetOnConflict(in.Key, err)
		return obj, err
	}
	m.recordObject(obj)
	return obj, nil
}

// Delete passes through and records that key is gone.
func (m *Meta) Delete(ctx context.Context, key string) error {
	if err := m.next.Delete(ctx, key); err != nil {
		m.Forget(key)
		return err
	}
	m.recordGone(key)
	return nil
}

// DeleteKeys passes a batch delete through (backend.DeleteKeys) and
// records what went.
func (m *Meta) DeleteKeys(ctx context.Context, keys []string) (map[string]error, error) {
	failed, err := backend.DeleteKeys(ctx, m.next, keys)
	for _, key := range keys {
		if _, bad := failed[key]; err != nil || bad {
			m.Forget(key)
		} else {
			m.recordGone(key)
		}
	}
	return failed, err
}

// Copy passes through and records the copy.
func (m *Meta) Copy(ctx context.Context, in backend.CopyInput) (backend.Object, error) {
	obj, err := m.next.Copy(ctx, in)
	if err != nil {
		m.Forget(in.Dst)
		m.forgetOnConflict(in.Src, err)
		return obj, err
	}
	if obj.Size == 0 {
		obj.Size = in.SrcSize
	}
	// A copy's answer does not carry all the headers the copy has (its
	// encryption, for one): the next caller that needs them asks.
	obj.HasHeaders = false
	m.recordObject(obj)
	return obj, nil
}

func (m *Meta) StartUpload(ctx context.Context, in backend.PutInput) (string, error) {
	return m.next.StartUpload(ctx, in)
}

func (m *Meta) UploadPart(ctx context.Context, in backend.PartInput) (string, error) {
	return m.next.UploadPart(ctx, in)
}

// CompleteUpload passes through and records the new object.
func (m *Meta) CompleteUpload(ctx context.Context, in backend.CompleteInput) (backend.Object, error) {
	obj, err := m.next.CompleteUpload(ctx, in)
	if err != nil {
		m.forgetOnConflict(in.Key, err)
		return obj, err
	}
	m.recordObject(obj)
	return obj, nil
}

func (m *Meta) AbortUpload(ctx context.Context, key, uploadID string) error {
	return m.next.AbortUpload(ctx, key, uploadID)
}

func (m *Meta) ListUploads(ctx context.Context, key string) ([]backend.Upload, error) {
	return m.next.ListUploads(ctx, key)
}

// forgetOnConflict drops what the cache believes about key when the server
// says it is not what we thought.
func (m *Meta) forgetOnConflict(key string, err error) {
	if errors.Is(err, backend.ErrPrecondition) || errors.Is(err, backend.ErrNotFound) {
		m.Forget(key)
	}
}

// recordObject makes the cache show obj, which this client just stored: in
// its directory's listing, and as a prefix in every listing above.
func (m *Meta) recordObject(obj backend.Object) {
	at := m.opts.Now()
	m.editMu.Lock()
	defer m.editMu.Unlock()
	home := parentPrefix(obj.Key)
	if strings.HasSuffix(obj.Key, "/") {
		home = obj.Key // a marker lists under its own prefix
	}
	m.touched(append(listingsAbove(home), obj.Key)...)
	m.objects.Add(obj.Key, objectEntry{obj: obj, at: at})
	if home == obj.Key && m.freshListing(home) == nil {
		if parent := m.freshListing(parentPrefix(home)); parent != nil && !parent.hasPrefix(home) {
			// A new directory (mkdir) where the parent's listing had none:
			// it holds its marker only, and the files cp -r makes in it
			// next are known to be new without a request each.
			m.storeListing(home, at, []backend.Object{obj}, nil)
			m.recordPrefixes(home)
			return
		}
	}
	m.editListing(home, func(l *listing) { l.objects[obj.Key] = obj })
	m.recordPrefixes(home)
}

// recordPrefixes shows directory home in the listings above it. Called
// with editMu held.
func (m *Meta) recordPrefixes(home string) {
	for p := home; p != ""; p = parentPrefix(p) {
		m.editListing(parentPrefix(p), func(l *listing) { l.prefixes[p] = true })
	}
}

// recordGone makes the cache show that key no longer exists.
func (m *Meta) recordGone(key string) {
	at := m.opts.Now()
	m.editMu.Lock()
	defer m.editMu.Unlock()
	home := parentPrefix(key)
	if strings.HasSuffix(key, "/") {
		home = key
	}
	m.touched(append(listingsAbove(home), key)...)
	m.objects.Add(key, objectEntry{missing: true, at: at})
	m.editListing(home, func(l *listing) { delete(l.objects, key) })
	// The directories above may have become empty; only a listing can tell.
	for p := home; p != ""; p = parentPrefix(p) {
		l := m.freshListing(p)
		if l == nil {
			m.listings.Remove(parentPrefix(p))
			m.firstPages.Remove(parentPrefix(p))
			return
		}
		if l.size() > 0 {
			return
		}
		m.editListing(parentPrefix(p), func(l *listing) { delete(l.prefixes, p) })
	}
}

// listingsAbove names the listings a write in directory home shows in:
// its own and every one above it.
func listingsAbove(home string) []string {
	names := []string{listingName(home)}
	for p := home; p != ""; {
		p = parentPrefix(p)
		names = append(names, listingName(p))
	}
	return names
}

// editListing applies edit to prefix's listing, if one is cached and
// fresh. Called with m.editMu held.
func (m *Meta) editListing(prefix string, edit func(*listing)) {
	m.firstPages.Remove(prefix)
	l := m.freshListing(prefix)
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	edit(l)
	l.stale = true
}

// touched records a write of this client to names (keys and listings).
func (m *Meta) touched(names ...string) {
	g := m.gen.Add(1)
	for _, name := range names {
		m.changed.Add(name, g)
	}
}

// changedSince tells whether this client wrote name after generation g.
func (m *Meta) changedSince(name string, g uint64) bool {
	if v, ok := m.changed.Get(name); ok {
		return v > g
	}
	return g < m.forgotten.Load()
}

// storeUnlessChanged runs store, which caches what a fill that began at
// generation g found, unless this client wrote name since. Writes record
// themselves under editMu, so the answer is stored either before a racing
// write, which then edits it, or not at all: checked and stored apart, a
// listing that missed a new file could be stored after the file's create
// had recorded it, and hid the file until it expired.
func (m *Meta) storeUnlessChanged(name string, g uint64, store func()) bool {
	m.editMu.Lock()
	defer m.editMu.Unlock()
	if m.changedSince(name, g) {
		return false
	}
	store()
	return true
}
