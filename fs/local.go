package fs

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/cache"
)

// The filesystem's table of local files: every file this mount holds a
// local copy of, by key. Lookups and listings show them over what S3
// says (a pending file is not in S3 yet), and the retrier uploads the
// pending ones.

// replaceLocal adds l to the table; a file that held its key before was
// replaced (created or renamed over) and is gone.
func (f *filesystem) replaceLocal(l *localFile) {
	l.mu.Lock()
	key := l.key
	l.mu.Unlock()
	f.mu.Lock()
	old := f.local[key]
	f.local[key] = l
	f.mu.Unlock()
	if old != nil && old != l {
		old.unlinked()
	}
}

// unregister removes l, whose key is key, from the table, if it is still
// there (a file that replaced it keeps its place).
func (f *filesystem) unregister(l *localFile, key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.local[key] == l {
		delete(f.local, key)
	}
}

// rekey moves l from old to its current key in the table; a file that
// held that key was renamed over and is gone.
func (f *filesystem) rekey(l *localFile, old string) {
	f.mu.Lock()
	if f.local[old] == l {
		delete(f.local, old)
	}
	f.mu.Unlock()
	f.replaceLocal(l)
}

// localAt is the live local file of key, if any.
func (f *filesystem) localAt(key string) *localFile {
	f.mu.Lock()
	l := f.local[key]
	f.mu.Unlock()
	if l != nil && l.live() {
		return l
	}
	return nil
}

// localsUnder returns the local files whose keys start with prefix.
func (f *filesystem) localsUnder(prefix string) map[string]*localFile {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]*localFile{}
	for key, l := range f.local {
		if strings.HasPrefix(key, prefix) {
			out[key] = l
		}
	}
	return out
}

// localDirUnder tells whether a live local file lies under directory
// prefix. Every lookup asks, so it copies only the files under prefix. A
// file a release let go stays in the table a moment after (dropIfDone
// removes it last), and must not keep its directory alive: after `mv d
// e`, `mkdir d` got EEXIST.
func (f *filesystem) localDirUnder(prefix string) bool {
	var under []*localFile
	f.mu.Lock()
	for key, l := range f.local {
		if strings.HasPrefix(key, prefix) {
			under = append(under, l)
		}
	}
	f.mu.Unlock()
	return slices.ContainsFunc(under, (*localFile).live) // f.mu is a leaf: asked after
}

// retryDelay is how long a pending file waits before its attempt-th
// retry: doubling from one second, at most 30.
func (f *filesystem) retryDelay(attempt int) time.Duration {
	if f.cfg.RetryDelay != nil {
		return f.cfg.RetryDelay(attempt)
	}
	return min(time.Second<<min(attempt-1, 5), 30*time.Second)
}

// wakeRetrier makes the retrier look at the pending files now; it starts
// with the first one.
func (f *filesystem) wakeRetrier() {
	f.retrierOnce.Do(func() { go f.retryLoop() })
	select {
	case f.retryWake <- struct{}{}:
	default:
	}
}

// retryTimeout bounds one retry, so a hung server does not stall the others.
const retryTimeout = 5 * time.Minute

// retryLoop uploads pending files whose delay has passed, until shutdown.
// Files still open are left to their own close or fsync.
func (f *filesystem) retryLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-f.retryWake:
		case <-timer.C:
		case <-f.done:
			return
		}
		timer.Reset(time.Until(f.retryRound()))
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// isClosing tells whether shutdown has begun.
func (f *filesystem) isClosing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closing
}

// conflictDir and lostDir are where local copies are set aside.
func (f *filesystem) conflictDir() string {
	if j := f.cfg.Journal; j != nil {
		return j.ConflictDir()
	}
	return filepath.Join(filepath.Dir(f.staging.Dir()), "conflicts")
}

func (f *filesystem) lostDir() string {
	if j := f.cfg.Journal; j != nil {
		return j.LostDir()
	}
	return filepath.Join(filepath.Dir(f.staging.Dir()), "lost+found")
}

