package s3

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/bucketfs/bucketfs/backend"
)

// Object ACLs, versions, presigned URLs and the bucket-wide settings
// (versioning, policy).

// featureOp counts the requests of this file, apart from the object
// operations (op).
type featureOp int

const (
	featureACL      featureOp = iota // GetObjectAcl, PutObjectAcl
	featureVersions                  // ListObjectVersions
	featureBucket                    // versioning and policy
	featureOpCount
)

var featureOpNames = [featureOpCount]string{"acl", "versions", "bucket"}

// maxPresignExpiry is the longest a SigV4 presigned URL may live.
const maxPresignExpiry = 7 * 24 * time.Hour

func (s *Bucket) GetACL(ctx context.Context, key string) (backend.ACL, error) {
	s.featureRequests[featureACL].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	out, err := s.client.GetObjectAcl(reqCtx, &awss3.GetObjectAclInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return backend.ACL{}, fmt.Errorf("get acl %q: %w", key, s.fail(ctx, reqCtx, err))
	}
	var acl backend.ACL
	if out.Owner != nil {
		acl.Owner = aws.ToString(out.Owner.ID)
	}
	acl.Grants = make([]backend.Grant, 0, len(out.Grants))
	for _, g := range out.Grants {
		grant := backend.Grant{Permission: string(g.Permission)}
		if e := g.Grantee; e != nil {
			grant.Type = string(e.Type)
			grant.Grantee = cmp.Or(aws.ToString(e.ID), aws.ToString(e.EmailAddress), aws.ToString(e.URI))
		}
		acl.Grants = append(acl.Grants, grant)
	}
	return acl, nil
}

// PutACL checks the canned ACL first: servers without ACLs (MinIO) answer
// 501 to anything, so a typo would read as "not supported".
func (s *Bucket) PutACL(ctx context.Context, key, canned string) error {
	if !slices.Contains(types.ObjectCannedACL("").Values(), types.ObjectCannedACL(canned)) {
		return fmt.Errorf("put acl %q: no canned ACL %q: %w", key, canned, backend.ErrInvalid)
	}
	s.featureRequests[featureACL].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.client.PutObjectAcl(reqCtx, &awss3.PutObjectAclInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), ACL: types.ObjectCannedACL(canned),
	})
	if err != nil {
		return fmt.Errorf("put acl %q: %w", key, s.fail(ctx, reqCtx, err))
	}
	return nil
}

// Versions lists with key as the prefix. Key itself sorts before every
// longer key under it, so the listing stops at the first other key.
func (s *Bucket) Versions(ctx context.Context, key string) ([]backend.Version, error) {
	var entries []backend.VersionEntry
	in := backend.ListInput{Prefix: key}
	for {
		page, err := s.ListVersions(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("versions %q: %w", key, err)
		}
		other := false
		for _, e := range page.Versions {
			if e.Key == key {
				entries = append(entries, e)
			} else {
				other = true // keys come in order: key's versions are all seen
			}
		}
		if other || page.NextToken == "" {
			break
		}
		in.Token = page.NextToken
	}
	// Each page is in order; pages meet where a key's versions may tie.
	backend.SortVersionEntries(entries)
	versions := make([]backend.Version, len(entries))
	for i, e := range entries {
		versions[i] = e.Version
	}
	return versions, nil
}

func (s *Bucket) listVersions(ctx context.Context, input *awss3.ListObjectVersionsInput) (*awss3.ListObjectVersionsOutput, error) {
	s.featureRequests[featureVersions].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	out, err := s.client.ListObjectVersions(reqCtx, input)
	if err != nil {
		return nil, s.fail(ctx, reqCtx, err)
	}
	return out, nil
}

// versionID names the version of an unversioned object as S3 does.
func versionID(id *string) string {
	return cmp.Or(aws.ToString(id), "null")
}

// Presign signs locally with the client's credentials (cached by the
// SDK), so it sends no request and costs microseconds.
func (s *Bucket) Presign(ctx context.Context, key, method string, expires time.Duration) (string, error) {
	if expires < time.Second || expires > maxPresignExpiry {
		return "", fmt.Errorf("presign %q: expiry %v is not within 1s and %v: %w", key, expires, maxPresignExpiry, backend.ErrInvalid)
	}
	withExpiry := awss3.WithPresignExpires(expires)
	var (
		req *v4.PresignedHTTPRequest
		err error
	)
	switch method {
	case "GET":
		req, err = s.presigner.PresignGetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}, withExpiry)
	case "PUT":
		req, err = s.presigner.PresignPutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}, withExpiry)
	default:
		return "", fmt.Errorf("presign %q: method %q is not GET or PUT: %w", key, method, backend.ErrInvalid)
	}
	if err != nil {
		return "", fmt.Errorf("presign %s %q: %w", method, key, classify(err))
	}
	return req.URL, nil
}

func (s *Bucket) Versioning(ctx context.Context) (string, error) {
	s.featureRequests[featureBucket].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	out, err := s.client.GetBucketVersioning(reqCtx, &awss3.GetBucketVersioningInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		return "", fmt.Errorf("get versioning of %q: %w", s.bucket, s.fail(ctx, reqCtx, err))
	}
	return cmp.Or(string(out.Status), "Unversioned"), nil
}

func (s *Bucket) SetVersioning(ctx context.Context, status string) error {
	if status != string(types.BucketVersioningStatusEnabled) && status != string(types.BucketVersioningStatusSuspended) {
		return fmt.Errorf("set versioning of %q: status %q is not Enabled or Suspended: %w", s.bucket, status, backend.ErrInvalid)
	}
	s.featureRequests[featureBucket].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.client.PutBucketVersioning(reqCtx, &awss3.PutBucketVersioningInput{
		Bucket:                  aws.String(s.bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatus(status)},
	})
	if err != nil {
		return fmt.Errorf("set versioning of %q: %w", s.bucket, s.fail(ctx, reqCtx, err))
	}
	return nil
}

func (s *Bucket) Policy(ctx context.Context) (string, error) {
	s.featureRequests[featureBucket].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	out, err := s.client.GetBucketPolicy(reqCtx, &awss3.GetBucketPolicyInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		return "", fmt.Errorf("get policy of %q: %w", s.bucket, s.fail(ctx, reqCtx, err))
	}
	return aws.ToString(out.Policy), nil
}

func (s *Bucket) SetPolicy(ctx context.Context, policy string) error {
	s.featureRequests[featureBucket].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.client.PutBucketPolicy(reqCtx, &awss3.PutBucketPolicyInput{Bucket: aws.String(s.bucket), Policy: aws.String(policy)})
	if err != nil {
		return fmt.Errorf("set policy of %q: %w", s.bucket, s.fail(ctx, reqCtx, err))
	}
	return nil
}

func (s *Bucket) DeletePolicy(ctx context.Context) error {
	s.featureRequests[featureBucket].Add(1)
	reqCtx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.client.DeleteBucketPolicy(reqCtx, &awss3.DeleteBucketPolicyInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		return fmt.Errorf("delete policy of %q: %w", s.bucket, s.fail(ctx, reqCtx, err))
	}
	return nil
}
