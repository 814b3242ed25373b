package memory

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bucketfs/bucketfs/backend"
)

// SetClock makes the bucket stamp Last-Modified (and delete markers) with
// now instead of time.Now, so tests control time.
func (m *Bucket) SetClock(now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = now
}

// versionsOf lists key's versions and delete markers newest first. Called
// with m.mu held.
func (m *Bucket) versionsOf(key string) []backend.Version {
	var out []backend.Version
	if list := m.versions[key]; len(list) > 0 {
		for i := len(list) - 1; i >= 0; i-- {
			v := list[i]
			if v.deleteMarker {
				out = append(out, backend.Version{ID: v.id, LastModified: v.at, DeleteMarker: true})
			} else {
				out = append(out, backend.Version{ID: v.obj.VersionID, LastModified: v.obj.LastModified, Size: v.obj.Size, ETag: v.obj.ETag})
			}
		}
		out[0].Latest = true
		return out
	}
	if o, ok := m.objects[key]; ok {
		return []backend.Version{{ID: o.VersionID, LastModified: o.LastModified, Size: o.Size, ETag: o.ETag, Latest: true}}
	}
	return nil
}

// storageClassOf is the storage class of one version of key. Called with
// m.mu held.
func (m *Bucket) storageClassOf(key string, v backend.Version) string {
	if v.DeleteMarker {
		return ""
	}
	o, _ := m.version(key, v.ID)
	return o.StorageClass
}

func (m *Bucket) ListVersions(ctx context.Context, in backend.ListInput) (backend.VersionPage, error) {
	if err := m.begin(ctx, opList, in.Prefix); err != nil {
		return backend.VersionPage{}, err
	}
	markerKey, markerID, err := backend.ParseVersionToken(in.Token)
	if err != nil {
		return backend.VersionPage{}, fmt.Errorf("list versions %q: token %q: %w", in.Prefix, in.Token, err)
	}
	maxKeys := in.MaxKeys
	if maxKeys <= 0 {
		maxKeys = 1000
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// A key has versions once the bucket was versioned; before that, its
	// object is its only ("null") version.
	seen := map[string]bool{}
	var keys []string
	add := func(k string) {
		if !seen[k] && strings.HasPrefix(k, in.Prefix) && k >= markerKey {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for k := range m.versions {
		add(k)
	}
	for k := range m.objects {
		add(k)
	}
	sort.Strings(keys)
	var page backend.VersionPage
	for _, k := range keys {
		versions := m.versionsOf(k)
		if k == markerKey {
			// Resume after the marker's version; without one, after the key.
			i := len(versions)
			for j, v := range versions {
				if markerID != "" && v.ID == markerID {
					i = j + 1
				}
			}
			versions = versions[i:]
		}
		for _, v := range versions {
			if len(page.Versions) == maxKeys {
				last := page.Versions[len(page.Versions)-1]
				page.NextToken = backend.VersionToken(last.Key, last.ID)
				return page, nil
			}
			page.Versions = append(page.Versions, backend.VersionEntry{Key: k, Version: v, StorageClass: m.storageClassOf(k, v)})
		}
	}
	return page, nil
}
