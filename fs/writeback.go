package fs

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/cache"
)

// Write-back (--write-back): close(2) returns once the journal holds the
// file durably, as a pending file, and the retrier uploads it in the
// background once the mount's writers pause, several files at a time,
// each file's uploads in order (its flushMu). fsync(2) still waits for
// S3. Unmounting uploads what is pending first, as far as the server lets
// it.

const (
	// writeBackQuiet is how long no file may have been closed before the
	// write-back uploads start, and writeBackLongest how long one waits at
	// most: a burst of writes (cp -r, tar x) is not slowed by uploads
	// competing for the same CPUs and disk, and a file rewritten within
	// the burst is uploaded once.
	writeBackQuiet   = 500 * time.Millisecond
	writeBackLongest = 5 * time.Second
)

// errWriteBack is why a file closed with --write-back is pending: not a
// failure, only an upload still to come.
var errWriteBack = errors.New("write-back: in the journal, uploading in the background")

// closeLocal stores what a close or the last release leaves unsaved: in
// the journal with write-back, else in S3.
func (n *fileNode) closeLocal(ctx context.Context, l *localFile) syscall.Errno {
	if l != nil && n.fs.cfg.WriteBack && l.writeBack() {
		return 0
	}
	return n.flushLocal(ctx, l)
}

// writeBack makes the file's unsaved content and headers durable in the
// journal and leaves the upload to the retrier. It reports false when the
// journal could not take them; the caller then uploads now.
func (l *localFile) writeBack() bool {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.needsUpload() {
		return true
	}
	prev, prevFailure, prevSince := l.state, l.failure, l.since
	if l.state != statePending {
		l.since, l.failure, l.attempts = time.Now(), errWriteBack, 0
	}
	now := time.Now()
	l.state, l.retryAt = statePending, minTime(now.Add(writeBackQuiet), l.since.Add(writeBackLongest))
	if err := l.staged.Record(l.entry(cache.EntryPending), true); err != nil {
		l.state, l.failure, l.since = prev, prevFailure, prevSince
		l.fs.log.Warn("write-back: the journal refused the file; uploading it now", "key", l.key, "err", err)
		return false
	}
	l.fs.wroteBack(now)
	l.fs.wakeRetrier()
	return true
}

// wroteBack records a write-back close at now, which defers the uploads.
func (f *filesystem) wroteBack(now time.Time) {
	f.mu.Lock()
	f.lastWriteBack = now
	f.mu.Unlock()
}

// dueAt is when the retrier may upload l, pending since since and due at
// at: a write-back file also waits for the mount's writers to pause.
// Called with l.mu held.
func (f *filesystem) dueAt(l *localFile) time.Time {
	if !errors.Is(l.failure, errWriteBack) {
		return l.retryAt
	}
	f.mu.Lock()
	quiet := f.lastWriteBack.Add(writeBackQuiet)
	f.mu.Unlock()
	return minTime(maxTime(l.retryAt, quiet), l.since.Add(writeBackLongest))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// retryParallel is how many pending files the retrier uploads at once.
const retryParallel = 16

// retryRound uploads, retryParallel at a time, the pending files whose
// delay has passed and that no writer holds; it stops starting uploads
// once one finds the server unreachable. It returns when the next file
// is due.
func (f *filesystem) retryRound() time.Time {
	var (
		mu   sync.Mutex
		next = time.Now().Add(time.Hour)
		down bool
		wg   sync.WaitGroup
	)
	slots := make(chan struct{}, retryParallel)
	for _, l := range f.localsUnder("") {
		l.mu.Lock()
		pending, open, at := l.state == statePending, l.handles > 0, f.dueAt(l)
		l.mu.Unlock()
		if !pending {
			continue
		}
		if open || time.Now().Before(at) {
			// An open file is left to its own close, but looked at again
			// in case it is released without one.
			mu.Lock()
			next = minTime(next, at)
			mu.Unlock()
			continue
		}
		slots <- struct{}{}
		mu.Lock()
		stop := down
		mu.Unlock()
		if stop {
			<-slots
			break // the others would only wait for the same dead server
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			ctx, cancel := context.WithTimeout(context.Background(), retryTimeout)
			l.flush(ctx)
			cancel()
			l.mu.Lock()
			unreachable := l.state == statePending && errors.Is(l.failure, backend.ErrUnavailable)
			stillPending, at := l.state == statePending, f.dueAt(l)
			l.mu.Unlock()
			l.dropIfDone(false)
			mu.Lock()
			down = down || unreachable
			if stillPending {
				next = minTime(next, at)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return next
}

// uploadBeforeUnmount uploads the pending files, round after round, until
// none is left that can go, the server is unreachable, or the deadline.
func (f *filesystem) uploadBeforeUnmount(deadline time.Time) {
	for time.Now().Before(deadline) {
		left := 0
		for _, l := range f.localsUnder("") {
			l.mu.Lock()
			if l.state == statePending && l.handles == 0 {
				left++
			}
			l.mu.Unlock()
		}
		if left == 0 {
			return
		}
		f.log.Info("write-back: uploading before unmount", "files", left)
		next := f.retryRound()
		if wait := time.Until(next); wait > 0 {
			// Left pending by a failure: the journal keeps them for the
			// next mount unless the server answers again soon.
			if time.Now().Add(wait).After(deadline) {
				return
			}
			time.Sleep(wait)
		}
	}
}
