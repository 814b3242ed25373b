package fs

import (
	"errors"
	"syscall"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/cache"
)

// What an upload's outcome does to a file's lifecycle (lifecycle.go):
// stored, pending, or set aside as a conflict copy.

// uploadJob is what one upload of the file stores: a snapshot taken under
// mu, uploaded without it.
type uploadJob struct {
	key         string
	headers     fileHeaders
	base        string
	size        int64
	edits       uint64
	headersOnly bool // the content is the object's: a server-side copy will do
	mtimeSet    bool // the mtime was set explicitly (utimes), not by writes
	stream      *cache.Stream
}

// beginUpload snapshots what an upload must store, or reports false when
// S3 has it all. Called with flushMu held.
func (l *localFile) beginUpload() (uploadJob, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.needsUpload() {
		return uploadJob{}, false
	}
	job := uploadJob{key: l.key, headers: l.headers, base: l.base, size: l.contentSize(), edits: l.edits,
		headersOnly: l.contentIsObject(), mtimeSet: l.mtimeSet}
	// A close before the first full part leaves the stream to the writes
	// that may follow: nothing of it is uploaded yet, and a Put stores what
	// there is now.
	if l.stream != nil && job.size >= l.partSize {
		job.stream = l.stopStream()
	}
	return job, true
}

// uploaded records that S3 stored job as obj: the file is clean unless it
// changed meanwhile.
func (l *localFile) uploaded(job uploadJob, obj backend.Object) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.base = obj.ETag
	if job.stream != nil && !l.mtimeSet {
		l.headers.mtime = job.headers.mtime // what S3 says now
	}
	if l.edits != job.edits || !l.needsUpload() {
		return
	}
	if l.state == statePending {
		logStored := l.fs.log.Info
		if errors.Is(l.failure, errWriteBack) {
			logStored = l.fs.log.Debug // the normal course of a write-back
		}
		logStored("pending upload stored", "key", l.key, "pending_since", l.since, "attempts", l.attempts)
		if err := l.staged.Record(l.entry(cache.EntryOpen), false); err != nil {
			l.fs.log.Warn("journal", "key", l.key, "err", err)
		}
	}
	// A small file's stream stays, for writes that may follow its close.
	l.state, l.contentEdited, l.mtimeSet, l.failure, l.attempts = stateClean, false, false, nil, 0
}

// uploadFailed records a failed upload and returns the errno for the
// caller. Another client's version is never overwritten: the local copy
// is set aside as a conflict copy. Any other failure leaves the file
// pending: journaled durably, and retried in the background.
func (l *localFile) uploadFailed(job uploadJob, err error) syscall.Errno {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != stateStaged && l.state != stateStreaming && l.state != statePending {
		return l.fs.errno("upload", job.key, err) // unlinked meanwhile, say
	}
	if errors.Is(err, backend.ErrPrecondition) {
		return l.conflicted(err)
	}
	now := time.Now()
	if l.state != statePending || errors.Is(l.failure, errWriteBack) {
		if l.state != statePending {
			l.since = now
		}
		l.fs.log.Error("upload failed; the file is pending and retried in the background",
			"key", l.key, "staged", l.staged.Path(), "err", err)
	}
	l.state, l.failure = statePending, err
	l.attempts++
	delay := l.fs.retryDelay(l.attempts)
	if errors.Is(err, backend.ErrUnavailable) && l.fs.cfg.RetryDelay == nil {
		// Probing a server that is not answering costs one failed request
		// a round (the retrier stops the round there): often enough that
		// pending files reach it within seconds of its return.
		delay = min(delay, unreachableProbe)
	}
	l.retryAt = now.Add(delay)
	if jerr := l.staged.Record(l.entry(cache.EntryPending), true); jerr != nil {
		l.fs.log.Error("journal: the pending file is not durable", "key", l.key, "err", jerr)
	}
	l.fs.wakeRetrier()
	return l.fs.errno("upload", job.key, err)
}

// conflicted sets the local copy aside: another client created or changed
// the key since this copy was based on it. Called with mu held.
func (l *localFile) conflicted(err error) syscall.Errno {
	l.state, l.failure, l.since = stateConflict, err, time.Now()
	errno := l.fs.errno("upload", l.key, l.conflictErr())
	abort := l.stopStream()
	if abort != nil {
		go abort.Abort()
	}
	path, aerr := l.staged.SetAside(l.fs.conflictDir(), l.entry(cache.EntryConflict))
	if aerr != nil {
		l.fs.log.Error("upload refused: another client changed the object; the local copy stays staged",
			"key", l.key, "staged", l.staged.Path(), "err", aerr)
	} else {
		l.aside = path
		l.fs.log.Warn("upload refused: another client changed the object; local copy kept as a conflict copy",
			"key", l.key, "copy", path)
	}
	l.fs.unregister(l, l.key)
	if m, ok := l.fs.cfg.Bucket.(interface{ Forget(string) }); ok {
		m.Forget(l.key) // the node shows what S3 has now
	}
	return errno
}