// freshHeaders asks the bucket itself for key's object, past any cache.
func (f *filesystem) freshHeaders(ctx context.Context, key string) (backend.Object, error) {
	if hf, ok := f.cfg.Bucket.(headerFetcher); ok {
		return hf.Fresh(ctx, key)
	}
	return f.bucket.Head(ctx, key)
}

// resume takes over the pending files an earlier mount left and retries
// them in the background; multipart uploads of files that mount was still
// writing are aborted.
func (f *filesystem) resume(pending []cache.RecoveredFile, unfinished []cache.Entry) {
	for _, r := range pending {
		f.abortUnfinished(r.Entry) // it is uploaded anew
		l := f.recovered(r)
		f.replaceLocal(l)
		f.log.Info("resuming a pending upload left by an earlier mount", "key", l.key,
			"size", r.Entry.Size, "pending_since", r.Entry.Since, "reason", r.Entry.Reason)
	}
	if len(pending) > 0 {
		f.wakeRetrier()
	}
	for _, e := range unfinished {
		f.log.Warn("a file was being written when its mount stopped; not uploaded, data kept",
			"key", e.Put.Key, "kept", f.lostDir())
		f.abortUnfinished(e)
	}
}

// startWindow is longer than a start request may take with its retries
// (the S3 backend bounds each request at 30 s by default).
const startWindow = time.Minute

// abortUnfinished aborts the multipart uploads an earlier mount had started
// for e: every upload of the key begun while its start was requested (the
// mount may have died before the ID came back, or after a retried start),
// which includes the one whose ID it recorded. Only when the uploads
// cannot be listed (or the entry predates the request's time) is that ID
// aborted alone.
func (f *filesystem) abortUnfinished(e cache.Entry) {
	if e.UploadID == "" && e.UploadRequested.IsZero() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := e.Put.Key
	var err error
	if !e.UploadRequested.IsZero() {
		var n int
		n, err = backend.AbortUploadsStarted(ctx, f.bucket, key, e.UploadRequested, e.UploadRequested.Add(startWindow), "")
		if err == nil {
			if n > 0 {
				f.log.Info("aborted the multipart uploads an earlier mount started", "key", key, "aborted", n)
			}
			return
		}
	}
	if e.UploadID != "" {
		err = f.bucket.AbortUpload(ctx, key, e.UploadID)
	}
	if err != nil && !isNotFound(err) {
		f.log.Warn("a multipart upload an earlier mount started may be left open", "key", key, "upload", e.UploadID, "err", err)
	}
}

// pendingReport lists, one line each, the files of this mount that S3
// does not have yet and the conflict copies set aside:
// STATE<TAB>KEY<TAB>SIZE<TAB>SINCE<TAB>DETAIL.
func (f *filesystem) pendingReport() string {
	var lines []string
	for _, l := range f.localsUnder("") {
		l.mu.Lock()
		if l.state == statePending || l.state == stateBroken {
			reason := ""
			if l.failure != nil {
				reason = l.failure.Error()
			}
			lines = append(lines, fmt.Sprintf("%s\t%s\t%d\t%s\t%s", l.state, l.key, l.contentSize(),
				l.since.UTC().Format(time.RFC3339), oneLine(reason)))
		}
		l.mu.Unlock()
	}
	lines = append(lines, f.deleteReport()...)
	if j := f.cfg.Journal; j != nil {
		aside, _ := j.Aside()
		for path, e := range aside {
			lines = append(lines, fmt.Sprintf("conflict\t%s\t%d\t%s\tcopy at %s", e.Put.Key, e.Size,
				e.Since.UTC().Format(time.RFC3339), path))
		}
	}
	slices.Sort(lines)
	var report strings.Builder
	for i, line := range lines {
		if report.Len()+len(line)+1 > maxXattrSize-len(moreLine) {
			fmt.Fprintf(&report, moreLine, len(lines)-i)
			break
		}
		report.WriteString(line + "\n")
	}
	return report.String()
}

// maxXattrSize is the largest attribute value Linux hands out; a longer
// one fails getxattr with E2BIG.
const maxXattrSize = 64 << 10

// moreLine counts the files a pending report has no room for.
const moreLine = "more\t-\t-\t-\t%8d more not shown: an attribute holds at most 64 KiB\n"

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\t", " ").Replace(s) }
