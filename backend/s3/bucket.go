// Package s3 implements backend.Bucket and backend.Account with
// aws-sdk-go-v2, for Amazon S3 and S3-compatible servers (MinIO, versitygw).
// Nothing of the SDK leaves this package: requests and answers cross as
// backend types, and S3's errors as backend's sentinel errors (errors.go).
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/bucketfs/bucketfs/backend"
)

// checkTimeout bounds CheckBucket, so a mount against an unreachable
// endpoint fails fast.
const checkTimeout = 10 * time.Second

// Bucket is a backend.Bucket backed by aws-sdk-go-v2. Create it with New.
type Bucket struct {
	client *awss3.Client
	// presigner signs URLs locally; built once, as it is used in bulk.
	presigner *awss3.PresignClient

	bucket         string
	region         string
	endpoint       string
	requestTimeout time.Duration
	stallTimeout   time.Duration
	// unsignedPayload: uploads send UNSIGNED-PAYLOAD (see isLoopback).
	unsignedPayload bool
	// copyConditions: the server honours If-None-Match and If-Match on
	// CopyObject (AWS does; MinIO ignores them, so there a conditional copy
	// is a multipart copy, whose completion it does check).
	copyConditions bool

	log *slog.Logger

	// copyThreshold is the largest source copied by one CopyObject, and
	// copyPartSize the smallest part of a multipart copy: fields, so that
	// tests can exercise multipart copies with small objects.
	copyThreshold, copyPartSize int64

	requests        [opCount]atomic.Int64
	featureRequests [featureOpCount]atomic.Int64
	// noListHeaders is set once the server refused listing metadata, or
	// from the start with ListingHeadersOff; detectListing lets
	// CheckBucket set it from the server's name.
	noListHeaders atomic.Bool
	detectListing bool
	// bytesRead counts the object bytes read from GET bodies.
	bytesRead atomic.Int64
}

var _ backend.Bucket = (*Bucket)(nil)

// ListsHeaders tells whether listings may carry each object's headers: the
// server was not configured or found to lack the extension.
func (s *Bucket) ListsHeaders() bool { return !s.noListHeaders.Load() }

// op counts the requests of the object operations; featureOp counts the
// others.
type op int

const (
	opHead op = iota
	opList
	opGet
	opPut
	opDelete
	opCopy
	opUpload // every multipart request, UploadPartCopy included
	opCount
)

var opNames = [opCount]string{"head", "list", "get", "put", "delete", "copy", "upload"}

func (s *Bucket) Name() string { return s.bucket }

// Region is the bucket's region, as configured or discovered.
func (s *Bucket) Region() string { return s.region }

// Endpoint is the URL requests go to (without the bucket).
func (s *Bucket) Endpoint() string { return s.endpoint }

// Requests returns how many requests of an operation ("head", "list", "get",
// "put", "delete", "copy", "upload", "acl", "versions", "bucket") the bucket
// has sent; a Get at the end of an object may send more than one. "copy"
// counts CopyObject, "upload" every multipart request, UploadPartCopy
// included, "acl" GetACL and PutACL, "bucket" the versioning and policy
// requests. CheckBucket and Presign are not counted.
func (s *Bucket) Requests(opName string) int64 {
	for i, n := range featureOpNames {
		if n == opName {
			return s.featureRequests[i].Load()
		}
	}
	for i, n := range opNames {
		if n == opName {
			return s.requests[i].Load()
		}
	}
	return 0
}

// BytesRead is how many object bytes the bucket's GETs brought.
func (s *Bucket) BytesRead() int64 { return s.bytesRead.Load() }

// CheckBucket verifies that the bucket exists and that the credentials may
// use it, with few retries so that a mount fails within about 10 s. The
// error reads as one line naming the bucket, the endpoint and the cause.
func (s *Bucket) CheckBucket(ctx context.Context) error {
	reqCtx, cancel := context.WithTimeoutCause(ctx, checkTimeout, fmt.Errorf("no answer within %v", checkTimeout))
	defer cancel()
	out, err := s.client.HeadBucket(reqCtx, &awss3.HeadBucketInput{Bucket: aws.String(s.bucket)}, func(o *awss3.Options) {
		o.Retryer = retry.AddWithMaxAttempts(o.Retryer, 2)
	})
	if err == nil {
		s.learnListingHeaders(out.ResultMetadata)
		return nil
	}
	err = s.fail(ctx, reqCtx, err)
	if errors.Is(err, backend.ErrNotFound) { // a bodiless 404 to HeadBucket
		err = backend.ErrNoSuchBucket
	}
	return fmt.Errorf("bucket %q at %s: %w", s.bucket, s.endpoint, err)
}

