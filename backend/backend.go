// Package backend is the storage seam of bucketfs: a small interface over an
// S3 bucket (Bucket, Account), the types of its requests and answers, typed
// errors, and what works over any Bucket (AsOf). It imports no SDK: the
// aws-sdk-go-v2 implementation is package backend/s3 and the in-memory one
// for tests is backend/memory, so no SDK type can cross the interface.
package backend

import (
	"context"
	"io"
	"strings"
	"time"
)

// Object describes one stored object.
//
// Listings fill Key, Size, ETag, LastModified and StorageClass only; HasHeaders
// is false then. Head and Get also fill ContentType, Metadata and VersionID and
// set HasHeaders.
type Object struct {
	Key          string
	Size         int64
	ETag         string // without quotes
	LastModified time.Time
	StorageClass string

	HasHeaders  bool
	ContentType string
	// SSE is the server-side encryption: "AES256", "aws:kms", or "" for
	// none; SSEKMSKeyID names the KMS key with "aws:kms".
	SSE         string
	SSEKMSKeyID string
	// Metadata holds the x-amz-meta-* headers, names lower-case and without
	// the prefix ("mode", "uid", "mtime", ...).
	Metadata  map[string]string
	VersionID string
}

// ListInput selects one page of a listing.
type ListInput struct {
	Prefix    string
	Delimiter string // "/" for one directory level, "" for everything under Prefix
	Token     string // NextToken of the previous page; "" starts the listing
	MaxKeys   int    // 0 means the server's default (1000 on S3)
	// Plain asks for no headers: a server that can list them (MinIO's
	// extension) then spares the read of every listed object's metadata,
	// which costs it about as much as the listing itself.
	Plain bool
}

// ListPage is one page of a listing, keys in ascending byte order.
type ListPage struct {
	Objects  []Object
	Prefixes []string // common prefixes, each ending in the delimiter
	// NextToken continues the listing; "" when this was the last page.
	NextToken string
}

// GetInput selects a byte range of an object.
type GetInput struct {
	Key    string
	Offset int64
	Length int64 // < 0 reads to the end
	// IfMatch, when set, makes the read fail with ErrPrecondition if the
	// object's ETag differs, so one open file never mixes two versions.
	IfMatch string
	// VersionID, when set, reads that version of the key rather than the
	// current one; a version that does not exist (or is a delete marker)
	// fails with ErrNotFound.
	VersionID string
}

// PutInput describes a whole-object upload.
type PutInput struct {
	Key         string
	Body        io.Reader
	Size        int64
	ContentType string
	Metadata    map[string]string // x-amz-meta-* without the prefix
	// IfNoneMatch makes the upload fail with ErrPrecondition if the key exists.
	IfNoneMatch bool
	// IfMatch makes the upload fail with ErrPrecondition unless the current
	// object has this ETag.
	IfMatch string
	// Storage and access settings of the new object; "" leaves each to the
	// bucket's default.
	StorageClass string
	SSE          string // "AES256" or "aws:kms"
	SSEKMSKeyID  string
	ACL          string // a canned ACL, e.g. "public-read"
}

// CopyInput describes a server-side copy of one object.
type CopyInput struct {
	Src, Dst string
	// SrcETag, when set, makes the copy fail with ErrPrecondition unless the
	// source is still that version.
	SrcETag string
	// SrcSize is the source's size, when known: a source over 5 GiB is
	// copied in parts (UploadPartCopy), which S3 requires.
	SrcSize int64
	// SrcVersionID copies that version of the source rather than the
	// current one.
	SrcVersionID string
	// DstIfNoneMatch and DstIfMatch make the copy fail with ErrPrecondition
	// if the destination exists, or is not that version: the conditions of
	// PutInput, for the copy's destination.
	DstIfNoneMatch bool
	DstIfMatch     string
	// ReplaceHeaders gives the copy ContentType and Metadata instead of the
	// source's (S3's REPLACE metadata directive).
	ReplaceHeaders bool
	ContentType    string
	Metadata       map[string]string
	// Storage and access settings of the copy. S3 does not carry them over
	// by itself: callers pass the source's to keep them; "" means the
	// bucket's default.
	StorageClass string
	SSE          string
	SSEKMSKeyID  string
	ACL          string
}

