package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"testing"

	"github.com/bucketfs/bucketfs/backend"
)

// TestErrnoTable: every error a backend or fs makes, wrapped as they wrap
// them, turns into its errno in the one table.
func TestErrnoTable(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("put %q: %w", "k", err) }
	tests := []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{wrap(backend.ErrNotFound), syscall.ENOENT},
		{wrap(backend.ErrNoSuchBucket), syscall.ENOENT},
		{wrap(backend.ErrAccessDenied), syscall.EACCES},
		{wrap(backend.ErrBucketNotEmpty), syscall.ENOTEMPTY},
		{errNotEmpty, syscall.ENOTEMPTY},
		{wrap(backend.ErrPrecondition), syscall.ESTALE},            // an overwrite lost
		{nameTaken(wrap(backend.ErrPrecondition)), syscall.EEXIST}, // a create lost
		{wrap(backend.ErrKeyTooLong), syscall.ENAMETOOLONG},
		{wrap(backend.ErrTooLarge), syscall.EFBIG},
		{wrap(backend.ErrThrottled), syscall.EAGAIN},
		{wrap(backend.ErrUnavailable), syscall.EIO},
		{errShuttingDown, syscall.EIO},
		{wrap(backend.ErrNotImplemented), syscall.ENOTSUP},
		{wrap(backend.ErrInvalid), syscall.EINVAL},
		{context.Canceled, syscall.EINTR},
		{&os.PathError{Op: "write", Path: "staged-1", Err: syscall.ENOSPC}, syscall.ENOSPC},
		{&os.PathError{Op: "write", Path: "staged-1", Err: syscall.EDQUOT}, syscall.EDQUOT},
		{errors.New("something else"), syscall.EIO},
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range tests {
		if got := toErrno(log, "op", "k", tt.err); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.err, got, tt.want)
		}
	}
}