// learnListingHeaders turns listing headers off unless the server names
// itself MinIO, the one server with the extension: any other answers
// metadata=true plainly or refuses it, and the mount would learn that
// only from its first lookup, whose small page with headers is then a
// wasted LIST.
func (s *Bucket) learnListingHeaders(md middleware.Metadata) {
	if !s.detectListing || s.noListHeaders.Load() {
		return
	}
	server := responseHeader(md, "Server")
	if !strings.HasPrefix(strings.ToLower(server), "minio") {
		s.noListHeaders.Store(true)
		s.log.Debug("server is not MinIO: listings carry no headers (--provider minio asks for them)", "server", server)
	}
}

func (s *Bucket) Head(ctx context.Context, key string) (backend.Object, error) {
	return s.headVersion(ctx, key, "")
}

// headVersion heads one version of key, or the current one when versionID
// is "".
func (s *Bucket) headVersion(ctx context.Context, key, versionID string) (backend.Object, error) {
	s.requests[opHead].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	out, err := s.client.HeadObject(reqCtx, &awss3.HeadObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), VersionId: nonEmpty(versionID),
	})
	if err != nil {
		if versionID != "" {
			return backend.Object{}, fmt.Errorf("head %q version %q: %w", key, versionID, s.fail(ctx, reqCtx, err))
		}
		return backend.Object{}, fmt.Errorf("head %q: %w", key, s.fail(ctx, reqCtx, err))
	}
	return headers(key, aws.ToInt64(out.ContentLength), out.ETag, out.LastModified, out.StorageClass,
		out.ContentType, out.Metadata, out.VersionId, out.ServerSideEncryption, out.SSEKMSKeyId), nil
}

func (s *Bucket) List(ctx context.Context, in backend.ListInput) (backend.ListPage, error) {
	s.requests[opList].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	input := &awss3.ListObjectsV2Input{
		Bucket:    aws.String(s.bucket),
		Prefix:    aws.String(in.Prefix),
		Delimiter: nonEmpty(in.Delimiter),
		// URL-encoded keys survive characters that XML 1.0 cannot carry.
		EncodingType:      types.EncodingTypeUrl,
		ContinuationToken: nonEmpty(in.Token),
	}
	if in.MaxKeys > 0 {
		input.MaxKeys = aws.Int32(int32(min(in.MaxKeys, 1000)))
	}
	var listed map[string]listedHeaders
	var optFns []func(*awss3.Options)
	if !in.Plain && !s.noListHeaders.Load() {
		optFns = append(optFns, withListingHeaders(&listed))
	}
	out, err := s.client.ListObjectsV2(reqCtx, input, optFns...)
	if err != nil && len(optFns) > 0 && errors.Is(classify(err), backend.ErrInvalid) {
		// A server that refuses the listing extension gets plain listings,
		// once a plain listing shows that the extension was the problem
		// (a 400 for another cause must not switch it off for good).
		plain, plainErr := s.client.ListObjectsV2(reqCtx, input)
		if plainErr == nil {
			s.noListHeaders.Store(true)
			s.log.Info("server rejects listing metadata; file headers will need HEAD requests", "err", err)
		}
		out, err = plain, plainErr
	}
	if err != nil {
		return backend.ListPage{}, fmt.Errorf("list %q: %w", in.Prefix, s.fail(ctx, reqCtx, err))
	}
	if listed != nil && len(listed) == 0 && len(out.Contents) > 0 && s.noListHeaders.CompareAndSwap(false, true) {
		// MinIO gives every object at least its Content-Type; a server that
		// takes the parameter and answers plainly (versitygw) lacks it.
		s.log.Info("server ignores listing metadata; file headers will need HEAD requests")
	}
	decode := func(k *string) string { return decodeKey(out.EncodingType, k) }
	var page backend.ListPage
	for _, o := range out.Contents {
		obj := backend.Object{
			Key:          decode(o.Key),
			Size:         aws.ToInt64(o.Size),
			ETag:         unquote(aws.ToString(o.ETag)),
			LastModified: aws.ToTime(o.LastModified),
			StorageClass: storageClass(string(o.StorageClass)),
		}
		if h, ok := listed[obj.Key]; ok {
			obj.HasHeaders, obj.ContentType, obj.Metadata = true, h.contentType, h.metadata
			obj.SSE, obj.SSEKMSKeyID = h.sse, h.sseKMSKeyID
		}
		page.Objects = append(page.Objects, obj)
	}
	for _, p := range out.CommonPrefixes {
		page.Prefixes = append(page.Prefixes, decode(p.Prefix))
	}
	if aws.ToBool(out.IsTruncated) {
		page.NextToken = aws.ToString(out.NextContinuationToken)
	}
	return page, nil
}

