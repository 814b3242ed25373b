package s3

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/bucketfs/bucketfs/backend"
)

// Account is a backend.Account over the Bucket of New made without a
// bucket.
type Account struct {
	s3 *Bucket
}

var _ backend.Account = (*Account)(nil)

// NewAccount connects to the account that cfg's credentials reach;
// cfg.Bucket is ignored.
func NewAccount(ctx context.Context, cfg Config) (*Account, error) {
	cfg.Bucket = ""
	s, err := New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Account{s3: s}, nil
}

// CheckAccess lists the buckets, so a mount fails fast on bad credentials
// or an unreachable endpoint.
func (a *Account) CheckAccess(ctx context.Context) error {
	_, err := a.Buckets(ctx)
	return err
}

// Region and Endpoint of the account's client.
func (a *Account) Region() string   { return a.s3.region }
func (a *Account) Endpoint() string { return a.s3.endpoint }

func (a *Account) Buckets(ctx context.Context) ([]string, error) {
	reqCtx, cancel := a.s3.withTimeout(ctx)
	defer cancel()
	out, err := a.s3.client.ListBuckets(reqCtx, &awss3.ListBucketsInput{})
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", a.s3.fail(ctx, reqCtx, err))
	}
	names := make([]string, 0, len(out.Buckets))
	for _, b := range out.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	sort.Strings(names)
	return names, nil
}

func (a *Account) CreateBucket(ctx context.Context, name string) error {
	in := &awss3.CreateBucketInput{Bucket: aws.String(name)}
	if a.s3.region != "" && a.s3.region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(a.s3.region),
		}
	}
	reqCtx, cancel := a.s3.withTimeout(ctx)
	defer cancel()
	_, err := a.s3.client.CreateBucket(reqCtx, in)
	var owned *types.BucketAlreadyOwnedByYou
	var exists *types.BucketAlreadyExists
	switch {
	case errors.As(err, &owned), errors.As(err, &exists):
		return fmt.Errorf("create bucket %q: %w", name, backend.ErrPrecondition)
	case err != nil:
		return fmt.Errorf("create bucket %q: %w", name, a.s3.fail(ctx, reqCtx, err))
	}
	return nil
}

func (a *Account) DeleteBucket(ctx context.Context, name string) error {
	reqCtx, cancel := a.s3.withTimeout(ctx)
	defer cancel()
	if _, err := a.s3.client.DeleteBucket(reqCtx, &awss3.DeleteBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("delete bucket %q: %w", name, a.s3.fail(ctx, reqCtx, err))
	}
	return nil
}

// Bucket shares the account's client and settings.
func (a *Account) Bucket(name string) backend.Bucket {
	s := a.s3
	b := &Bucket{
		client: s.client, presigner: s.presigner,
		bucket: name, region: s.region, endpoint: s.endpoint,
		unsignedPayload: s.unsignedPayload, copyConditions: s.copyConditions,
		requestTimeout: s.requestTimeout, stallTimeout: s.stallTimeout,
		log: s.log, copyThreshold: s.copyThreshold, copyPartSize: s.copyPartSize,
	}
	// What the account's client knows of the server's listings holds for
	// every bucket on it.
	b.noListHeaders.Store(s.noListHeaders.Load())
	return b
}
