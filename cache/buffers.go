package cache

import (
	"math/bits"
	"sync"
)

// Buffers are pooled by power-of-two capacity, so a stream's 8 MiB chunks
// reuse each other's memory instead of growing the heap.
var bufPools [64]sync.Pool

func bufCap(n int64) int64 {
	if n < minPooled {
		return n
	}
	return 1 << bits.Len64(uint64(n-1))
}

func getBuf(n int64) []byte {
	size := bufCap(n)
	if size >= minPooled {
		if b, ok := bufPools[bits.Len64(uint64(size))].Get().(*[]byte); ok {
			return (*b)[:n]
		}
	}
	return make([]byte, n, size)
}

func putBuf(b []byte) {
	if size := int64(cap(b)); size >= minPooled && size == bufCap(size) {
		bufPools[bits.Len64(uint64(size))].Put(&b)
	}
}
