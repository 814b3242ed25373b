// Package memory is an in-memory backend.Bucket and backend.Account for
// tests. Its knobs (SetFault, SetClock, MinPartSize, ListHeaders, request
// counters, Keys) stay out of package backend, which production code uses.
package memory

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bucketfs/bucketfs/backend"
)

// Bucket is an in-memory backend.Bucket for tests: it follows the same
// contract as the S3 backend, counts requests, and can inject faults.
type Bucket struct {
	name string

	// ListHeaders makes listings carry each object's headers, as MinIO's
	// listing extension does; without it listings are plain S3's.
	ListHeaders bool

	fault atomic.Pointer[func(op, key string) error]

	requests [opCount]atomic.Int64
	// listedWithHeaders counts the objects listings returned with headers.
	listedWithHeaders atomic.Int64

	// MinPartSize is the smallest part but the last that CompleteUpload
	// accepts: S3's 5 MiB unless a test lowers it.
	MinPartSize int64

	// mu protects the fields below.
	mu         sync.Mutex
	objects    map[string]memObject
	sorted     []string // the keys of objects, sorted; nil when a key came or went since
	uploads    map[string]*memUpload
	uploadID   int
	now        func() time.Time
	versioning string                  // "", "Enabled" or "Suspended"
	versions   map[string][]memVersion // per key, oldest first, once versioned
	versionSeq int
	policy     string
}

type memObject struct {
	backend.Object
	data []byte
	acl  string // canned ACL
}

type op int

const (
	opHead op = iota
	opList
	opGet
	opPut
	opDelete
	opCopy
	opUpload // StartUpload, UploadPart, CompleteUpload, AbortUpload
	opBucket // versioning and policy
	opCount
)

var opNames = [opCount]string{"head", "list", "get", "put", "delete", "copy", "upload", "bucket"}

// New returns an empty in-memory bucket.
func New(name string) *Bucket {
	return &Bucket{name: name, objects: map[string]memObject{}, uploads: map[string]*memUpload{},
		now: time.Now, MinPartSize: 5 << 20}
}

// ListedWithHeaders returns how many objects listings returned with their
// headers: what MinIO reads each object's metadata for.
func (m *Bucket) ListedWithHeaders() int64 { return m.listedWithHeaders.Load() }

// Requests returns how many requests of an operation ("head", "list", "get",
// "put", "delete", "copy", "upload") the bucket has served.
func (m *Bucket) Requests(opName string) int64 {
	for i, n := range opNames {
		if n == opName {
			return m.requests[i].Load()
		}
	}
	return 0
}

// SetFault makes every later request first call f with the operation name
// ("head", "list", "get", "put", "delete") and the key or prefix; a non-nil
// result fails the request. nil removes the fault. Safe while requests run.
func (m *Bucket) SetFault(f func(op, key string) error) {
	if f == nil {
		m.fault.Store(nil)
		return
	}
	m.fault.Store(&f)
}

func (m *Bucket) Name() string { return m.name }

func (m *Bucket) begin(ctx context.Context, o op, key string) error {
	m.requests[o].Add(1)
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" && o != opList && o != opBucket {
		// S3 has no object without a key; the SDK refuses to send one.
		return fmt.Errorf("%s: empty key: %w", opNames[o], backend.ErrInvalid)
	}
	if f := m.fault.Load(); f != nil {
		if err := (*f)(opNames[o], key); err != nil {
			return fmt.Errorf("%s %q: %w", opNames[o], key, err)
		}
	}
	return nil
}

