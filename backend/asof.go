package backend

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// AsOf returns a read-only view of b as it was at t (--as-of): each key is
// its newest version whose Last-Modified is not after t, and a key whose
// newest such version is a delete marker, or that had no version yet, is
// absent. Directories follow from the keys present, so a key written or
// deleted later leaves no trace. In an unversioned bucket every object is
// version "null": the view is the current objects not modified after t.
//
// Every write fails with ErrAccessDenied.
func AsOf(b Bucket, t time.Time) Bucket {
	return &asOf{next: b, at: t}
}

type asOf struct {
	next Bucket
	at   time.Time

	// mu protects the fields below.
	mu     sync.Mutex
	loaded bool
	keys   []string                // present at t, sorted
	chosen map[string]VersionEntry // key -> its version at t
}

// view returns the keys present at t and their versions. The first call
// makes one full version listing of the bucket (every version and delete
// marker of every key, 1000 a request) and keeps the result for the life
// of the mount: the past does not change. A failed listing is retried by
// the next call.
func (a *asOf) view(ctx context.Context) ([]string, map[string]VersionEntry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.loaded {
		return a.keys, a.chosen, nil
	}
	newest := map[string]VersionEntry{} // the newest entry not after t, markers included
	for token := ""; ; {
		page, err := a.next.ListVersions(ctx, ListInput{Token: token})
		if err != nil {
			return nil, nil, fmt.Errorf("as of %s: %w", a.at.Format(time.RFC3339), err)
		}
		for _, v := range page.Versions {
			if v.LastModified.After(a.at) {
				continue
			}
			// On a tie the entry listed first, the newer one, stays.
			if old, ok := newest[v.Key]; !ok || v.LastModified.After(old.LastModified) {
				newest[v.Key] = v
			}
		}
		if token = page.NextToken; token == "" {
			break
		}
	}
	a.chosen = map[string]VersionEntry{}
	for k, v := range newest {
		if !v.DeleteMarker {
			a.chosen[k] = v
			a.keys = append(a.keys, k)
		}
	}
	sort.Strings(a.keys)
	a.loaded = true
	return a.keys, a.chosen, nil
}

func (a *asOf) Name() string { return a.next.Name() }

// Head reads no bytes of the chosen version to learn its headers: Bucket
// has no HEAD of a version, and a zero-length Get costs the same request.
func (a *asOf) Head(ctx context.Context, key string) (Object, error) {
	body, obj, err := a.Get(ctx, GetInput{Key: key, Length: 0})
	if err != nil {
		return Object{}, err
	}
	body.Close()
	return obj, nil
}

// ListsHeaders: the view's listings come from the version listing, which
// carries no headers.
func (a *asOf) ListsHeaders() bool { return false }

func (a *asOf) List(ctx context.Context, in ListInput) (ListPage, error) {
	keys, chosen, err := a.view(ctx)
	if err != nil {
		return ListPage{}, err
	}
	maxKeys := in.MaxKeys
	if maxKeys <= 0 {
		maxKeys = 1000
	}
	// The token is the last key of the previous page (or of its last
	// common prefix).
	i := sort.SearchStrings(keys, max(in.Prefix, in.Token))
	if i < len(keys) && keys[i] == in.Token {
		i++
	}
	var page ListPage
	for n := 0; i < len(keys) && strings.HasPrefix(keys[i], in.Prefix); i++ {
		k := keys[i]
		if n == maxKeys {
			page.NextToken = keys[i-1]
			break
		}
		n++
		if in.Delimiter != "" {
			if j := strings.Index(k[len(in.Prefix):], in.Delimiter); j >= 0 {
				p := k[:len(in.Prefix)+j+len(in.Delimiter)]
				page.Prefixes = append(page.Prefixes, p)
				for i+1 < len(keys) && strings.HasPrefix(keys[i+1], p) {
					i++
				}
				continue
			}
		}
		v := chosen[k]
		page.Objects = append(page.Objects, Object{Key: k, Size: v.Size, ETag: v.ETag,
			LastModified: v.LastModified, StorageClass: v.StorageClass})
	}
	return page, nil
}

