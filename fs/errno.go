package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"

	"github.com/bucketfs/bucketfs/backend"
)

// Errors of fs itself, made where the cause is known (wrapping the
// backend's error) and turned into errno values by the table below.
var (
	// errNameTaken: a create, a copy or a rename without replace found its
	// name taken, by this mount's view or by another client meanwhile.
	errNameTaken = errors.New("the name exists")
	// errNotEmpty: a directory to remove or to replace has entries.
	errNotEmpty = errors.New("directory not empty")
	// errPassingThrough: a file the kernel reads from a local copy itself
	// (passthrough.go) cannot be opened for writing until those close.
	errPassingThrough = errors.New("open for reading straight from its local copy")
)

// errKindChanged: the name holds another kind of object than the node
// the kernel opens (fileNode.holds).
var errKindChanged = fmt.Errorf("the name holds another kind of object now: %w", backend.ErrPrecondition)

// errLocalCopyGone: a descriptor read a local copy that was let go
// without S3 getting it (set aside in a conflict); what S3 has is another
// version.
var errLocalCopyGone = fmt.Errorf("the local copy this descriptor read is gone: %w", backend.ErrPrecondition)

// errOtherVersionOpen: the node has readers of a version other than the
// one S3 has now; ESTALE makes the kernel look the name up again and get
// a node of its own for the new version (readsOtherVersion).
var errOtherVersionOpen = fmt.Errorf("another version of the file is open: %w", backend.ErrPrecondition)

// nameTaken wraps the cause of a lost create as errNameTaken.
func nameTaken(err error) error { return fmt.Errorf("%w: %w", errNameTaken, err) }

// errnoTable is the one mapping from errors to errno values, first match
// wins; the README repeats it.
var errnoTable = []struct {
	err   error
	errno syscall.Errno
}{
	{errNameTaken, syscall.EEXIST},
	{errNotEmpty, syscall.ENOTEMPTY},
	{errPassingThrough, syscall.ETXTBSY},
	{backend.ErrNotFound, syscall.ENOENT},
	{backend.ErrNoSuchBucket, syscall.ENOENT},
	{backend.ErrAccessDenied, syscall.EACCES},
	{backend.ErrBucketNotEmpty, syscall.ENOTEMPTY},
	{backend.ErrPrecondition, syscall.ESTALE},
	{backend.ErrKeyTooLong, syscall.ENAMETOOLONG},
	{backend.ErrTooLarge, syscall.EFBIG},
	{backend.ErrThrottled, syscall.EAGAIN},
	{backend.ErrUnavailable, syscall.EIO}, // after the SDK's retries
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
			switch e.errno {
			case syscall.ENOENT: // a missing name is no failure
			case syscall.EIO:
				log.Error("s3 request failed", "op", op, "key", key, "err", err)
			default:
				log.Debug("s3 request failed", "op", op, "key", key, "errno", e.errno, "err", err)
			}
			return e.errno
		}
	}
	log.Error("s3 request failed", "op", op, "key", key, "err", err)
	return syscall.EIO
}
