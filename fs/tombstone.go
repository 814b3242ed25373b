package fs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/cache"
)

// Deferred deletes (--write-back): unlink and rmdir return once the delete
// is journaled, and the mount hides the name at once; a background loop
// removes the keys in batches of up to 1,000 (DeleteObjects) once the
// mount's writers pause. Each key's requests stay in order: a store to a
// key with a delete outstanding (a file created again, a rename onto the
// name, a mkdir) first sends that delete itself, or waits for the batch
// carrying it.

// tombstone is a delete of one key not yet done.
type tombstone struct {
	since   time.Time
	sending bool          // in a request now
	again   bool          // asked for again while sending: send once more
	done    chan struct{} // closed once the tombstone is gone
}

// deferDelete journals a delete of key and hides key until it is done.
func (f *filesystem) deferDelete(key string) error {
	now := time.Now()
	if j := f.cfg.Journal; j != nil {
		if err := j.RecordDelete(cache.DeferredDelete{Bucket: f.bucket.Name(), Key: key, Since: now}); err != nil {
			return err
		}
	}
	f.mu.Lock()
	if t := f.tombs[key]; t != nil {
		t.again = t.again || t.sending
	} else {
		f.tombs[key] = &tombstone{since: now, done: make(chan struct{})}
	}
	f.lastWriteBack = now
	f.mu.Unlock()
	f.wakeDeleter()
	return nil
}

// removedDir records that prefix was removed with its markers' deletes
// deferred: S3 may list it until they are done.
func (f *filesystem) removedDir(prefix string) {
	f.mu.Lock()
	f.gone[prefix] = true
	f.mu.Unlock()
}

// removedDirIfDeleting records that prefix went away (renamed) when keys
// under it have deletes outstanding: until they are done S3 lists it.
func (f *filesystem) removedDirIfDeleting(prefix string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for key := range f.tombs {
		if strings.HasPrefix(key, prefix) {
			f.gone[prefix] = true
			return
		}
	}
}

// isDeleted tells whether key's delete is outstanding: key is not there.
func (f *filesystem) isDeleted(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tombs[key] != nil
}

// isRemovedDir tells whether prefix, or a directory above it, was removed
// and S3 may still list it.
func (f *filesystem) isRemovedDir(prefix string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.removedLocked(prefix)
}

func (f *filesystem) removedLocked(prefix string) bool {
	if len(f.gone) == 0 {
		return false
	}
	for p := prefix; p != ""; p = parentPrefix(strings.TrimSuffix(p, "/")) {
		if f.gone[p] {
			return true
		}
	}
	return false
}

// hasDir tells whether the directory prefix exists: keys lie under it,
// in S3 or among this mount's local files. Keys whose deletes are
// outstanding do not count, nor does a directory removed meanwhile.
func (f *filesystem) hasDir(ctx context.Context, prefix string) (bool, error) {
	if f.localDirUnder(prefix) {
		return true, nil
	}
	ok, err := f.bucket.HasPrefix(ctx, prefix)
	if err != nil || !ok {
		return false, err
	}
	if f.isRemovedDir(prefix) {
		return false, nil
	}
	if !f.deletingUnder(prefix) {
		return true, nil
	}
	return f.keptUnder(ctx, prefix)
}

// deletingUnder tells whether deletes are outstanding under prefix.
func (f *filesystem) deletingUnder(prefix string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for key := range f.tombs {
		if strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// keptUnder tells whether S3 lists a key under prefix that is not being
// deleted.
func (f *filesystem) keptUnder(ctx context.Context, prefix string) (bool, error) {
	in := backend.ListInput{Prefix: prefix}
	for {
		page, err := f.bucket.List(ctx, in)
		if err != nil {
			return false, err
		}
		if len(f.withoutDeleted(page).Objects) > 0 {
			return true, nil
		}
		if page.NextToken == "" {
			return false, nil
		}
		in.Token = page.NextToken
	}
}

// withoutDeleted leaves out of a listing the keys whose deletes are
// outstanding and the directories removed meanwhile.
func (f *filesystem) withoutDeleted(page backend.ListPage) backend.ListPage {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tombs) == 0 && len(f.gone) == 0 {
		return page
	}
	out := backend.ListPage{NextToken: page.NextToken}
	for _, obj := range page.Objects {
		if f.tombs[obj.Key] == nil && !f.removedLocked(parentPrefix(obj.Key)) {
			out.Objects = append(out.Objects, obj)
		}
	}
	for _, p := range page.Prefixes {
		if !f.removedLocked(p) {
			out.Prefixes = append(out.Prefixes, p)
		}
	}
	return out
}

// settle sends key's outstanding delete, or waits for the batch carrying
// it, before something is stored at key; the directories above key are
// not removed any more.
func (f *filesystem) settle(ctx context.Context, key string) error {
	f.mu.Lock()
	if len(f.tombs) == 0 && len(f.gone) == 0 {
		f.mu.Unlock()
		return nil // every store asks: nothing outstanding is the common case
	}
	for p := parentPrefix(key); p != ""; p = parentPrefix(strings.TrimSuffix(p, "/")) {
		delete(f.gone, p)
	}
	delete(f.gone, key)
	f.mu.Unlock()
	for {
		f.mu.Lock()
		t := f.tombs[key]
		if t == nil {
			f.mu.Unlock()
			return nil
		}
		if t.sending {
			f.mu.Unlock()
			select {
			case <-t.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		t.sending = true
		f.mu.Unlock()
		err := f.cfg.Bucket.Delete(ctx, key)
		f.deleted(key, t, err)
		if err != nil {
			return err
		}
	}
}

// deleted records the outcome of the request that sent t, key's delete.
func (f *filesystem) deleted(key string, t *tombstone, err error) {
	f.mu.Lock()
	t.sending = false
	if err != nil || t.again {
		t.again = false
		f.mu.Unlock()
		return
	}
	delete(f.tombs, key)
	close(t.done)
	f.mu.Unlock()
	if j := f.cfg.Journal; j != nil {
		if jerr := j.DeleteDone(f.bucket.Name(), key); jerr != nil {
			f.log.Warn("journal", "key", key, "err", jerr)
		}
	}
}

func (f *filesystem) wakeDeleter() {
	f.deleterOnce.Do(func() { go f.deleteLoop() })
	select {
	case f.deleteWake <- struct{}{}:
	default:
	}
}

// deleteLoop sends the outstanding deletes once the mount's writers
// pause, until shutdown.
func (f *filesystem) deleteLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-f.deleteWake:
		case <-timer.C:
		case <-f.done:
			return
		}
		timer.Reset(time.Until(f.deleteRound(context.Background())))
	}
}

