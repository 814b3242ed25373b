package backend

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Plain S3 listings carry no headers, so without help every listed file
// would need a HEAD before its mode, owner or type (symlink!) is known.
// MinIO answers ListObjectsV2 with `metadata=true` by adding each object's
// Content-Type and x-amz-meta-* headers; this file asks for them and reads
// them from the raw response, which the SDK's own types do not carry.

// listedHeaders are the headers one listing entry came with.
type listedHeaders struct {
	contentType string
	metadata    map[string]string
}

// listMetadataXML is the part of a ListObjectsV2 answer that the SDK drops.
type listMetadataXML struct {
	EncodingType string `xml:"EncodingType"`
	Contents     []struct {
		Key          string `xml:"Key"`
		UserMetadata *struct {
			Items []struct {
				XMLName xml.Name
				Value   string `xml:",chardata"`
			} `xml:",any"`
		} `xml:"UserMetadata"`
	} `xml:"Contents"`
}

// withListingHeaders asks the server for listing metadata and stores what
// the answer carries, by key, in *found.
func withListingHeaders(found *map[string]listedHeaders) func(*s3.Options) {
	addQuery := middleware.BuildMiddlewareFunc("bucketfsListMetadata", func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
		if req, ok := in.Request.(*smithyhttp.Request); ok {
			q := req.URL.Query()
			q.Set("metadata", "true")
			req.URL.RawQuery = q.Encode()
		}
		return next.HandleBuild(ctx, in)
	})
	readBody := middleware.DeserializeMiddlewareFunc("bucketfsListMetadata", func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleDeserialize(ctx, in)
		resp, ok := out.RawResponse.(*smithyhttp.Response)
		if err != nil || !ok || resp.StatusCode != 200 {
			return out, md, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return out, md, fmt.Errorf("read listing: %w", err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		*found = parseListingHeaders(body)
		return out, md, nil
	})
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			if err := stack.Build.Add(addQuery, middleware.After); err != nil {
				return err
			}
			// After the SDK's deserializer in the stack means closer to the
			// wire: this sees the raw body first.
			return stack.Deserialize.Insert(readBody, "OperationDeserializer", middleware.After)
		})
	}
}

// parseListingHeaders returns the headers of every entry that has them; a
// server without the extension yields none.
func parseListingHeaders(body []byte) map[string]listedHeaders {
	var doc listMetadataXML
	if xml.Unmarshal(body, &doc) != nil {
		return nil
	}
	found := map[string]listedHeaders{}
	for _, c := range doc.Contents {
		if c.UserMetadata == nil {
			continue
		}
		key := c.Key
		if strings.EqualFold(doc.EncodingType, "url") {
			if k, err := url.QueryUnescape(key); err == nil {
				key = k
			}
		}
		h := listedHeaders{metadata: map[string]string{}}
		for _, item := range c.UserMetadata.Items {
			name := strings.ToLower(item.XMLName.Local)
			switch {
			case name == "content-type":
				h.contentType = item.Value
			case strings.HasPrefix(name, "x-amz-meta-"):
				h.metadata[strings.TrimPrefix(name, "x-amz-meta-")] = item.Value
			}
		}
		found[key] = h
	}
	return found
}
