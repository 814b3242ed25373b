package backend

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// MemoryAccount is an in-memory Account for tests.
type MemoryAccount struct {
	// mu protects the field below.
	mu      sync.Mutex
	buckets map[string]*Memory
}

var _ Account = (*MemoryAccount)(nil)

// NewMemoryAccount returns an account with the given empty buckets.
func NewMemoryAccount(names ...string) *MemoryAccount {
	a := &MemoryAccount{buckets: map[string]*Memory{}}
	for _, n := range names {
		a.buckets[n] = NewMemory(n)
	}
	return a
}

func (a *MemoryAccount) Buckets(ctx context.Context) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var names []string
	for n := range a.buckets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (a *MemoryAccount) CreateBucket(ctx context.Context, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.buckets[name]; ok {
		return fmt.Errorf("create bucket %q: %w", name, ErrPrecondition)
	}
	a.buckets[name] = NewMemory(name)
	return nil
}

func (a *MemoryAccount) DeleteBucket(ctx context.Context, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.buckets[name]
	if !ok {
		return fmt.Errorf("delete bucket %q: %w", name, ErrNoSuchBucket)
	}
	b.mu.Lock()
	empty := len(b.objects) == 0
	b.mu.Unlock()
	if !empty {
		return fmt.Errorf("delete bucket %q: %w", name, ErrBucketNotEmpty)
	}
	delete(a.buckets, name)
	return nil
}

// Bucket returns the named bucket, or an empty one no listing shows if
// there is none (as S3 would answer NoSuchBucket, lookups find nothing).
func (a *MemoryAccount) Bucket(name string) Bucket {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b, ok := a.buckets[name]; ok {
		return b
	}
	return NewMemory(name)
}

// Memory returns the named bucket, for tests to fill and inspect.
func (a *MemoryAccount) Memory(name string) *Memory {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.buckets[name]
}