func (s *Bucket) HasPrefix(ctx context.Context, prefix string) (bool, error) {
	s.requests[opList].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	out, err := s.client.ListObjectsV2(reqCtx, &awss3.ListObjectsV2Input{
		Bucket:  aws.String(s.bucket),
		Prefix:  aws.String(prefix),
		MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return false, fmt.Errorf("list %q: %w", prefix, s.fail(ctx, reqCtx, err))
	}
	return len(out.Contents) > 0 || len(out.CommonPrefixes) > 0, nil
}

func (s *Bucket) Get(ctx context.Context, in backend.GetInput) (io.ReadCloser, backend.Object, error) {
	in.Offset = max(in.Offset, 0)
	rng := ""
	switch {
	case in.Length == 0:
		// No range header means zero bytes; ask for one to learn the headers.
		rng = fmt.Sprintf("bytes=%d-%d", in.Offset, in.Offset)
	case in.Length > 0:
		rng = fmt.Sprintf("bytes=%d-%d", in.Offset, in.Offset+in.Length-1)
	case in.Offset > 0:
		rng = fmt.Sprintf("bytes=%d-", in.Offset)
	}
	body, obj, err := s.get(ctx, in, rng)
	if errors.Is(err, errRangeNotSatisfiable) {
		return s.getHeaders(ctx, in)
	}
	if err != nil {
		return nil, backend.Object{}, err
	}
	if in.Length == 0 {
		body.Close()
		return http.NoBody, obj, nil
	}
	return body, obj, nil
}

// getHeaders answers a read at or past the end of an object. S3 answers it
// with 416 and no object headers (MinIO does not even send the size), so
// ask for the last byte, which carries them, or for the whole object when
// even that is out of range because the object is empty. No HEAD is sent.
func (s *Bucket) getHeaders(ctx context.Context, in backend.GetInput) (io.ReadCloser, backend.Object, error) {
	for _, rng := range []string{"bytes=-1", ""} {
		body, obj, err := s.get(ctx, in, rng)
		if errors.Is(err, errRangeNotSatisfiable) {
			continue
		}
		if err != nil {
			return nil, backend.Object{}, err
		}
		body.Close()
		return http.NoBody, obj, nil
	}
	return nil, backend.Object{}, fmt.Errorf("get %q: range not satisfiable even for the whole object", in.Key)
}

// get sends one GetObject. The request must answer within the request
// timeout; after that, the returned body cancels it when it stalls.
func (s *Bucket) get(ctx context.Context, in backend.GetInput, rng string) (*watchedBody, backend.Object, error) {
	key := in.Key
	s.requests[opGet].Add(1)
	reqCtx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(s.requestTimeout, func() {
		cancel(fmt.Errorf("no answer within %v", s.requestTimeout))
	})
	input := &awss3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key), Range: nonEmpty(rng),
		VersionId: nonEmpty(in.VersionID)}
	if in.IfMatch != "" {
		input.IfMatch = aws.String(quote(in.IfMatch))
	}
	out, err := s.client.GetObject(reqCtx, input)
	timer.Stop()
	if err != nil {
		err = s.fail(ctx, reqCtx, err)
		cancel(nil)
		return nil, backend.Object{}, fmt.Errorf("get %q: %w", key, err)
	}
	size := aws.ToInt64(out.ContentLength)
	if total, ok := rangeTotal(aws.ToString(out.ContentRange)); ok {
		size = total
	}
	obj := headers(key, size, out.ETag, out.LastModified, out.StorageClass, out.ContentType, out.Metadata, out.VersionId,
		out.ServerSideEncryption, out.SSEKMSKeyId)
	return newWatchedBody(ctx, reqCtx, cancel, out.Body, key, s.stallTimeout, &s.bytesRead), obj, nil
}