// Grant is one entry of an object's access control list.
type Grant struct {
	Grantee    string `json:"grantee"` // canonical user ID, e-mail, or group URI
	Type       string `json:"type"`    // CanonicalUser, AmazonCustomerByEmail or Group
	Permission string `json:"permission"`
}

// ACL is an object's access control list.
type ACL struct {
	Owner  string  `json:"owner"`
	Grants []Grant `json:"grants"`
}

// Version is one version of a key, as ListObjectVersions reports it.
type Version struct {
	ID           string
	LastModified time.Time
	Size         int64
	ETag         string
	Latest       bool
	DeleteMarker bool
}

// VersionEntry is one version or delete marker of a listing of versions:
// a Version together with the key it belongs to.
type VersionEntry struct {
	Key string
	Version
	StorageClass string // "" for a delete marker
}

// VersionPage is one page of ListVersions: keys in ascending byte order,
// each key's versions and delete markers newest first.
type VersionPage struct {
	Versions []VersionEntry
	// NextToken continues the listing; "" when this was the last page.
	NextToken string
}

// PartInput is one part of a multipart upload.
type PartInput struct {
	Key, UploadID string
	Number        int // 1 to 10,000
	Body          io.ReadSeeker
	Size          int64
}

// Part names an uploaded part when an upload is completed.
type Part struct {
	Number int
	ETag   string
}

// CompleteInput assembles an upload's parts, in order, into the object.
type CompleteInput struct {
	Key, UploadID string
	Parts         []Part
	// Size is what the parts add up to and Headers what StartUpload was
	// given (its Body, Size and conditions unused): the new object is
	// described from them, as Put describes its object, rather than asked
	// for again.
	Size    int64
	Headers PutInput
	// IfNoneMatch and IfMatch work as in PutInput.
	IfNoneMatch bool
	IfMatch     string
}

// Upload is a multipart upload still open.
type Upload struct {
	ID        string
	Initiated time.Time // by the server's clock
}

