package s3

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/aws/smithy-go"
)

// TestRetryerDecisions: a reply cut short while the SDK decodes it is
// retried (it used to fail the call: a listing or a completion whose
// answer lost its tail gave EIO); a request the client refused to build
// is not.
func TestRetryerDecisions(t *testing.T) {
	r := newRetryer(3)
	cut := &smithy.DeserializationError{Err: fmt.Errorf("failed to decode response body, %w", io.ErrUnexpectedEOF)}
	if !r.IsErrorRetryable(cut) {
		t.Error("a reply cut short is not retried")
	}
	if r.IsErrorRetryable(errors.New("some decoding error")) {
		t.Error("an unknown error is retried")
	}
}

// TestRetryerFailsFastWhileRefused: once a connection was refused, the
// next requests get one attempt (a dead server fails calls at once), and
// the usual attempts come back after downWindow.
func TestRetryerFailsFastWhileRefused(t *testing.T) {
	r := newRetryer(3)
	if r.MaxAttempts() != 3 {
		t.Fatalf("attempts before any failure: %d", r.MaxAttempts())
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	if !r.IsErrorRetryable(refused) {
		t.Error("a refused connection is not retried")
	}
	if r.MaxAttempts() != 1 {
		t.Errorf("attempts right after a refused connection: %d, want 1", r.MaxAttempts())
	}
	r.downUntil.Store(time.Now().Add(-time.Millisecond).UnixNano()) // the window passed
	if r.MaxAttempts() != 3 {
		t.Errorf("attempts after the window: %d, want 3", r.MaxAttempts())
	}
}
