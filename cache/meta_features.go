package cache

import (
	"context"
	"time"

	"github.com/bucketfs/bucketfs/backend"
)

// The object and bucket attributes (the user.s3.* xattrs) are read fresh: they are
// asked for rarely, and by someone who wants the current answer.

func (m *Meta) GetACL(ctx context.Context, key string) (backend.ACL, error) {
	return m.next.GetACL(ctx, key)
}

func (m *Meta) PutACL(ctx context.Context, key, canned string) error {
	return m.next.PutACL(ctx, key, canned)
}

func (m *Meta) Versions(ctx context.Context, key string) ([]backend.Version, error) {
	return m.next.Versions(ctx, key)
}

func (m *Meta) ListVersions(ctx context.Context, in backend.ListInput) (backend.VersionPage, error) {
	return m.next.ListVersions(ctx, in)
}

func (m *Meta) Presign(ctx context.Context, key, method string, expires time.Duration) (string, error) {
	return m.next.Presign(ctx, key, method, expires)
}

func (m *Meta) Versioning(ctx context.Context) (string, error) { return m.next.Versioning(ctx) }

func (m *Meta) SetVersioning(ctx context.Context, status string) error {
	return m.next.SetVersioning(ctx, status)
}

func (m *Meta) Policy(ctx context.Context) (string, error) { return m.next.Policy(ctx) }

func (m *Meta) SetPolicy(ctx context.Context, policy string) error {
	return m.next.SetPolicy(ctx, policy)
}

func (m *Meta) DeletePolicy(ctx context.Context) error { return m.next.DeletePolicy(ctx) }
