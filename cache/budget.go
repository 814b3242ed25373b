package cache

import "sync"

// Budget bounds the bytes that all readers of a mount hold in buffers at once.
// A nil *Budget is unbounded.
type Budget struct {
	limit int64

	// mu protects the fields below.
	mu      sync.Mutex
	used    int64
	streams int // readers reading ahead now, which share the budget fairly

	// onStreams, if set, hears the number of readers reading ahead each
	// time it changes.
	onStreams func(streams int)
}

// OnStreams has f told the number of readers reading ahead at once, each
// time it changes (called with a reader's lock held: f must not read).
func (b *Budget) OnStreams(f func(streams int)) { b.onStreams = f }

// share is how many bytes of buffers one reader reading ahead may hold:
// an equal part of the budget, so that four readers at once each read
// ahead a quarter as far instead of two reading ahead in full and two
// fetching only what the kernel asks. A nil *Budget gives no bound.
func (b *Budget) share() int64 {
	if b == nil {
		return 1<<63 - 1
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit / int64(max(b.streams, 1))
}

// join and leave count the readers reading ahead.
func (b *Budget) join()  { b.countStreams(1) }
func (b *Budget) leave() { b.countStreams(-1) }

func (b *Budget) countStreams(d int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.streams += d
	n := b.streams
	b.mu.Unlock()
	if b.onStreams != nil {
		b.onStreams(n)
	}
}

// NewBudget returns a budget of bytes shared by the readers given it.
func NewBudget(bytes int64) *Budget { return &Budget{limit: bytes} }

// take never blocks: a reader without budget reads uncached instead of waiting,
// so readers can never deadlock on each other's buffers.
func (b *Budget) take(n int64) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

func (b *Budget) give(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}
