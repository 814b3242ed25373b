package s3

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/bucketfs/bucketfs/backend"
)

// ListVersions sends one ListObjectVersions. The SDK hands versions and
// delete markers back as two lists, so the page is merged and re-sorted;
// both markers go into NextToken.
func (s *Bucket) ListVersions(ctx context.Context, in backend.ListInput) (backend.VersionPage, error) {
	markerKey, markerID, err := backend.ParseVersionToken(in.Token)
	if err != nil {
		return backend.VersionPage{}, fmt.Errorf("list versions %q: token %q: %w", in.Prefix, in.Token, err)
	}
	input := &awss3.ListObjectVersionsInput{
		Bucket:          aws.String(s.bucket),
		Prefix:          aws.String(in.Prefix),
		EncodingType:    types.EncodingTypeUrl,
		KeyMarker:       nonEmpty(markerKey),
		VersionIdMarker: nonEmpty(markerID),
	}
	if in.MaxKeys > 0 {
		input.MaxKeys = aws.Int32(int32(min(in.MaxKeys, 1000)))
	}
	out, err := s.listVersions(ctx, input)
	if err != nil {
		return backend.VersionPage{}, fmt.Errorf("list versions %q: %w", in.Prefix, err)
	}
	decode := func(k *string) string { return decodeKey(out.EncodingType, k) }
	var page backend.VersionPage
	for _, v := range out.Versions {
		page.Versions = append(page.Versions, backend.VersionEntry{
			Key: decode(v.Key),
			Version: backend.Version{
				ID:           versionID(v.VersionId),
				LastModified: aws.ToTime(v.LastModified),
				Size:         aws.ToInt64(v.Size),
				ETag:         unquote(aws.ToString(v.ETag)),
				Latest:       aws.ToBool(v.IsLatest),
			},
			StorageClass: storageClass(string(v.StorageClass)),
		})
	}
	for _, m := range out.DeleteMarkers {
		page.Versions = append(page.Versions, backend.VersionEntry{
			Key: decode(m.Key),
			Version: backend.Version{
				ID:           versionID(m.VersionId),
				LastModified: aws.ToTime(m.LastModified),
				Latest:       aws.ToBool(m.IsLatest),
				DeleteMarker: true,
			},
		})
	}
	backend.SortVersionEntries(page.Versions)
	if aws.ToBool(out.IsTruncated) {
		// The key marker is URL-encoded like the keys; the version ID is not.
		page.NextToken = backend.VersionToken(decode(out.NextKeyMarker), aws.ToString(out.NextVersionIdMarker))
	}
	return page, nil
}
