package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/sync/errgroup"

	"github.com/bucketfs/bucketfs/backend"
)

// Server-side copies and multipart uploads.

const (
	maxCopySize         = 5 << 30   // the largest source one CopyObject may copy
	defaultCopyPartSize = 512 << 20 // parts of a multipart copy; 10,000 of them cover 5 TiB
	copyConcurrency     = 8         // UploadPartCopy requests in flight per Copy
	maxParts            = 10000
	// minCopyRate is the slowest server-side copy we wait for: a copy sends
	// no body, so its timeout grows with the bytes the server has to move.
	minCopyRate = 16 << 20 // bytes per second
	// completePartTime is the extra time a CompleteMultipartUpload gets per
	// part: S3 may take minutes to assemble thousands of them.
	completePartTime = 20 * time.Millisecond
)

// Copy sends one CopyObject, or for a source over 5 GiB (which CopyObject
// refuses) a multipart upload of UploadPartCopy parts. When in.SrcSize is 0
// or the copy takes parts, the source is HEADed first: that learns its size
// and headers and pins every part to one version. The returned Object has
// HasHeaders set when the headers are known without another request.
func (s *Bucket) Copy(ctx context.Context, in backend.CopyInput) (backend.Object, error) {
	var src *backend.Object
	conditional := (in.DstIfNoneMatch || in.DstIfMatch != "") && !s.copyConditions
	if in.SrcSize <= 0 || in.SrcSize > s.copyThreshold || conditional {
		head, err := s.headVersion(ctx, in.Src, in.SrcVersionID)
		if err != nil {
			return backend.Object{}, fmt.Errorf("copy to %q: %w", in.Dst, err)
		}
		if in.SrcETag != "" && head.ETag != in.SrcETag {
			return backend.Object{}, fmt.Errorf("copy %q to %q: source is %s, not %s: %w", in.Src, in.Dst, head.ETag, in.SrcETag, backend.ErrPrecondition)
		}
		src = &head
	}
	if src != nil && src.Size == 0 && (conditional || in.Src != in.Dst) {
		return s.copyEmpty(ctx, in, *src)
	}
	if src != nil && (src.Size > s.copyThreshold || conditional) {
		return s.copyParts(ctx, in, *src)
	}
	size := in.SrcSize
	if src != nil {
		size = src.Size
	}

	s.requests[opCopy].Add(1)
	reqCtx, cancel := s.withCopyTimeout(ctx, size)
	defer cancel()
	input := &awss3.CopyObjectInput{
		Bucket:            aws.String(s.bucket),
		Key:               aws.String(in.Dst),
		CopySource:        aws.String(copySourceVersion(s.bucket, in.Src, in.SrcVersionID)),
		MetadataDirective: types.MetadataDirectiveCopy,
		// S3 does not carry these over: each is the caller's choice or the
		// bucket's default.
		StorageClass:         types.StorageClass(copyStorageClass(in)),
		ServerSideEncryption: types.ServerSideEncryption(in.SSE),
		SSEKMSKeyId:          nonEmpty(in.SSEKMSKeyID),
		ACL:                  types.ObjectCannedACL(in.ACL),
	}
	if in.SrcETag != "" {
		input.CopySourceIfMatch = aws.String(quote(in.SrcETag))
	}
	if in.DstIfNoneMatch {
		input.IfNoneMatch = aws.String("*")
	}
	if in.DstIfMatch != "" {
		input.IfMatch = aws.String(quote(in.DstIfMatch))
	}
	if in.ReplaceHeaders {
		input.MetadataDirective = types.MetadataDirectiveReplace
		input.ContentType = aws.String(contentTypeOrDefault(in.ContentType))
		input.Metadata = in.Metadata
	}
	out, err := s.client.CopyObject(reqCtx, input)
	if err != nil {
		return backend.Object{}, fmt.Errorf("copy %q to %q: %w", in.Src, in.Dst, s.fail(ctx, reqCtx, err))
	}
	var etag *string
	var modified *time.Time
	if r := out.CopyObjectResult; r != nil {
		etag, modified = r.ETag, r.LastModified
	}
	obj := headers(in.Dst, size, etag, modified, types.StorageClass(in.StorageClass), nil, nil, out.VersionId,
		out.ServerSideEncryption, out.SSEKMSKeyId)
	if obj.SSE == "" {
		// MinIO's answer leaves the encryption out; it is what we asked for.
		obj.SSE, obj.SSEKMSKeyID = in.SSE, in.SSEKMSKeyID
	}
	return copiedHeaders(obj, in, src), nil
}