// deleteRound sends the deletes that are due, 1,000 a request, and
// returns when to look again.
func (f *filesystem) deleteRound(ctx context.Context) time.Time {
	for {
		keys, due := f.dueDeletes()
		if len(keys) == 0 {
			return due
		}
		if j := f.cfg.Journal; j != nil {
			j.SyncDeletes() // what is sent now was asked for durably
		}
		failed, err := f.deleteKeys(ctx, keys)
		for _, key := range keys {
			f.mu.Lock()
			t := f.tombs[key]
			f.mu.Unlock()
			if t == nil {
				continue
			}
			kerr := err
			if kerr == nil {
				kerr = failed[key]
			}
			if kerr != nil {
				f.log.Warn("write-back: a delete failed; retried", "key", key, "err", kerr)
			}
			f.deleted(key, t, kerr)
		}
		if err != nil || len(failed) > 0 {
			return time.Now().Add(unreachableProbe)
		}
	}
}

// dueDeletes marks as sending, and returns, up to a batch of the deletes
// that may go now: once no write-back change came for writeBackQuiet, or
// the oldest has waited writeBackLongest. Otherwise it returns when.
func (f *filesystem) dueDeletes() ([]string, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	next := now.Add(time.Hour)
	quiet := f.lastWriteBack.Add(writeBackQuiet)
	var keys []string
	for key, t := range f.tombs {
		if t.sending {
			continue
		}
		due := minTime(quiet, t.since.Add(writeBackLongest))
		if f.closing {
			due = now
		}
		if due.After(now) {
			next = minTime(next, due)
			continue
		}
		if len(keys) < backend.MaxBatchDelete {
			t.sending = true
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		f.cleanGoneLocked()
	}
	return keys, next
}

// cleanGoneLocked forgets removed directories with no delete outstanding
// under them: S3 lists them no more. Called with f.mu held.
func (f *filesystem) cleanGoneLocked() {
	for p := range f.gone {
		left := false
		for key := range f.tombs {
			if strings.HasPrefix(key, p) {
				left = true
				break
			}
		}
		if !left {
			delete(f.gone, p)
		}
	}
}

// deleteKeys removes keys with one request where the bucket batches.
func (f *filesystem) deleteKeys(ctx context.Context, keys []string) (map[string]error, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return backend.DeleteKeys(ctx, f.cfg.Bucket, keys)
}

// deleteBeforeUnmount sends every outstanding delete, until the deadline
// or a failure; what is left stays journaled for the next mount.
func (f *filesystem) deleteBeforeUnmount(deadline time.Time) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for ctx.Err() == nil {
		f.mu.Lock()
		left := len(f.tombs)
		for _, t := range f.tombs {
			t.since = time.Time{} // due now
		}
		f.lastWriteBack = time.Time{}
		f.mu.Unlock()
		if left == 0 {
			return
		}
		f.log.Info("write-back: deleting before unmount", "keys", left)
		if next := f.deleteRound(ctx); time.Until(next) > 0 && f.pendingDeletes() > 0 {
			return // a delete failed: the journal keeps it
		}
	}
}

// deletesOutstanding tells whether S3 may list keys the mount removed.
func (f *filesystem) deletesOutstanding() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tombs) > 0 || len(f.gone) > 0
}

// pendingDeletes counts the outstanding deletes.
func (f *filesystem) pendingDeletes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tombs)
}

// resumeDeletes takes over the deletes an earlier mount left undone.
func (f *filesystem) resumeDeletes(deletes []cache.DeferredDelete) {
	f.mu.Lock()
	for _, d := range deletes {
		if f.tombs[d.Key] == nil {
			f.tombs[d.Key] = &tombstone{since: d.Since, done: make(chan struct{})}
		}
	}
	f.mu.Unlock()
	if len(deletes) > 0 {
		f.log.Info("resuming deletes left by an earlier mount", "keys", len(deletes))
		f.wakeDeleter()
	}
}

// deleteReport lists the outstanding deletes for the pending report.
func (f *filesystem) deleteReport() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for key, t := range f.tombs {
		lines = append(lines, fmt.Sprintf("delete\t%s\t0\t%s\twrite-back: deleting in the background", key,
			t.since.UTC().Format(time.RFC3339)))
	}
	return lines
}