func (s *Bucket) Put(ctx context.Context, in backend.PutInput) (backend.Object, error) {
	s.requests[opPut].Add(1)
	body, err := seekable(in)
	if err != nil {
		return backend.Object{}, fmt.Errorf("put %q: %w", in.Key, err)
	}
	// Progress, not a fixed total, bounds an upload: any large body would
	// outlast a fixed timeout on a slow link.
	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(s.requestTimeout, func() {
		cancel(fmt.Errorf("no progress for %v", s.requestTimeout))
	})
	defer timer.Stop()
	contentType := contentTypeOrDefault(in.ContentType)
	input := &awss3.PutObjectInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(in.Key),
		Body:        &progressBody{ReadSeeker: body, timer: timer, timeout: s.requestTimeout},
		ContentType: aws.String(contentType),
		Metadata:    in.Metadata,
	}
	if in.Size >= 0 {
		input.ContentLength = aws.Int64(in.Size)
	}
	if in.IfNoneMatch {
		input.IfNoneMatch = aws.String("*")
	}
	if in.IfMatch != "" {
		input.IfMatch = aws.String(quote(in.IfMatch))
	}
	input.StorageClass = types.StorageClass(in.StorageClass)
	input.ServerSideEncryption = types.ServerSideEncryption(in.SSE)
	input.SSEKMSKeyId = nonEmpty(in.SSEKMSKeyID)
	input.ACL = types.ObjectCannedACL(in.ACL)
	out, err := s.client.PutObject(reqCtx, input, s.payloadOptions()...)
	if err != nil {
		err = s.fail(ctx, reqCtx, err)
		if in.IfMatch != "" && errors.Is(err, backend.ErrNotFound) {
			// S3 answers 404 when there is no object to match; the contract
			// (and the caller's errno) is "precondition failed".
			err = fmt.Errorf("%w: %v", backend.ErrPrecondition, err)
		}
		return backend.Object{}, fmt.Errorf("put %q: %w", in.Key, err)
	}
	size := in.Size
	if size < 0 {
		size = aws.ToInt64(out.Size)
	}
	modified := responseDate(out.ResultMetadata)
	ct := aws.String(contentType)
	sse, keyID := out.ServerSideEncryption, out.SSEKMSKeyId
	if sse == "" && in.SSE != "" {
		// A server may leave the encryption it applied out of its answer.
		sse, keyID = types.ServerSideEncryption(in.SSE), nonEmpty(in.SSEKMSKeyID)
	}
	return headers(in.Key, size, out.ETag, &modified, types.StorageClass(in.StorageClass), ct, in.Metadata, out.VersionId,
		sse, keyID), nil
}

