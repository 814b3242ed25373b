package memory

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/bucketfs/bucketfs/backend"
)

// memVersion is one version of a key in a versioned memory bucket.
type memVersion struct {
	obj          memObject
	id           string // of a delete marker; an object's is obj.VersionID
	at           time.Time
	deleteMarker bool
}

// newVersionID names the next version: "null" until versioning is enabled.
// Called with m.mu held.
func (m *Bucket) newVersionID() string {
	if m.versioning != "Enabled" {
		return "null"
	}
	m.versionSeq++
	return fmt.Sprintf("v%06d", m.versionSeq)
}

// recordVersion keeps a version of key once the bucket has been versioned;
// a "null" version replaces the previous "null" one, as on S3. Called with
// m.mu held.
func (m *Bucket) recordVersion(key string, v memVersion) {
	if m.versioning == "" {
		return
	}
	if m.versions == nil {
		m.versions = map[string][]memVersion{}
	}
	id := v.id
	if !v.deleteMarker {
		id = v.obj.VersionID
	}
	list := slices.DeleteFunc(m.versions[key], func(old memVersion) bool {
		return id == "null" && old.versionID() == "null"
	})
	m.versions[key] = append(list, v)
}

func (v memVersion) versionID() string {
	if v.deleteMarker {
		return v.id
	}
	return v.obj.VersionID
}

// version finds one version of key. Called with m.mu held.
func (m *Bucket) version(key, id string) (memObject, bool) {
	for _, v := range m.versions[key] {
		if !v.deleteMarker && v.obj.VersionID == id {
			return v.obj, true
		}
	}
	if o, ok := m.objects[key]; ok && o.VersionID == id {
		return o, true
	}
	return memObject{}, false
}

func (m *Bucket) GetACL(ctx context.Context, key string) (backend.ACL, error) {
	if err := m.begin(ctx, opHead, key); err != nil {
		return backend.ACL{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[key]
	if !ok {
		return backend.ACL{}, fmt.Errorf("get acl %q: %w", key, backend.ErrNotFound)
	}
	acl := backend.ACL{Owner: "memory-owner", Grants: []backend.Grant{{Grantee: "memory-owner", Type: "CanonicalUser", Permission: "FULL_CONTROL"}}}
	switch o.acl {
	case "public-read", "public-read-write":
		acl.Grants = append(acl.Grants, backend.Grant{Grantee: "http://acs.amazonaws.com/groups/global/AllUsers", Type: "Group", Permission: "READ"})
	case "authenticated-read":
		acl.Grants = append(acl.Grants, backend.Grant{Grantee: "http://acs.amazonaws.com/groups/global/AuthenticatedUsers", Type: "Group", Permission: "READ"})
	}
	return acl, nil
}

func (m *Bucket) PutACL(ctx context.Context, key, canned string) error {
	if err := m.begin(ctx, opPut, key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[key]
	if !ok {
		return fmt.Errorf("put acl %q: %w", key, backend.ErrNotFound)
	}
	o.acl = canned
	m.objects[key] = o
	return nil
}

func (m *Bucket) Versions(ctx context.Context, key string) ([]backend.Version, error) {
	if err := m.begin(ctx, opList, key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.versionsOf(key), nil
}

// Presign returns a memory:// URL: it names what would be signed, but no
// server answers it.
func (m *Bucket) Presign(ctx context.Context, key, method string, expires time.Duration) (string, error) {
	if method != "GET" && method != "PUT" {
		return "", fmt.Errorf("presign %s: %w", method, backend.ErrInvalid)
	}
	if expires < time.Second || expires > 7*24*time.Hour {
		return "", fmt.Errorf("presign expiry %v not within 1s and 7 days: %w", expires, backend.ErrInvalid)
	}
	q := url.Values{"method": {method}, "expires": {strconv.Itoa(int(expires.Seconds()))}}
	return "memory://" + m.name + "/" + url.PathEscape(key) + "?" + q.Encode(), nil
}

func (m *Bucket) Versioning(ctx context.Context) (string, error) {
	if err := m.begin(ctx, opBucket, ""); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.versioning == "" {
		return "Unversioned", nil
	}
	return m.versioning, nil
}

func (m *Bucket) SetVersioning(ctx context.Context, status string) error {
	if err := m.begin(ctx, opBucket, ""); err != nil {
		return err
	}
	if status != "Enabled" && status != "Suspended" {
		return fmt.Errorf("versioning %q: %w", status, backend.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.versioning == "" {
		// Objects stored before versioning are the "null" version.
		m.versions = map[string][]memVersion{}
		for k, o := range m.objects {
			m.versions[k] = []memVersion{{obj: o}}
		}
	}
	m.versioning = status
	return nil
}

func (m *Bucket) Policy(ctx context.Context) (string, error) {
	if err := m.begin(ctx, opBucket, ""); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.policy == "" {
		return "", fmt.Errorf("bucket policy: %w", backend.ErrNotFound)
	}
	return m.policy, nil
}

func (m *Bucket) SetPolicy(ctx context.Context, policy string) error {
	if err := m.begin(ctx, opBucket, ""); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.policy = policy
	return nil
}

func (m *Bucket) DeletePolicy(ctx context.Context) error {
	if err := m.begin(ctx, opBucket, ""); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.policy = ""
	return nil
}
