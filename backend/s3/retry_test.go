package s3

import (
	"errors"
	"fmt"
	"io"
	"testing"

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
