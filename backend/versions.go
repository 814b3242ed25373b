package backend

import (
	"cmp"
	"net/url"
	"slices"
)

// The pieces of ListVersions that the S3 and memory buckets share: the page
// token and the order of entries.

// versionToken packs where a listing of versions resumes: after version id
// of key, or after every version of key when id is "".
func versionToken(key, id string) string {
	return url.Values{"key": {key}, "version": {id}}.Encode()
}

// parseVersionToken undoes versionToken; "" starts the listing.
func parseVersionToken(token string) (key, id string, err error) {
	if token == "" {
		return "", "", nil
	}
	v, err := url.ParseQuery(token)
	if err != nil || !v.Has("key") {
		return "", "", ErrInvalid
	}
	return v.Get("key"), v.Get("version"), nil
}

// sortVersionEntries orders entries by key, each key's newest first. The
// latest leads even when Last-Modified ties (S3 keeps seconds only on HEAD,
// and a delete marker may share the second of the version it hides).
func sortVersionEntries(entries []VersionEntry) {
	slices.SortStableFunc(entries, func(a, b VersionEntry) int {
		if c := cmp.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		if a.Latest != b.Latest {
			if a.Latest {
				return -1
			}
			return 1
		}
		return b.LastModified.Compare(a.LastModified)
	})
}
