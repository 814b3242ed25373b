package s3

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"net/url"
	"strings"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
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
	contentType      string
	metadata         map[string]string
	sse, sseKMSKeyID string
}

// withListingHeaders asks the server for listing metadata and stores what
// the answer carries, by key, in *found.
func withListingHeaders(found *map[string]listedHeaders) func(*awss3.Options) {
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
	return func(o *awss3.Options) {
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
// server without the extension yields none. It scans for the few elements
// it needs instead of decoding the whole answer a second time: a page of
// 1000 entries decodes in a fraction of the time encoding/xml takes.
func parseListingHeaders(body []byte) map[string]listedHeaders {
	urlKeys := bytes.Contains(elementText(body, "EncodingType"), []byte("url"))
	found := map[string]listedHeaders{}
	for {
		entry, rest, ok := element(body, "Contents")
		if !ok {
			return found
		}
		body = rest
		meta, _, ok := element(entry, "UserMetadata")
		if !ok {
			continue
		}
		key := xmlText(elementText(entry, "Key"))
		if urlKeys {
			if k, err := url.QueryUnescape(key); err == nil {
				key = k
			}
		}
		h := listedHeaders{metadata: map[string]string{}}
		for {
			name, value, rest, ok := nextChild(meta)
			if !ok {
				break
			}
			meta = rest
			switch name = strings.ToLower(name); {
			case name == "content-type":
				h.contentType = xmlText(value)
			case name == "x-amz-server-side-encryption":
				h.sse = xmlText(value)
			case name == "x-amz-server-side-encryption-aws-kms-key-id":
				h.sseKMSKeyID = xmlText(value)
			case strings.HasPrefix(name, "x-amz-meta-"):
				h.metadata[strings.TrimPrefix(name, "x-amz-meta-")] = xmlText(value)
			}
		}
		found[key] = h
	}
}

// element finds the first <name>...</name> in doc and returns its content
// and what follows it.
func element(doc []byte, name string) (content, rest []byte, ok bool) {
	open, close := "<"+name+">", "</"+name+">"
	i := bytes.Index(doc, []byte(open))
	if i < 0 {
		return nil, nil, false
	}
	doc = doc[i+len(open):]
	j := bytes.Index(doc, []byte(close))
	if j < 0 {
		return nil, nil, false
	}
	return doc[:j], doc[j+len(close):], true
}

func elementText(doc []byte, name string) []byte {
	content, _, _ := element(doc, name)
	return content
}

// nextChild returns the first simple child element <name>value</name>.
func nextChild(doc []byte) (name string, value, rest []byte, ok bool) {
	i := bytes.IndexByte(doc, '<')
	if i < 0 || i+1 >= len(doc) || doc[i+1] == '/' {
		return "", nil, nil, false
	}
	doc = doc[i+1:]
	j := bytes.IndexByte(doc, '>')
	if j < 0 {
		return "", nil, nil, false
	}
	name = string(doc[:j])
	if strings.HasSuffix(name, "/") { // <empty/>
		return strings.TrimSuffix(name, "/"), nil, doc[j+1:], true
	}
	doc = doc[j+1:]
	k := bytes.Index(doc, []byte("</"+name+">"))
	if k < 0 {
		return "", nil, nil, false
	}
	return name, doc[:k], doc[k+len(name)+3:], true
}

// xmlText undoes XML's escaping of character data.
func xmlText(b []byte) string {
	if bytes.IndexByte(b, '&') < 0 {
		return string(b)
	}
	return html.UnescapeString(string(b))
}