func (m *Bucket) Head(ctx context.Context, key string) (backend.Object, error) {
	if err := m.begin(ctx, opHead, key); err != nil {
		return backend.Object{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[key]
	if !ok {
		return backend.Object{}, fmt.Errorf("head %q: %w", key, backend.ErrNotFound)
	}
	return o.withHeaders(), nil
}

func (m *Bucket) List(ctx context.Context, in backend.ListInput) (backend.ListPage, error) {
	if err := m.begin(ctx, opList, in.Prefix); err != nil {
		return backend.ListPage{}, err
	}
	withHeaders := m.ListHeaders && !in.Plain
	maxKeys := in.MaxKeys
	if maxKeys <= 0 {
		maxKeys = 1000
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Pages are found by binary search in the sorted keys, so that
	// listing a directory of a million keys costs a sort, not one per page.
	keys := m.sortedKeys()
	from := sort.SearchStrings(keys, max(in.Prefix, in.Token))
	if from < len(keys) && keys[from] == in.Token {
		from++
	}
	end := from + sort.Search(len(keys)-from, func(i int) bool { return !strings.HasPrefix(keys[from+i], in.Prefix) })
	keys = keys[:end]
	var page backend.ListPage
	n := 0
	for i := from; i < len(keys); i++ {
		k := keys[i]
		if n == maxKeys {
			page.NextToken = keys[i-1]
			break
		}
		if in.Delimiter != "" {
			if j := strings.Index(k[len(in.Prefix):], in.Delimiter); j >= 0 {
				p := k[:len(in.Prefix)+j+len(in.Delimiter)]
				page.Prefixes = append(page.Prefixes, p)
				n++
				// Skip every key under this common prefix; the token is the
				// prefix's last key so the next page resumes after it.
				i += sort.Search(len(keys)-i, func(d int) bool { return !strings.HasPrefix(keys[i+d], p) }) - 1
				if n == maxKeys && i+1 < len(keys) {
					page.NextToken = keys[i]
					break
				}
				continue
			}
		}
		o := m.objects[k].withHeaders()
		if withHeaders {
			m.listedWithHeaders.Add(1)
		} else {
			o.HasHeaders, o.ContentType, o.Metadata, o.VersionID = false, "", nil, ""
		}
		page.Objects = append(page.Objects, o)
		n++
	}
	return page, nil
}

// ListsHeaders tells whether listings carry headers when asked to.
func (m *Bucket) ListsHeaders() bool { return m.ListHeaders }

func (m *Bucket) HasPrefix(ctx context.Context, prefix string) (bool, error) {
	if err := m.begin(ctx, opList, prefix); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.objects {
		if strings.HasPrefix(k, prefix) {
			return true, nil
		}
	}
	return false, nil
}

func (m *Bucket) Get(ctx context.Context, in backend.GetInput) (io.ReadCloser, backend.Object, error) {
	if err := m.begin(ctx, opGet, in.Key); err != nil {
		return nil, backend.Object{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[in.Key]
	if in.VersionID != "" {
		o, ok = m.version(in.Key, in.VersionID)
	}
	if !ok {
		return nil, backend.Object{}, fmt.Errorf("get %q: %w", in.Key, backend.ErrNotFound)
	}
	if in.IfMatch != "" && in.IfMatch != o.ETag {
		return nil, backend.Object{}, fmt.Errorf("get %q if-match %s: %w", in.Key, in.IfMatch, backend.ErrPrecondition)
	}
	start := min(max(in.Offset, 0), int64(len(o.data)))
	end := int64(len(o.data))
	if in.Length >= 0 {
		end = min(end, start+in.Length)
	}
	// The stored slice is never modified in place, so sharing it is safe.
	return io.NopCloser(bytes.NewReader(o.data[start:end])), o.withHeaders(), nil
}

func (m *Bucket) Put(ctx context.Context, in backend.PutInput) (backend.Object, error) {
	if err := m.begin(ctx, opPut, in.Key); err != nil {
		return backend.Object{}, err
	}
	data, err := io.ReadAll(in.Body)
	if err != nil {
		return backend.Object{}, fmt.Errorf("put %q: read body: %w", in.Key, err)
	}
	if in.Size >= 0 && int64(len(data)) != in.Size {
		return backend.Object{}, fmt.Errorf("put %q: body has %d bytes, want %d: %w", in.Key, len(data), in.Size, backend.ErrInvalid)
	}
	if len(in.Key) > 1024 {
		return backend.Object{}, fmt.Errorf("put: %w", backend.ErrKeyTooLong)
	}
	sum := md5.Sum(data)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.store(in, data, hex.EncodeToString(sum[:]))
}

// store writes an object after checking in's conditions. Called with m.mu
// held.
func (m *Bucket) store(in backend.PutInput, data []byte, etag string) (backend.Object, error) {
	old, exists := m.objects[in.Key]
	if in.IfNoneMatch && exists {
		return backend.Object{}, fmt.Errorf("put %q if-none-match: %w", in.Key, backend.ErrPrecondition)
	}
	if in.IfMatch != "" && (!exists || old.ETag != in.IfMatch) {
		return backend.Object{}, fmt.Errorf("put %q if-match %s: %w", in.Key, in.IfMatch, backend.ErrPrecondition)
	}
	ct := in.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	class := in.StorageClass
	if class == "" {
		class = "STANDARD"
	}
	o := memObject{
		Object: backend.Object{
			Key:          in.Key,
			Size:         int64(len(data)),
			ETag:         etag,
			LastModified: m.now().UTC().Truncate(time.Second),
			StorageClass: class,
			ContentType:  ct,
			Metadata:     maps.Clone(in.Metadata),
			SSE:          in.SSE,
			SSEKMSKeyID:  in.SSEKMSKeyID,
			VersionID:    m.newVersionID(),
		},
		data: data,
		acl:  in.ACL,
	}
	if !exists {
		m.sorted = nil
	}
	m.objects[in.Key] = o
	m.recordVersion(in.Key, memVersion{obj: o})
	return o.withHeaders(), nil
}

func (m *Bucket) Delete(ctx context.Context, key string) error {
	if err := m.begin(ctx, opDelete, key); err != nil {
		return err
	}
	m.remove(key)
	return nil
}

// remove deletes key, leaving a delete marker where versioning is on.
func (m *Bucket) remove(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[key]; ok && m.versioning == "Enabled" {
		m.recordVersion(key, memVersion{deleteMarker: true, id: m.newVersionID(), at: m.now().UTC()})
	}
	if _, ok := m.objects[key]; ok {
		m.sorted = nil
	}
	delete(m.objects, key)
}

// sortedKeys returns the keys of objects, sorted, sorting them only after
// a key came or went. Called with m.mu held; the slice is not modified
// afterwards, only replaced.
func (m *Bucket) sortedKeys() []string {
	if m.sorted == nil {
		m.sorted = make([]string, 0, len(m.objects))
		for k := range m.objects {
			m.sorted = append(m.sorted, k)
		}
		sort.Strings(m.sorted)
	}
	return m.sorted
}

// DeleteKeys removes keys as one request, as DeleteObjects does; a fault
// set for "delete" on a key fails that key only.
func (m *Bucket) DeleteKeys(ctx context.Context, keys []string) (map[string]error, error) {
	m.requests[opDelete].Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	failed := map[string]error{}
	for _, key := range keys {
		if f := m.fault.Load(); f != nil {
			if err := (*f)("delete", key); err != nil {
				failed[key] = fmt.Errorf("delete %q: %w", key, err)
				continue
			}
		}
		m.remove(key)
	}
	return failed, nil
}

func (o memObject) withHeaders() backend.Object {
	obj := o.Object
	obj.HasHeaders = true
	obj.Metadata = maps.Clone(o.Metadata)
	if obj.Metadata == nil {
		obj.Metadata = map[string]string{}
	}
	return obj
}
