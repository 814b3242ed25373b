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
// file durably, as a pending file, and the retrier uploads it at once in
// the background, several files at a time, each file's uploads in order
// (its flushMu). fsync(2) still waits for S3. Unmounting uploads what is
// pending first, as far as the server lets it.

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
	l.state, l.retryAt = statePending, time.Now()
	if err := l.staged.Record(l.entry(cache.EntryPending), true); err != nil {
		l.state, l.failure, l.since = prev, prevFailure, prevSince
		l.fs.log.Warn("write-back: the journal refused the file; uploading it now", "key", l.key, "err", err)
		return false
	}
	l.fs.wakeRetrier()
	return true
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
		pending, open, at := l.state == statePending, l.handles > 0, l.retryAt
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
			stillPending, at := l.state == statePending, l.retryAt
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
