package s3

import (
	"context"
	"errors"
	"reflect"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Request is what the mount learns of one S3 call, its retries included:
// the figures of its metrics and the line --debug prints of it.
type Request struct {
	Operation string // the S3 API's name: GetObject, ListObjectsV2, ...
	Key       string // the key, or the prefix of a listing
	Status    int    // HTTP status of the last attempt; 0 when no reply came
	Attempts  int    // 1 without retries
	Duration  time.Duration
	Sent      int64 // body bytes S3 took (an upload that succeeded)
	Err       error
}

// observeRequests adds a step to every call that reports it to observe
// once it ends. Presigning runs the same steps but sends nothing, and is
// not reported.
func observeRequests(observe func(Request)) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		operation := stack.ID()
		step := middleware.InitializeMiddlewareFunc("bucketfsObserve", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			start := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			raw, replied := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response)
			if err == nil && !replied {
				return out, md, err // presigned: nothing was sent
			}
			r := Request{Operation: operation, Key: keyOf(in.Parameters), Attempts: 1, Duration: time.Since(start), Err: err}
			if results, ok := retry.GetAttemptResults(md); ok && len(results.Results) > 0 {
				r.Attempts = len(results.Results)
			}
			var failed *awshttp.ResponseError
			switch {
			case errors.As(err, &failed):
				r.Status = failed.HTTPStatusCode()
			case replied:
				r.Status = raw.StatusCode
			}
			if err == nil {
				r.Sent = sentBy(in.Parameters)
			}
			observe(r)
			return out, md, err
		})
		return stack.Initialize.Add(step, middleware.Before)
	}
}

// keyOf is the Key (or, for a listing, the Prefix) of an operation's input.
func keyOf(params any) string {
	v := reflect.ValueOf(params)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return ""
	}
	for _, field := range []string{"Key", "Prefix"} {
		if f := v.Elem().FieldByName(field); f.IsValid() && f.Type() == reflect.TypeFor[*string]() && !f.IsNil() {
			return f.Elem().String()
		}
	}
	return ""
}

// sentBy is how many body bytes an upload carried.
func sentBy(params any) int64 {
	var n *int64
	switch in := params.(type) {
	case *awss3.PutObjectInput:
		n = in.ContentLength
	case *awss3.UploadPartInput:
		n = in.ContentLength
	}
	if n == nil {
		return 0
	}
	return *n
}
