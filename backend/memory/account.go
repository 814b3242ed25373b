package memory

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/bucketfs/bucketfs/backend"
)

// Account is an in-memory backend.Account for tests.
type Account struct {
	// mu protects the field below.
	mu      sync.Mutex
	buckets map[string]*Bucket
}

var _ backend.Account = (*Account)(nil)

// NewMemoryAccount returns an account with the given empty buckets.
func NewAccount(names ...string) *Account {
	a := &Account{buckets: map[string]*Bucket{}}
	for _, n := range names {
		a.buckets[n] = New(n)
	}
	return a
}

func (a *Account) Buckets(ctx context.Context) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var names []string
	for n := range a.buckets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (a *Account) CreateBucket(ctx context.Context, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.buckets[name]; ok {
		return fmt.Errorf("create bucket %q: %w", name, backend.ErrPrecondition)
	}
	a.buckets[name] = New(name)
	return nil
}

func (a *Account) DeleteBucket(ctx context.Context, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.buckets[name]
	if !ok {
		return fmt.Errorf("delete bucket %q: %w", name, backend.ErrNoSuchBucket)
	}
	b.mu.Lock()
	empty := len(b.objects) == 0
	b.mu.Unlock()
	if !empty {
		return fmt.Errorf("delete bucket %q: %w", name, backend.ErrBucketNotEmpty)
	}
	delete(a.buckets, name)
	return nil
}

// Bucket returns the named bucket, or an empty one no listing shows if
// there is none (as S3 would answer NoSuchBucket, lookups find nothing).
func (a *Account) Bucket(name string) backend.Bucket {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b, ok := a.buckets[name]; ok {
		return b
	}
	return New(name)
}

// Memory returns the named bucket, for tests to fill and inspect.
func (a *Account) Memory(name string) *Bucket {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.buckets[name]
}