// copyStorageClass is the class a CopyObject asks for. S3 gives a copy
// STANDARD unless told otherwise, but MinIO keeps the source's, so "" is
// sent as STANDARD, except for a copy onto itself that changes nothing
// else, which S3 must still refuse.
func copyStorageClass(in backend.CopyInput) string {
	unchanged := in.Src == in.Dst && in.SrcVersionID == "" && !in.ReplaceHeaders && in.SSE == "" && in.ACL == ""
	if in.StorageClass == "" && !unchanged {
		return string(types.StorageClassStandard)
	}
	return in.StorageClass
}

// copyParts copies src with a multipart upload of UploadPartCopy parts, up
// to copyConcurrency at a time, and aborts the upload on any error.
func (s *Bucket) copyParts(ctx context.Context, in backend.CopyInput, src backend.Object) (backend.Object, error) {
	start := backend.PutInput{Key: in.Dst, ContentType: src.ContentType, Metadata: src.Metadata,
		StorageClass: in.StorageClass, SSE: in.SSE, SSEKMSKeyID: in.SSEKMSKeyID, ACL: in.ACL}
	if in.ReplaceHeaders {
		start.ContentType, start.Metadata = in.ContentType, in.Metadata
	}
	id, err := s.StartUpload(ctx, start)
	if err != nil {
		return backend.Object{}, fmt.Errorf("copy %q to %q: %w", in.Src, in.Dst, err)
	}
	parts, err := s.copyPartsOf(ctx, in, src, id)
	var obj backend.Object
	if err == nil {
		obj, err = s.complete(ctx, backend.CompleteInput{Key: in.Dst, UploadID: id, Parts: parts,
			IfNoneMatch: in.DstIfNoneMatch, IfMatch: in.DstIfMatch})
	}
	if err != nil {
		s.abortAfterFailure(ctx, in.Dst, id)
		return backend.Object{}, fmt.Errorf("copy %q to %q in parts: %w", in.Src, in.Dst, err)
	}
	obj.Size, obj.StorageClass = src.Size, storageClass(in.StorageClass)
	if obj.SSE == "" {
		obj.SSE, obj.SSEKMSKeyID = in.SSE, in.SSEKMSKeyID
	}
	return copiedHeaders(obj, in, &src), nil
}

// copyEmpty copies an empty object (a directory marker, say) to another
// key by writing it anew with the source's headers and the destination's
// conditions: a multipart copy needs a byte to copy, and versitygw refuses
// to copy a directory marker elsewhere ("contains data"). In-place header
// changes stay CopyObjects.
func (s *Bucket) copyEmpty(ctx context.Context, in backend.CopyInput, src backend.Object) (backend.Object, error) {
	put := backend.PutInput{Key: in.Dst, Body: strings.NewReader(""), ContentType: src.ContentType, Metadata: src.Metadata,
		StorageClass: in.StorageClass, SSE: in.SSE, SSEKMSKeyID: in.SSEKMSKeyID, ACL: in.ACL,
		IfNoneMatch: in.DstIfNoneMatch, IfMatch: in.DstIfMatch}
	if in.ReplaceHeaders {
		put.ContentType, put.Metadata = in.ContentType, in.Metadata
	}
	return s.Put(ctx, put)
}

