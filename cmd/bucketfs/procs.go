package main

import (
	"os"
	"runtime"
	"sync/atomic"

	"github.com/bucketfs/bucketfs/cache"
)

// procs adapts how many cores run Go code (GOMAXPROCS) to what the mount
// does, unless GOMAXPROCS is set. Each FUSE request is a round trip
// between the program reading the mount and the daemon; with a P for
// every core, the scheduler's idle Ps wake and spin on the core that
// program needs: on 2 cores, 4 KiB random reads served from local disk ran
// at 18,000-26,000 a second with 2 Ps and 35,000-41,000 with 1. Several
// files streaming at once are the opposite case, Go code copying bodies on
// every core: 4 parallel readers of 256 MiB ran at 652 MiB/s with 1 P and
// 770 MiB/s with 2. So the daemon runs on one core fewer than it may use,
// and on all of them while two or more files read ahead at once.
type procs struct {
	all, few int
	fixed    bool
	now      atomic.Int32
}

func newProcs() *procs {
	p := &procs{all: runtime.GOMAXPROCS(0), fixed: os.Getenv("GOMAXPROCS") != ""}
	p.few = max(1, p.all-1)
	p.set(p.few)
	return p
}

// follow has b's count of readers reading ahead set the number of Ps.
func (p *procs) follow(b *cache.Budget) *cache.Budget {
	b.OnStreams(func(streams int) {
		if streams >= 2 {
			p.set(p.all)
		} else {
			p.set(p.few)
		}
	})
	return b
}

// set changes GOMAXPROCS when n differs from what it is: each change stops
// the world for a moment.
func (p *procs) set(n int) {
	if p.fixed || int(p.now.Swap(int32(n))) == n {
		return
	}
	runtime.GOMAXPROCS(n)
}
