package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/bucketfs/bucketfs/backend"
)

// errRangeNotSatisfiable is S3's answer (416 InvalidRange) to a read at or
// past the end of an object; Get turns it into an empty body.
var errRangeNotSatisfiable = errors.New("range not satisfiable")

// errorsByCode maps S3 error codes to sentinels. Codes come first because
// several sentinels share an HTTP status (400 and 403 mean many things).
var errorsByCode = map[string]error{
	"NoSuchKey":             backend.ErrNotFound,
	"NotFound":              backend.ErrNotFound,
	"NoSuchVersion":         backend.ErrNotFound,
	"NoSuchUpload":          backend.ErrNotFound,
	"NoSuchBucketPolicy":    backend.ErrNotFound,
	"NoSuchBucket":          backend.ErrNoSuchBucket,
	"AccessDenied":          backend.ErrAccessDenied,
	"Forbidden":             backend.ErrAccessDenied,
	"AllAccessDisabled":     backend.ErrAccessDenied,
	"InvalidAccessKeyId":    backend.ErrAccessDenied,
	"SignatureDoesNotMatch": backend.ErrAccessDenied,
	"InvalidToken":          backend.ErrAccessDenied,
	"ExpiredToken":          backend.ErrAccessDenied,
	"TokenRefreshRequired":  backend.ErrAccessDenied,
	"PreconditionFailed":    backend.ErrPrecondition,
	// S3's answer to two conditional writes of one key at once: try again.
	"ConditionalRequestConflict": backend.ErrUnavailable,
	"OperationAborted":           backend.ErrUnavailable,
	// versitygw's posix backend: a key under a key that is a file.
	"ObjectParentIsFile":   backend.ErrInvalid,
	"NotImplemented":       backend.ErrNotImplemented,
	"BucketNotEmpty":       backend.ErrBucketNotEmpty,
	"KeyTooLongError":      backend.ErrKeyTooLong,
	"EntityTooLarge":       backend.ErrTooLarge,
	"SlowDown":             backend.ErrThrottled,
	"InternalError":        backend.ErrUnavailable,
	"ServiceUnavailable":   backend.ErrUnavailable,
	"RequestTimeout":       backend.ErrUnavailable, // 400, but the body came too slowly: try again
	"IncompleteBody":       backend.ErrUnavailable,
	"Throttling":           backend.ErrThrottled,
	"ThrottlingException":  backend.ErrThrottled,
	"RequestLimitExceeded": backend.ErrThrottled,
	"TooManyRequests":      backend.ErrThrottled,
	"InvalidArgument":      backend.ErrInvalid,
	"InvalidRequest":       backend.ErrInvalid,
	"InvalidBucketName":    backend.ErrInvalid,
	"EntityTooSmall":       backend.ErrInvalid, // a part but the last under 5 MiB
	"InvalidPart":          backend.ErrInvalid,
	"InvalidPartOrder":     backend.ErrInvalid,
	"MalformedXML":         backend.ErrInvalid, // e.g. completing without parts
	"MalformedPolicy":      backend.ErrInvalid,
	"PermanentRedirect":    backend.ErrInvalid,
	"InvalidRange":         errRangeNotSatisfiable,
}

// errorsByStatus is the fallback for answers without a known code, such as
// the bodiless error answers to HEAD requests.
var errorsByStatus = map[int]error{
	http.StatusMovedPermanently:             backend.ErrInvalid, // bucket in another region
	http.StatusBadRequest:                   backend.ErrInvalid,
	http.StatusForbidden:                    backend.ErrAccessDenied,
	http.StatusNotFound:                     backend.ErrNotFound,
	http.StatusConflict:                     backend.ErrUnavailable, // a concurrent operation: try again
	http.StatusPreconditionFailed:           backend.ErrPrecondition,
	http.StatusRequestEntityTooLarge:        backend.ErrTooLarge,
	http.StatusRequestedRangeNotSatisfiable: errRangeNotSatisfiable,
	http.StatusTooManyRequests:              backend.ErrThrottled,
	http.StatusNotImplemented:               backend.ErrNotImplemented,
	http.StatusInternalServerError:          backend.ErrUnavailable,
	http.StatusBadGateway:                   backend.ErrUnavailable,
	// A bodiless 503 is a server that is not serving; S3's throttling
	// says SlowDown in its body.
	http.StatusServiceUnavailable: backend.ErrUnavailable,
	http.StatusGatewayTimeout:     backend.ErrUnavailable,
}

// classify turns an SDK error into one that wraps a sentinel of package
// backend (when the cause is known) and reads as a short cause. It is the
// only place that interprets S3 errors. SDK errors carry neither credentials
// nor signatures, and the HTTP client strips passwords from URLs, so the text
// is safe to show.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var signing *v4.SigningError
	if errors.As(err, &signing) {
		return fmt.Errorf("%w: no usable credentials: %v", backend.ErrAccessDenied, signing.Err)
	}

	var resp *awshttp.ResponseError
	status := 0
	if errors.As(err, &resp) {
		status = resp.HTTPStatusCode()
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code, msg := apiErr.ErrorCode(), apiErr.ErrorMessage()
		// Answers to HEAD have no body, so the SDK only knows a generic code
		// from the status; MinIO names the real one in a header.
		if resp != nil {
			if c := resp.Response.Header.Get("X-Minio-Error-Code"); c != "" {
				code, msg = c, strings.Trim(resp.Response.Header.Get("X-Minio-Error-Desc"), `"`)
			}
			if r := resp.Response.Header.Get("X-Amz-Bucket-Region"); status == http.StatusMovedPermanently && r != "" {
				msg = "the bucket is in region " + r
			}
		}
		cause := code
		if msg != "" && msg != code {
			cause += ": " + msg
		}
		if status != 0 {
			cause = fmt.Sprintf("%s (HTTP %d)", cause, status)
		}
		if sentinel, ok := errorsByCode[code]; ok {
			return fmt.Errorf("%w: %s", sentinel, cause)
		}
		if sentinel, ok := errorsByStatus[status]; ok {
			return fmt.Errorf("%w: %s", sentinel, cause)
		}
		return errors.New(cause)
	}
	if sentinel, ok := errorsByStatus[status]; ok {
		return fmt.Errorf("%w: HTTP %d", sentinel, status)
	}

	if refusedByClient(err) {
		return fmt.Errorf("%w: the request could not be built: %s", backend.ErrInvalid, networkCause(err))
	}
	if isNetworkError(err) {
		return fmt.Errorf("%w: %s", backend.ErrUnavailable, networkCause(err))
	}
	return errors.New(err.Error())
}

// errorCode is the S3 error code of an SDK error, or "".
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// refusedByClient reports whether Go's HTTP client refused to send the
// request as built (a header value it cannot carry): no retry can help.
func refusedByClient(err error) bool {
	return err != nil && strings.Contains(err.Error(), "net/http: invalid header field")
}

// isNetworkError reports whether err means no usable answer came back.
func isNetworkError(err error) bool {
	var (
		send    *smithyhttp.RequestSendError
		timeout *awshttp.ResponseTimeoutError
		netErr  net.Error
	)
	return errors.As(err, &send) || errors.As(err, &timeout) || errors.As(err, &netErr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, context.DeadlineExceeded)
}

// networkCause is the innermost useful part of a network error, such as
// "dial tcp 127.0.0.1:9: connect: connection refused", without the SDK's
// operation and retry prefixes.
func networkCause(err error) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr.Error()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.Error()
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, "request send failed, "); i >= 0 {
		msg = msg[i+len("request send failed, "):]
	}
	return msg
}
