package cache

import (
	"context"

	"github.com/bucketfs/bucketfs/backend"
)

// Writes pass through; whatever they change is forgotten, so the next
// lookup sees the new state.

func (m *Meta) Copy(ctx context.Context, in backend.CopyInput) (backend.Object, error) {
	obj, err := m.next.Copy(ctx, in)
	m.Forget(in.Dst)
	return obj, err
}

func (m *Meta) StartUpload(ctx context.Context, in backend.PutInput) (string, error) {
	return m.next.StartUpload(ctx, in)
}

func (m *Meta) UploadPart(ctx context.Context, in backend.PartInput) (string, error) {
	return m.next.UploadPart(ctx, in)
}

func (m *Meta) CompleteUpload(ctx context.Context, in backend.CompleteInput) (backend.Object, error) {
	obj, err := m.next.CompleteUpload(ctx, in)
	m.Forget(in.Key)
	return obj, err
}

func (m *Meta) AbortUpload(ctx context.Context, key, uploadID string) error {
	return m.next.AbortUpload(ctx, key, uploadID)
}
