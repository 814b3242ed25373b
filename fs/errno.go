package fs

import (
	"context"
	"errors"
	"log/slog"
	"syscall"

	"github.com/bucketfs/bucketfs/backend"
)

// errnoTable is the one mapping from backend errors to errno values; the
// README repeats it.
var errnoTable = []struct {
	err   error
	errno syscall.Errno
}{
	{backend.ErrNotFound, syscall.ENOENT},
	{backend.ErrNoSuchBucket, syscall.ENOENT},
	{backend.ErrAccessDenied, syscall.EACCES},
	{backend.ErrBucketNotEmpty, syscall.ENOTEMPTY},
	{backend.ErrPrecondition, syscall.ESTALE},
	{backend.ErrKeyTooLong, syscall.ENAMETOOLONG},
	{backend.ErrTooLarge, syscall.EFBIG},
	{backend.ErrThrottled, syscall.EAGAIN},
	{backend.ErrNotImplemented, syscall.ENOTSUP},
	{backend.ErrInvalid, syscall.EINVAL},
	{context.Canceled, syscall.EINTR},
	{syscall.ENOSPC, syscall.ENOSPC}, // a full --cache-dir
	{syscall.EDQUOT, syscall.EDQUOT},
}

// toErrno turns an error of an operation on key into an errno. Errors the
// table does not know become EIO, and their cause is logged here, once.
func toErrno(log *slog.Logger, op, key string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	for _, e := range errnoTable {
		if errors.Is(err, e.err) {
			if e.errno != syscall.ENOENT { // a missing name is no failure
				log.Debug("s3 request failed", "op", op, "key", key, "errno", e.errno, "err", err)
			}
			return e.errno
		}
	}
	log.Error("s3 request failed", "op", op, "key", key, "err", err)
	return syscall.EIO
}
