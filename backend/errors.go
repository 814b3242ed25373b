package backend

import "errors"

// Sentinel errors. Backends wrap them with context (operation and key) so that
// exactly one place in fs turns them into errno values.
var (
	ErrNotFound       = errors.New("not found")
	ErrNoSuchBucket   = errors.New("no such bucket")
	ErrAccessDenied   = errors.New("access denied")
	ErrPrecondition   = errors.New("precondition failed")
	ErrNotImplemented = errors.New("not implemented by the server")
	ErrBucketNotEmpty = errors.New("bucket not empty")
	ErrKeyTooLong     = errors.New("key too long")
	ErrTooLarge       = errors.New("entity too large")
	ErrThrottled      = errors.New("throttled")
	ErrInvalid        = errors.New("invalid argument")
	// ErrUnavailable means the server could not be reached or did not answer
	// in time.
	ErrUnavailable = errors.New("server unavailable")
)