func (s *Bucket) Delete(ctx context.Context, key string) error {
	s.requests[opDelete].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.client.DeleteObject(reqCtx, &awss3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		err = s.fail(ctx, reqCtx, err)
		if errors.Is(err, backend.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("delete %q: %w", key, err)
	}
	return nil
}

// DeleteKeys removes keys with one DeleteObjects request, quietly: the
// answer lists only the keys that failed.
func (s *Bucket) DeleteKeys(ctx context.Context, keys []string) (map[string]error, error) {
	if len(keys) > backend.MaxBatchDelete {
		return nil, fmt.Errorf("delete %d keys at once: %w", len(keys), backend.ErrInvalid)
	}
	s.requests[opDelete].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	ids := make([]types.ObjectIdentifier, len(keys))
	for i, key := range keys {
		ids[i] = types.ObjectIdentifier{Key: aws.String(key)}
	}
	out, err := s.client.DeleteObjects(reqCtx, &awss3.DeleteObjectsInput{Bucket: aws.String(s.bucket),
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
	if err != nil {
		return nil, fmt.Errorf("delete %d keys: %w", len(keys), s.fail(ctx, reqCtx, err))
	}
	failed := map[string]error{}
	for _, e := range out.Errors {
		code := aws.ToString(e.Code)
		cause := fmt.Errorf("%s: %s", code, aws.ToString(e.Message))
		if sentinel, ok := errorsByCode[code]; ok {
			cause = fmt.Errorf("%w: %s", sentinel, aws.ToString(e.Message))
		}
		if errors.Is(cause, backend.ErrNotFound) {
			continue
		}
		failed[aws.ToString(e.Key)] = fmt.Errorf("delete %q: %w", aws.ToString(e.Key), cause)
	}
	return failed, nil
}

// withTimeout bounds one request without a streaming body.
func (s *Bucket) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, s.requestTimeout, fmt.Errorf("no answer within %v", s.requestTimeout))
}

// fail maps the error of a request sent with reqCtx, derived from the
// caller's ctx: the caller giving up stays a context error, our own
// timeouts mean the server is unavailable.
func (s *Bucket) fail(ctx, reqCtx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if reqCtx.Err() != nil {
		return fmt.Errorf("%w: %v", backend.ErrUnavailable, context.Cause(reqCtx))
	}
	return classify(err)
}

// headers builds the Object of a Head, Get or Put answer.
func headers(key string, size int64, etag *string, modified *time.Time, class types.StorageClass,
	contentType *string, metadata map[string]string, versionID *string,
	sse types.ServerSideEncryption, kmsKeyID *string) backend.Object {
	version := aws.ToString(versionID)
	if version == "" {
		version = "null" // what S3 calls the version of an unversioned object
	}
	return backend.Object{
		Key:          key,
		Size:         size,
		ETag:         unquote(aws.ToString(etag)),
		LastModified: aws.ToTime(modified),
		StorageClass: storageClass(string(class)),
		HasHeaders:   true,
		ContentType:  aws.ToString(contentType),
		Metadata:     lowerKeys(metadata),
		VersionID:    version,
		SSE:          sseName(sse),
		SSEKMSKeyID:  aws.ToString(kmsKeyID),
	}
}

// sseName maps the SDK's encryption to the contract's names: dual-layer
// KMS is KMS to a caller; other values pass through as the server said.
func sseName(sse types.ServerSideEncryption) string {
	if sse == types.ServerSideEncryptionAwsKmsDsse {
		return string(types.ServerSideEncryptionAwsKms)
	}
	return string(sse)
}

// storageClass fills in the class S3 leaves out for STANDARD objects.
func storageClass(class string) string {
	if class == "" {
		return "STANDARD"
	}
	return class
}

// rangeTotal parses the object size out of "bytes 0-99/1234" or "bytes */1234".
func rangeTotal(contentRange string) (int64, bool) {
	i := strings.LastIndexByte(contentRange, '/')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(contentRange[i+1:], 10, 64)
	return n, err == nil
}

// lowerKeys copies x-amz-meta-* headers with their names in lower case, as
// S3 stores them; the result is never nil.
func lowerKeys(metadata map[string]string) map[string]string {
	meta := make(map[string]string, len(metadata))
	for k, v := range metadata {
		meta[strings.ToLower(k)] = v
	}
	return meta
}

func quote(etag string) string   { return `"` + etag + `"` }
func unquote(etag string) string { return strings.Trim(etag, `"`) }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// decodeKey undoes the URL encoding that listings ask for (keys may hold
// characters XML 1.0 cannot carry), unless the server ignored the request.
func decodeKey(encoding types.EncodingType, k *string) string {
	key := aws.ToString(k)
	if encoding != types.EncodingTypeUrl {
		return key
	}
	if d, err := url.QueryUnescape(key); err == nil {
		return d
	}
	return key
}