// copyPartsOf sends the UploadPartCopy requests of one upload. Every part
// requires the source's ETag, so a source replaced mid-copy fails the copy
// instead of mixing two versions.
func (s *Bucket) copyPartsOf(ctx context.Context, in backend.CopyInput, src backend.Object, uploadID string) ([]backend.Part, error) {
	partSize := max(s.copyPartSize, (src.Size+maxParts-1)/maxParts)
	parts := make([]backend.Part, (src.Size+partSize-1)/partSize)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(copyConcurrency)
	for i := range parts {
		first := int64(i) * partSize
		last := min(first+partSize, src.Size) - 1
		g.Go(func() error {
			s.requests[opUpload].Add(1)
			reqCtx, cancel := s.withCopyTimeout(gctx, last-first+1)
			defer cancel()
			out, err := s.client.UploadPartCopy(reqCtx, &awss3.UploadPartCopyInput{
				Bucket:            aws.String(s.bucket),
				Key:               aws.String(in.Dst),
				UploadId:          aws.String(uploadID),
				PartNumber:        aws.Int32(int32(i + 1)),
				CopySource:        aws.String(copySourceVersion(s.bucket, in.Src, in.SrcVersionID)),
				CopySourceRange:   aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
				CopySourceIfMatch: aws.String(quote(src.ETag)),
			})
			if err != nil {
				return fmt.Errorf("part %d: %w", i+1, s.fail(gctx, reqCtx, err))
			}
			if out.CopyPartResult == nil {
				return fmt.Errorf("part %d: answer without an ETag", i+1)
			}
			parts[i] = backend.Part{Number: i + 1, ETag: unquote(aws.ToString(out.CopyPartResult.ETag))}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return parts, nil
}

// copiedHeaders fills in the headers of a copy when they are known: given
// by the caller, or read from the source by the HEAD before the copy.
func copiedHeaders(obj backend.Object, in backend.CopyInput, src *backend.Object) backend.Object {
	switch {
	case in.ReplaceHeaders:
		obj.HasHeaders = true
		obj.ContentType = contentTypeOrDefault(in.ContentType)
		obj.Metadata = lowerKeys(in.Metadata)
	case src != nil:
		obj.HasHeaders, obj.ContentType, obj.Metadata = true, src.ContentType, src.Metadata
	default:
		obj.HasHeaders, obj.ContentType, obj.Metadata = false, "", nil
	}
	return obj
}

func (s *Bucket) StartUpload(ctx context.Context, in backend.PutInput) (string, error) {
	s.requests[opUpload].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	requested := time.Now()
	out, err := s.client.CreateMultipartUpload(reqCtx, &awss3.CreateMultipartUploadInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(in.Key),
		ContentType:          aws.String(contentTypeOrDefault(in.ContentType)),
		Metadata:             in.Metadata,
		StorageClass:         types.StorageClass(in.StorageClass),
		ServerSideEncryption: types.ServerSideEncryption(in.SSE),
		SSEKMSKeyId:          nonEmpty(in.SSEKMSKeyID),
		ACL:                  types.ObjectCannedACL(in.ACL),
	})
	if err != nil {
		if !refused(err) {
			// An attempt may have reached the server before the failure.
			s.abortStrayUploads(ctx, in.Key, requested, "")
		}
		return "", fmt.Errorf("start upload %q: %w", in.Key, s.fail(ctx, reqCtx, err))
	}
	id := aws.ToString(out.UploadId)
	if attempts, ok := retry.GetAttemptResults(out.ResultMetadata); ok && len(attempts.Results) > 1 {
		// A retried start: the attempts before may each have begun an
		// upload whose reply was lost.
		s.abortStrayUploads(ctx, in.Key, requested, id)
	}
	return id, nil
}

// refused tells a request the server answered with a client error (403,
// 400, ...): it did nothing, and a retry would not have been made.
func refused(err error) bool {
	var resp *awshttp.ResponseError
	if !errors.As(err, &resp) {
		return false
	}
	status := resp.HTTPStatusCode()
	return status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

// abortStrayUploads aborts the uploads of key that a start request sent at
// requested may have begun, except keep, even when ctx is done: their
// parts would be billed until a lifecycle rule removed them.
func (s *Bucket) abortStrayUploads(ctx context.Context, key string, requested time.Time, keep string) {
	ctx, cancel := s.withTimeout(context.WithoutCancel(ctx))
	defer cancel()
	n, err := backend.AbortUploadsStarted(ctx, s, key, requested, time.Now(), keep)
	if err != nil {
		s.log.Warn("a multipart upload may be left open", "key", key, "err", err)
	} else if n > 0 {
		s.log.Info("aborted multipart uploads a failed or retried start left", "key", key, "aborted", n)
	}
}

// ListUploads pages through the uploads under key and keeps those of key
// itself (S3 filters by prefix only).
func (s *Bucket) ListUploads(ctx context.Context, key string) ([]backend.Upload, error) {
	in := &awss3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket), Prefix: aws.String(key)}
	var out []backend.Upload
	for {
		s.requests[opList].Add(1)
		reqCtx, cancel := s.withTimeout(ctx)
		page, err := s.client.ListMultipartUploads(reqCtx, in)
		if err != nil {
			err = s.fail(ctx, reqCtx, err)
			cancel()
			return nil, fmt.Errorf("list the uploads of %q: %w", key, err)
		}
		cancel()
		for _, u := range page.Uploads {
			if aws.ToString(u.Key) == key {
				out = append(out, backend.Upload{ID: aws.ToString(u.UploadId), Initiated: aws.ToTime(u.Initiated)})
			}
		}
		next := aws.ToString(page.NextKeyMarker)
		if !aws.ToBool(page.IsTruncated) || (next == aws.ToString(in.KeyMarker) && aws.ToString(page.NextUploadIdMarker) == aws.ToString(in.UploadIdMarker)) {
			return out, nil // the last page (or a server that does not move on)
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}

func (s *Bucket) UploadPart(ctx context.Context, in backend.PartInput) (string, error) {
	s.requests[opUpload].Add(1)
	if in.Number < 1 || in.Number > maxParts {
		return "", fmt.Errorf("upload part %d of %q: part numbers run from 1 to %d: %w", in.Number, in.Key, maxParts, backend.ErrInvalid)
	}
	// As for Put, progress rather than a fixed total bounds the upload.
	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(s.requestTimeout, func() {
		cancel(fmt.Errorf("no progress for %v", s.requestTimeout))
	})
	defer timer.Stop()
	out, err := s.client.UploadPart(reqCtx, &awss3.UploadPartInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(in.Key),
		UploadId:      aws.String(in.UploadID),
		PartNumber:    aws.Int32(int32(in.Number)),
		Body:          &progressBody{ReadSeeker: in.Body, timer: timer, timeout: s.requestTimeout},
		ContentLength: aws.Int64(in.Size),
	}, s.payloadOptions()...)
	if err != nil {
		return "", fmt.Errorf("upload part %d of %q: %w", in.Number, in.Key, s.fail(ctx, reqCtx, err))
	}
	return unquote(aws.ToString(out.ETag)), nil
}

// CompleteUpload completes the upload and describes the new object from
// in's size and headers plus S3's answer (ETag, version, encryption), as
// Put does: S3's answer names neither size nor headers, and asking with a
// HEAD would cost a request per upload.
func (s *Bucket) CompleteUpload(ctx context.Context, in backend.CompleteInput) (backend.Object, error) {
	obj, err := s.complete(ctx, in)
	if err != nil {
		return backend.Object{}, fmt.Errorf("complete upload %q: %w", in.Key, err)
	}
	h := in.Headers
	obj.Size, obj.HasHeaders = in.Size, true
	obj.ContentType = contentTypeOrDefault(h.ContentType)
	obj.Metadata = lowerKeys(h.Metadata)
	obj.StorageClass = storageClass(h.StorageClass)
	if obj.SSE == "" && h.SSE != "" {
		// A server may leave the encryption it applied out of its answer.
		obj.SSE, obj.SSEKMSKeyID = h.SSE, h.SSEKMSKeyID
	}
	return obj, nil
}

// complete sends CompleteMultipartUpload and returns the object without
// Size or headers.
func (s *Bucket) complete(ctx context.Context, in backend.CompleteInput) (backend.Object, error) {
	s.requests[opUpload].Add(1)
	timeout := s.requestTimeout + time.Duration(len(in.Parts))*completePartTime
	reqCtx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no answer within %v", timeout))
	defer cancel()
	parts := make([]types.CompletedPart, len(in.Parts))
	for i, p := range in.Parts {
		parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(p.Number)), ETag: aws.String(quote(p.ETag))}
	}
	input := &awss3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(in.Key),
		UploadId:        aws.String(in.UploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	if in.IfNoneMatch {
		input.IfNoneMatch = aws.String("*")
	}
	if in.IfMatch != "" {
		input.IfMatch = aws.String(quote(in.IfMatch))
	}
	out, err := s.client.CompleteMultipartUpload(reqCtx, input)
	if err != nil {
		code := errorCode(err)
		err = s.fail(ctx, reqCtx, err)
		if in.IfMatch != "" && code == "NoSuchKey" {
			// No object to match, as for Put; NoSuchUpload stays "not found".
			err = fmt.Errorf("%w: %v", backend.ErrPrecondition, err)
		}
		return backend.Object{}, err
	}
	modified := responseDate(out.ResultMetadata)
	obj := headers(in.Key, 0, out.ETag, &modified, "", nil, nil, out.VersionId, out.ServerSideEncryption, out.SSEKMSKeyId)
	obj.HasHeaders, obj.Metadata = false, nil
	return obj, nil
}

// AbortUpload treats an upload that is already gone as aborted: an abort
// retried after a lost answer must not fail.
func (s *Bucket) AbortUpload(ctx context.Context, key, uploadID string) error {
	s.requests[opUpload].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.client.AbortMultipartUpload(reqCtx, &awss3.AbortMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	if err != nil {
		err = s.fail(ctx, reqCtx, err)
		if errors.Is(err, backend.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("abort upload %q: %w", key, err)
	}
	return nil
}

// abortAfterFailure aborts an upload whose copy failed, even when the
// failure was the caller giving up: its parts would be billed forever.
func (s *Bucket) abortAfterFailure(ctx context.Context, key, uploadID string) {
	if err := s.AbortUpload(context.WithoutCancel(ctx), key, uploadID); err != nil {
		s.log.Warn("multipart upload left open", "key", key, "upload", uploadID, "err", err)
	}
}

// withCopyTimeout bounds a server-side copy of n bytes.
func (s *Bucket) withCopyTimeout(ctx context.Context, n int64) (context.Context, context.CancelFunc) {
	timeout := s.requestTimeout + time.Duration(n/minCopyRate)*time.Second
	return context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no answer within %v", timeout))
}

// copySource is the x-amz-copy-source header naming bucket/key: escaped per
// path segment, with '+' as %2B because servers decode it as a space.
func copySource(bucket, key string) string {
	segments := strings.Split(bucket+"/"+key, "/")
	for i, seg := range segments {
		segments[i] = strings.ReplaceAll(url.PathEscape(seg), "+", "%2B")
	}
	return strings.Join(segments, "/")
}

// copySourceVersion is copySource naming one version of the key; the
// version ID goes in a query string, after the escaped key.
func copySourceVersion(bucket, key, versionID string) string {
	if versionID == "" {
		return copySource(bucket, key)
	}
	return copySource(bucket, key) + "?versionId=" + url.QueryEscape(versionID)
}

func contentTypeOrDefault(contentType string) string {
	if contentType == "" {
		return "application/octet-stream"
	}
	return contentType
}

// responseDate is the Date of a write's answer, which has no Last-Modified:
// the server's clock is closer to the truth than ours.
func responseDate(md middleware.Metadata) time.Time {
	if t, err := http.ParseTime(responseHeader(md, "Date")); err == nil {
		return t.UTC()
	}
	return time.Now().UTC().Truncate(time.Second)
}

// responseHeader is a header of the HTTP response behind md, or "".
func responseHeader(md middleware.Metadata, name string) string {
	if raw, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok {
		return raw.Header.Get(name)
	}
	return ""
}