// Bucket is one bucket of an S3-compatible store.
//
// Every method is safe for concurrent use. Errors wrap one of the sentinel
// errors of this package (ErrNotFound, ErrPrecondition, ...) when the cause is
// known, so callers test them with errors.Is; anything else is an I/O error.
// Methods return when ctx is done.
type Bucket interface {
	// Name is the bucket's name.
	Name() string

	// Head returns the object stored under exactly key, with its headers.
	// It fails with ErrNotFound when there is none.
	Head(ctx context.Context, key string) (Object, error)

	// List returns one page of the keys under in.Prefix. With a delimiter,
	// keys containing it after the prefix are rolled up into Prefixes.
	List(ctx context.Context, in ListInput) (ListPage, error)

	// HasPrefix reports whether at least one key starts with prefix.
	HasPrefix(ctx context.Context, prefix string) (bool, error)

	// Get streams a byte range of an object. The returned Object carries the
	// headers of the version read (Size is the whole object's size). Reading
	// at or past the end of the object yields an empty body.
	Get(ctx context.Context, in GetInput) (io.ReadCloser, Object, error)

	// Put stores a whole object and returns it as stored (ETag, VersionID).
	Put(ctx context.Context, in PutInput) (Object, error)

	// Delete removes key. Deleting a key that does not exist succeeds.
	Delete(ctx context.Context, key string) error

	// Copy copies an object server-side and returns the copy. A missing
	// source fails with ErrNotFound.
	Copy(ctx context.Context, in CopyInput) (Object, error)

	// StartUpload begins a multipart upload of in.Key with in's headers (its
	// Body and Size are not used) and returns the upload's ID.
	StartUpload(ctx context.Context, in PutInput) (string, error)

	// UploadPart stores one part of an upload and returns its ETag. Every
	// part but the last must be at least 5 MiB.
	UploadPart(ctx context.Context, in PartInput) (string, error)

	// CompleteUpload makes the object out of the parts. With IfNoneMatch or
	// IfMatch it fails with ErrPrecondition as Put does, and the upload
	// stays open (abort it).
	CompleteUpload(ctx context.Context, in CompleteInput) (Object, error)

	// AbortUpload discards an upload and its parts.
	AbortUpload(ctx context.Context, key, uploadID string) error

	// ListUploads returns the multipart uploads of exactly key that are
	// still open.
	ListUploads(ctx context.Context, key string) ([]Upload, error)

	// GetACL returns an object's access control list.
	GetACL(ctx context.Context, key string) (ACL, error)

	// PutACL gives an object a canned ACL ("private", "public-read", ...).
	// Servers without ACLs fail with ErrNotImplemented.
	PutACL(ctx context.Context, key, canned string) error

	// Versions lists the versions and delete markers of exactly key, newest
	// first. An unversioned bucket has one version, "null".
	Versions(ctx context.Context, key string) ([]Version, error)

	// ListVersions returns one page of the versions and delete markers of
	// every key under in.Prefix (S3's ListObjectVersions). in.Delimiter is
	// ignored; in.Token is the previous page's NextToken. A key's versions
	// may continue on the next page. An unversioned bucket lists each
	// object once, as version "null".
	ListVersions(ctx context.Context, in ListInput) (VersionPage, error)

	// Presign returns a URL that lets anyone GET or PUT key until expires
	// passes. It is computed locally, without a request.
	Presign(ctx context.Context, key, method string, expires time.Duration) (string, error)

	// Versioning returns the bucket's versioning state: "Unversioned",
	// "Enabled" or "Suspended". SetVersioning sets "Enabled" or "Suspended".
	Versioning(ctx context.Context) (string, error)
	SetVersioning(ctx context.Context, status string) error

	// Policy returns the bucket policy (JSON), or ErrNotFound when there is
	// none. SetPolicy replaces it; DeletePolicy removes it.
	Policy(ctx context.Context) (string, error)
	SetPolicy(ctx context.Context, policy string) error
	DeletePolicy(ctx context.Context) error
}

// Account is the buckets one set of credentials reaches (--all-buckets).
type Account interface {
	// Buckets lists the account's bucket names.
	Buckets(ctx context.Context) ([]string, error)

	// CreateBucket makes a bucket in the account's region (with its
	// LocationConstraint outside us-east-1). A name S3 refuses fails with
	// ErrInvalid; a bucket that exists, with ErrPrecondition.
	CreateBucket(ctx context.Context, name string) error

	// DeleteBucket removes an empty bucket; a non-empty one fails with
	// ErrBucketNotEmpty.
	DeleteBucket(ctx context.Context, name string) error

	// Bucket is one of the account's buckets.
	Bucket(name string) Bucket
}

// ParentPrefix is the directory prefix that lists key in a one-level
// listing: "a/b/" for "a/b/c" and for "a/b/c/".
func ParentPrefix(key string) string {
	i := strings.LastIndexByte(strings.TrimSuffix(key, "/"), '/')
	return key[:i+1]
}

// BatchDeleter is implemented by buckets that remove many keys in one
// request (S3's DeleteObjects).
type BatchDeleter interface {
	// DeleteKeys removes up to MaxBatchDelete keys, keys that do not exist
	// included. It returns the keys it could not remove, each with why;
	// err is for a request that failed as a whole.
	DeleteKeys(ctx context.Context, keys []string) (failed map[string]error, err error)
}

// MaxBatchDelete is the most keys one DeleteObjects request takes.
const MaxBatchDelete = 1000

// DeleteKeys removes keys from b with one request where b batches
// (BatchDeleter), else one request a key, and returns what failed as
// BatchDeleter.DeleteKeys does.
func DeleteKeys(ctx context.Context, b Bucket, keys []string) (map[string]error, error) {
	if bd, ok := b.(BatchDeleter); ok {
		return bd.DeleteKeys(ctx, keys)
	}
	failed := map[string]error{}
	for _, key := range keys {
		if err := b.Delete(ctx, key); err != nil {
			failed[key] = err
		}
	}
	return failed, nil
}
