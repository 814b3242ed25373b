package s3_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/s3"
)

// fakeS3 answers PUTs with answer(n) for the n-th request (from 1).
func fakeS3(t *testing.T, answer func(n int64, w http.ResponseWriter)) (endpoint string, requests *atomic.Int64) {
	requests = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer(requests.Add(1), w)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requests
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>m</Message></Error>`))
}

// TestS3ConditionalConflictIsRetried: S3 answers 409 ConditionalRequestConflict
// to a conditional write racing another, and asks for a retry; it is not
// a lost condition.
func TestS3ConditionalConflictIsRetried(t *testing.T) {
	setAWSEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret", "AWS_REGION=us-east-1")
	endpoint, requests := fakeS3(t, func(n int64, w http.ResponseWriter) {
		if n == 1 {
			s3Error(w, http.StatusConflict, "ConditionalRequestConflict")
			return
		}
		w.Header().Set("ETag", `"abc"`)
	})
	b := newS3(t, endpoint, s3.Config{Bucket: "b"})
	_, err := b.Put(t.Context(), backend.PutInput{Key: "k", Body: strings.NewReader("x"), Size: 1, IfNoneMatch: true})
	if err != nil || requests.Load() != 2 {
		t.Errorf("Put after a 409 ConditionalRequestConflict: %v after %d requests; want success on the retry", err, requests.Load())
	}
	// Every retry answered so: the caller may retry later, it is no conflict.
	endpoint, _ = fakeS3(t, func(n int64, w http.ResponseWriter) { s3Error(w, http.StatusConflict, "ConditionalRequestConflict") })
	b = newS3(t, endpoint, s3.Config{Bucket: "b"})
	_, err = b.Put(t.Context(), backend.PutInput{Key: "k", Body: strings.NewReader("x"), Size: 1, IfNoneMatch: true})
	if errors.Is(err, backend.ErrPrecondition) || !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("409s to the end: %v, want ErrUnavailable", err)
	}
}

// TestS3RefusedRequestIsPermanent: a header value Go's HTTP client will not
// send fails at once as invalid, without retries or a request.
func TestS3RefusedRequestIsPermanent(t *testing.T) {
	setAWSEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret", "AWS_REGION=us-east-1")
	endpoint, requests := fakeS3(t, func(n int64, w http.ResponseWriter) { w.Header().Set("ETag", `"abc"`) })
	b := newS3(t, endpoint, s3.Config{Bucket: "b"})
	start := time.Now()
	_, err := b.Put(t.Context(), backend.PutInput{Key: "k", Body: strings.NewReader("x"), Size: 1,
		Metadata: map[string]string{"ab": "\x00\xff\x13"}})
	if !errors.Is(err, backend.ErrInvalid) || time.Since(start) > time.Second || requests.Load() != 0 {
		t.Errorf("Put with a header the client refuses: %v after %v and %d requests; want ErrInvalid at once",
			err, time.Since(start), requests.Load())
	}
}

// TestS3ErrorClassification: what each S3 answer means to the callers, for
// requests with a body in the answer (GET) and without (HEAD).
func TestS3ErrorClassification(t *testing.T) {
	setAWSEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret", "AWS_REGION=us-east-1")
	tests := []struct {
		status int
		code   string // "" answers without a body
		want   error
	}{
		{500, "InternalError", backend.ErrUnavailable},
		{500, "", backend.ErrUnavailable},
		{502, "", backend.ErrUnavailable},
		{503, "SlowDown", backend.ErrThrottled},
		{503, "", backend.ErrUnavailable},
		{504, "", backend.ErrUnavailable},
		{409, "ConditionalRequestConflict", backend.ErrUnavailable},
		{409, "", backend.ErrUnavailable},
		{400, "RequestTimeout", backend.ErrUnavailable},
		{400, "IncompleteBody", backend.ErrUnavailable},
		{400, "InvalidArgument", backend.ErrInvalid},
		{400, "", backend.ErrInvalid},
		{403, "AccessDenied", backend.ErrAccessDenied},
		{403, "", backend.ErrAccessDenied},
		{404, "NoSuchKey", backend.ErrNotFound},
		{404, "", backend.ErrNotFound},
		{412, "PreconditionFailed", backend.ErrPrecondition},
		{412, "", backend.ErrPrecondition},
		{429, "", backend.ErrThrottled},
		{501, "NotImplemented", backend.ErrNotImplemented},
	}
	for _, tt := range tests {
		endpoint, _ := fakeS3(t, func(n int64, w http.ResponseWriter) {
			if tt.code == "" {
				w.WriteHeader(tt.status)
				return
			}
			s3Error(w, tt.status, tt.code)
		})
		b := newS3(t, endpoint, s3.Config{Bucket: "b", MaxAttempts: 1})
		var err error
		if tt.code == "" {
			_, err = b.Head(t.Context(), "k")
		} else {
			_, _, err = b.Get(t.Context(), backend.GetInput{Key: "k", Length: -1})
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("%d %q: %v, want %v", tt.status, tt.code, err, tt.want)
		}
	}
}