func (a *asOf) HasPrefix(ctx context.Context, prefix string) (bool, error) {
	keys, _, err := a.view(ctx)
	if err != nil {
		return false, err
	}
	i := sort.SearchStrings(keys, prefix)
	return i < len(keys) && strings.HasPrefix(keys[i], prefix), nil
}

// Get reads the version chosen for in.Key, unless the caller names one.
func (a *asOf) Get(ctx context.Context, in GetInput) (io.ReadCloser, Object, error) {
	if in.VersionID == "" {
		_, chosen, err := a.view(ctx)
		if err != nil {
			return nil, Object{}, err
		}
		v, ok := chosen[in.Key]
		if !ok {
			return nil, Object{}, fmt.Errorf("get %q as of %s: %w", in.Key, a.at.Format(time.RFC3339), ErrNotFound)
		}
		in.VersionID = v.ID
	}
	return a.next.Get(ctx, in)
}

// Versions lists the versions of key that existed at t.
func (a *asOf) Versions(ctx context.Context, key string) ([]Version, error) {
	all, err := a.next.Versions(ctx, key)
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, v := range all {
		if !v.LastModified.After(a.at) {
			v.Latest = len(out) == 0
			out = append(out, v)
		}
	}
	return out, nil
}

func (a *asOf) ListVersions(ctx context.Context, in ListInput) (VersionPage, error) {
	return a.next.ListVersions(ctx, in)
}

// GetACL answers with the current object's ACL: S3 keeps one ACL per
// version, but Bucket asks only for the current one.
func (a *asOf) GetACL(ctx context.Context, key string) (ACL, error) {
	return a.next.GetACL(ctx, key)
}

// Presign would sign the current object, not the one this view shows.
func (a *asOf) Presign(ctx context.Context, key, method string, expires time.Duration) (string, error) {
	return "", fmt.Errorf("presign %q: a view as of a time has no URL: %w", key, ErrNotImplemented)
}

func (a *asOf) Versioning(ctx context.Context) (string, error) { return a.next.Versioning(ctx) }
func (a *asOf) Policy(ctx context.Context) (string, error)     { return a.next.Policy(ctx) }

// readOnly is the error of every write.
func (a *asOf) readOnly(op, key string) error {
	return fmt.Errorf("%s %q: the view as of %s is read-only: %w", op, key, a.at.Format(time.RFC3339), ErrAccessDenied)
}

func (a *asOf) Put(ctx context.Context, in PutInput) (Object, error) {
	return Object{}, a.readOnly("put", in.Key)
}

func (a *asOf) Delete(ctx context.Context, key string) error { return a.readOnly("delete", key) }

func (a *asOf) Copy(ctx context.Context, in CopyInput) (Object, error) {
	return Object{}, a.readOnly("copy", in.Dst)
}

func (a *asOf) StartUpload(ctx context.Context, in PutInput) (string, error) {
	return "", a.readOnly("upload", in.Key)
}

func (a *asOf) UploadPart(ctx context.Context, in PartInput) (string, error) {
	return "", a.readOnly("upload part", in.Key)
}

func (a *asOf) CompleteUpload(ctx context.Context, in CompleteInput) (Object, error) {
	return Object{}, a.readOnly("complete upload", in.Key)
}

func (a *asOf) AbortUpload(ctx context.Context, key, uploadID string) error {
	return a.readOnly("abort upload", key)
}

// ListUploads finds none: a past state of the bucket has no uploads open.
func (a *asOf) ListUploads(ctx context.Context, key string) ([]Upload, error) {
	return nil, nil
}

func (a *asOf) PutACL(ctx context.Context, key, canned string) error {
	return a.readOnly("put acl", key)
}

func (a *asOf) SetVersioning(ctx context.Context, status string) error {
	return a.readOnly("set versioning", a.next.Name())
}

func (a *asOf) SetPolicy(ctx context.Context, policy string) error {
	return a.readOnly("set policy", a.next.Name())
}

func (a *asOf) DeletePolicy(ctx context.Context) error {
	return a.readOnly("delete policy", a.next.Name())
}
