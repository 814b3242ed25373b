package memory

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/bucketfs/bucketfs/backend"
)

// memUpload is a multipart upload in progress.
type memUpload struct {
	key       string
	headers   backend.PutInput
	parts     map[int][]byte
	initiated time.Time
}

func (m *Bucket) Copy(ctx context.Context, in backend.CopyInput) (backend.Object, error) {
	if err := m.begin(ctx, opCopy, in.Dst); err != nil {
		return backend.Object{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	src, ok := m.objects[in.Src]
	if in.SrcVersionID != "" {
		src, ok = m.version(in.Src, in.SrcVersionID)
	}
	if !ok {
		return backend.Object{}, fmt.Errorf("copy %q: %w", in.Src, backend.ErrNotFound)
	}
	if in.Src == in.Dst && !in.ReplaceHeaders && in.SrcVersionID == "" && in.StorageClass == "" && in.SSE == "" {
		// S3 refuses a copy onto itself that changes nothing.
		return backend.Object{}, fmt.Errorf("copy %q onto itself without new headers: %w", in.Src, backend.ErrInvalid)
	}
	if in.SrcETag != "" && src.ETag != in.SrcETag {
		return backend.Object{}, fmt.Errorf("copy %q if-match %s: %w", in.Src, in.SrcETag, backend.ErrPrecondition)
	}
	headers := backend.PutInput{Key: in.Dst, ContentType: src.ContentType, Metadata: src.Metadata,
		StorageClass: in.StorageClass, SSE: in.SSE, SSEKMSKeyID: in.SSEKMSKeyID, ACL: in.ACL,
		IfNoneMatch: in.DstIfNoneMatch, IfMatch: in.DstIfMatch}
	if in.ReplaceHeaders {
		headers.ContentType, headers.Metadata = in.ContentType, in.Metadata
	}
	// The stored slice is never modified in place: sharing it is a copy.
	// The copy is stored whole, so its ETag is the MD5 of the data even
	// when the source's was a multipart one, as on S3.
	sum := md5.Sum(src.data)
	return m.store(headers, src.data, hex.EncodeToString(sum[:]))
}

func (m *Bucket) StartUpload(ctx context.Context, in backend.PutInput) (string, error) {
	if err := m.begin(ctx, opUpload, in.Key); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.uploadID++
	id := "upload-" + strconv.Itoa(m.uploadID)
	in.Body = nil
	m.uploads[id] = &memUpload{key: in.Key, headers: in, parts: map[int][]byte{}, initiated: time.Now()}
	return id, nil
}

func (m *Bucket) UploadPart(ctx context.Context, in backend.PartInput) (string, error) {
	if err := m.begin(ctx, opUpload, in.Key); err != nil {
		return "", err
	}
	if in.Number < 1 || in.Number > 10000 {
		return "", fmt.Errorf("upload part %d of %q: %w", in.Number, in.Key, backend.ErrInvalid)
	}
	data, err := io.ReadAll(in.Body)
	if err != nil {
		return "", fmt.Errorf("upload part %d of %q: read body: %w", in.Number, in.Key, err)
	}
	if int64(len(data)) != in.Size {
		return "", fmt.Errorf("upload part %d of %q: body has %d bytes, want %d: %w", in.Number, in.Key, len(data), in.Size, backend.ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.uploads[in.UploadID]
	if !ok || u.key != in.Key {
		return "", fmt.Errorf("upload part %d of %q: no upload %s: %w", in.Number, in.Key, in.UploadID, backend.ErrNotFound)
	}
	u.parts[in.Number] = data
	sum := md5.Sum(data)
	return hex.EncodeToString(sum[:]), nil
}

func (m *Bucket) CompleteUpload(ctx context.Context, in backend.CompleteInput) (backend.Object, error) {
	if err := m.begin(ctx, opUpload, in.Key); err != nil {
		return backend.Object{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.uploads[in.UploadID]
	if !ok || u.key != in.Key {
		return backend.Object{}, fmt.Errorf("complete %q: no upload %s: %w", in.Key, in.UploadID, backend.ErrNotFound)
	}
	if len(in.Parts) == 0 {
		return backend.Object{}, fmt.Errorf("complete %q: no parts: %w", in.Key, backend.ErrInvalid)
	}
	var data bytes.Buffer
	sums := md5.New()
	for i, p := range in.Parts {
		part, ok := u.parts[p.Number]
		sum := md5.Sum(part)
		if !ok || hex.EncodeToString(sum[:]) != p.ETag || (i > 0 && p.Number <= in.Parts[i-1].Number) {
			return backend.Object{}, fmt.Errorf("complete %q: part %d: %w", in.Key, p.Number, backend.ErrInvalid)
		}
		if i < len(in.Parts)-1 && int64(len(part)) < m.MinPartSize {
			return backend.Object{}, fmt.Errorf("complete %q: part %d has %d bytes, under the minimum: %w", in.Key, p.Number, len(part), backend.ErrInvalid)
		}
		data.Write(part)
		sums.Write(sum[:])
	}
	headers := u.headers
	headers.IfNoneMatch, headers.IfMatch = in.IfNoneMatch, in.IfMatch
	etag := fmt.Sprintf("%s-%d", hex.EncodeToString(sums.Sum(nil)), len(in.Parts))
	obj, err := m.store(headers, data.Bytes(), etag)
	if err != nil {
		return backend.Object{}, err
	}
	delete(m.uploads, in.UploadID)
	return obj, nil
}

func (m *Bucket) AbortUpload(ctx context.Context, key, uploadID string) error {
	if err := m.begin(ctx, opUpload, key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.uploads, uploadID)
	return nil
}

func (m *Bucket) ListUploads(ctx context.Context, key string) ([]backend.Upload, error) {
	if err := m.begin(ctx, opList, key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []backend.Upload
	for id, u := range m.uploads {
		if u.key == key {
			out = append(out, backend.Upload{ID: id, Initiated: u.initiated})
		}
	}
	slices.SortFunc(out, func(a, b backend.Upload) int { return a.Initiated.Compare(b.Initiated) })
	return out, nil
}

// Uploads returns how many multipart uploads are open: tests check that
// failed uploads are aborted.
func (m *Bucket) Uploads() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.uploads)
}

// Keys returns every key the bucket holds, sorted.
func (m *Bucket) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sortedKeys())
}
