package cache

import "github.com/bucketfs/bucketfs/backend"

// While the server cannot be reached, the mount still answers what it can
// from what it last saw, however old: a listing shows the files it had
// (and the files waiting to be uploaded), and a name missing from the last
// listing of its directory can be created, its upload pending until the
// server is back (the upload is conditional, so it never replaces a file
// that appeared meanwhile).

// StaleListing returns the last complete listing of prefix, at any age.
func (m *Meta) StaleListing(prefix string) (backend.ListPage, bool) {
	l, ok := m.listings.Peek(prefix)
	if !ok {
		return backend.ListPage{}, false
	}
	return l.snapshot(), true
}

// LastSeenMissing tells whether the last complete listing of key's
// directory, at any age, had neither key nor anything under key+"/".
func (m *Meta) LastSeenMissing(key string) bool {
	l, ok := m.listings.Peek(parentPrefix(key))
	if !ok {
		return false
	}
	_, found := l.object(key)
	return !found && !l.hasPrefix(key+"/")
}
