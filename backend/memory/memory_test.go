package memory_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/backendtest"
	"github.com/bucketfs/bucketfs/backend/memory"
)

func TestMemory(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Bucket { return memory.New("test") })
}

func TestMemoryListingHeaders(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Bucket {
		m := memory.New("test")
		m.ListHeaders = true
		return m
	})
}

func TestMemoryFaultAndRequests(t *testing.T) {
	ctx := t.Context()
	m := memory.New("test")
	if _, err := m.Put(ctx, backend.PutInput{Key: "k", Body: strings.NewReader("x"), Size: 1}); err != nil {
		t.Fatal(err)
	}
	m.SetFault(func(op, key string) error {
		if op == "head" && key == "k" {
			return backend.ErrUnavailable
		}
		return nil
	})
	if _, err := m.Head(ctx, "k"); !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("Head with a fault: %v, want ErrUnavailable", err)
	}
	if _, _, err := m.Get(ctx, backend.GetInput{Key: "k", Length: -1}); err != nil {
		t.Errorf("Get is not faulted: %v", err)
	}
	m.SetFault(nil)
	if _, err := m.Head(ctx, "k"); err != nil {
		t.Errorf("Head without a fault: %v", err)
	}
	m.HasPrefix(ctx, "")
	m.Delete(ctx, "k")
	for op, want := range map[string]int64{"head": 2, "get": 1, "put": 1, "list": 1, "delete": 1, "bogus": 0} {
		if got := m.Requests(op); got != want {
			t.Errorf("Requests(%q) = %d, want %d", op, got, want)
		}
	}
}
