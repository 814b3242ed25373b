package fs

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/cache"
)

// The requests of a local file's lifecycle: its uploads and its first
// download. The state changes they lead to are in lifecycle.go.

// flush stores the file if it holds changes S3 does not have. It returns
// the ETag S3 now has ("" if nothing was stored) and the errno.
func (l *localFile) flush(ctx context.Context) (string, syscall.Errno) {
	f := l.fs
	if !f.beginFlush() {
		// Shutting down: no upload starts now, but a file its writer
		// closed is complete, so it is journaled as pending for the next
		// mount rather than left as an unfinished write.
		job, ok := l.beginUpload()
		if !ok {
			return "", 0
		}
		abortStream(job.stream)
		return "", l.uploadFailed(job, errShuttingDown)
	}
	defer f.endFlush()
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	// One look at the state: the retrier may let the file go (dropped,
	// S3 has it all) at any moment, and that is nothing to store, not a
	// bad descriptor.
	if errno := l.storable(); errno != 0 {
		return "", errno
	}
	job, ok := l.beginUpload()
	if !ok {
		return "", 0
	}
	obj, err := f.upload(ctx, l, &job)
	if errors.Is(err, backend.ErrPrecondition) || errors.Is(err, backend.ErrNotFound) {
		// The SDK may have retried a request whose first answer was lost:
		// then the object S3 refused to replace (412), or the upload it
		// no longer knows because it completed it (404 NoSuchUpload), is
		// this very upload.
		if own, ok := f.ownUpload(ctx, job); ok {
			obj, err = own, nil
		}
	}
	if err != nil {
		return "", l.uploadFailed(job, err)
	}
	l.uploaded(job, obj)
	return obj.ETag, 0
}

// upload stores job: a server-side copy when only headers changed, else
// the stream's completion or a fresh upload of the staged copy. It may
// change job.headers to what S3 ends up with.
func (f *filesystem) upload(ctx context.Context, l *localFile, job *uploadJob) (backend.Object, error) {
	in := job.headers.putInput(job.key)
	in.IfNoneMatch, in.IfMatch = job.base == "", job.base
	switch {
	case job.headersOnly:
		return f.bucket.Copy(ctx, job.headers.copyInput(backend.Object{Key: job.key, ETag: job.base, Size: job.size}))
	case job.stream != nil:
		s := job.stream
		if s.SetHeaders(in) {
			return s.Finish(ctx, job.size)
		}
		// The multipart upload started with the headers of that time, and
		// S3 keeps them. The mtime that the writer's own writes moved
		// stands (correcting it would copy the whole object again); any
		// other change, an mtime set explicitly included, is stored with a
		// server-side copy once the upload completes.
		l.mu.Lock()
		started := l.streamHeaders
		l.mu.Unlock()
		if !job.mtimeSet {
			job.headers.mtime = started.mtime
			// So does the ctime that they moved, unless headers changed too.
			if h := job.headers; sameHeaders(withTimesOf(h, started), started) {
				job.headers = withTimesOf(h, started)
			}
		}
		obj, err := s.Finish(ctx, job.size)
		if err == nil && !sameHeaders(job.headers, started) {
			obj, err = f.bucket.Copy(ctx, job.headers.copyInput(backend.Object{Key: job.key, ETag: obj.ETag, Size: job.size}))
		}
		return obj, err
	default:
		return cache.Upload(ctx, f.bucket, l.staged, job.size, in, l.uploadOptions())
	}
}

// ownUpload tells whether the object under job's key is job's own upload,
// by the headers only this upload wrote: its mtime to the nanosecond, mode
// and size.
func (f *filesystem) ownUpload(ctx context.Context, job uploadJob) (backend.Object, bool) {
	obj, err := f.freshHeaders(ctx, job.key)
	if err != nil || obj.Size != job.size {
		return backend.Object{}, false
	}
	want := job.headers.metadata()
	for _, name := range []string{"mtime", "mode", "uid", "gid"} {
		if obj.Metadata[name] != want[name] {
			return backend.Object{}, false
		}
	}
	return obj, true
}

// load fetches the object into the staged copy, once, before the first
// read or write needs it.
func (l *localFile) load(ctx context.Context) error {
	l.loadMu.Lock()
	defer l.loadMu.Unlock()
	l.mu.Lock()
	remote, size, base, key := l.remote, l.size, l.base, l.key
	l.mu.Unlock()
	if !remote {
		return nil
	}
	if size > 0 {
		body, _, err := l.fs.bucket.Get(ctx, backend.GetInput{Key: key, Length: -1, IfMatch: base})
		if err != nil {
			return err
		}
		defer body.Close()
		if err := l.staged.Fill(body); err != nil {
			return fmt.Errorf("stage %q: %w", key, err)
		}
	}
	l.mu.Lock()
	l.remote = false
	l.mu.Unlock()
	return nil
}

// sameHeaders tells whether a and b store the same headers.
func sameHeaders(a, b fileHeaders) bool {
	am, bm := a.metadata(), b.metadata()
	if a.contentType != b.contentType || a.storageClass != b.storageClass || a.sse != b.sse ||
		a.sseKMSKeyID != b.sseKMSKeyID || len(am) != len(bm) {
		return false
	}
	for k, v := range am {
		if bm[k] != v {
			return false
		}
	}
	return true
}

// withTimesOf is h with the atime and ctime of started.
func withTimesOf(h, started fileHeaders) fileHeaders {
	h.atime, h.ctime = started.atime, started.ctime
	return h
}
