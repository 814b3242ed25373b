package backend

import (
	"cmp"
	"net/url"
	"slices"
)

// The pieces of ListVersions that the S3 and memory buckets share: the page
// token and the order of entries.

// VersionToken packs where a listing of versions resumes: after version id
// of key, or after every version of key when id is "". Implementations of
// Bucket.ListVersions return it as VersionPage.NextToken.
func VersionToken(key, id string) string {
	return url.Values{"key": {key}, "version": {id}}.Encode()
}

// ParseVersionToken undoes VersionToken; "" starts the listing. A token it
// cannot read fails with ErrInvalid.
func ParseVersionToken(token string) (key, id string, err error) {
	if token == "" {
		return "", "", nil
	}
	v, err := url.ParseQuery(token)
	if err != nil || !v.Has("key") {
		return "", "", ErrInvalid
	}
	return v.Get("key"), v.Get("version"), nil
}

// SortVersionEntries orders entries by key, each key's newest first. The
// latest leads even when Last-Modified ties (S3 keeps seconds only on HEAD,
// and a delete marker may share the second of the version it hides).
func SortVersionEntries(entries []VersionEntry) {
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
