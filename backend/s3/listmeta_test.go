package s3

import (
	"maps"
	"testing"
)

func TestParseListingHeaders(t *testing.T) {
	body := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><EncodingType>url</EncodingType>` +
		`<Contents><Key>d%2Fa+b%26c</Key><Size>2</Size><UserMetadata><X-Amz-Meta-Mode>33261</X-Amz-Meta-Mode>` +
		`<content-type>text/plain</content-type><X-Amz-Meta-Note>a &amp; b &lt;3&#33;</X-Amz-Meta-Note><X-Amz-Meta-Empty></X-Amz-Meta-Empty></UserMetadata>` +
		`<Internal><K>2</K><M>2</M></Internal></Contents>` +
		`<Contents><Key>plain</Key><Size>1</Size></Contents>` +
		`<Contents><Key>d%2Fy</Key><UserMetadata><content-type>application/octet-stream</content-type></UserMetadata></Contents>` +
		`<Contents><Key>kms</Key><UserMetadata><X-Amz-Server-Side-Encryption>aws:kms</X-Amz-Server-Side-Encryption>` +
		`<X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id>arn:aws:kms:k1</X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id>` +
		`<content-type>text/plain</content-type></UserMetadata></Contents>` +
		`</ListBucketResult>`)
	got := parseListingHeaders(body)
	want := map[string]listedHeaders{
		"d/a b&c": {contentType: "text/plain", metadata: map[string]string{"mode": "33261", "note": "a & b <3!", "empty": ""}},
		"d/y":     {contentType: "application/octet-stream", metadata: map[string]string{}},
		"kms":     {contentType: "text/plain", metadata: map[string]string{}, sse: "aws:kms", sseKMSKeyID: "arn:aws:kms:k1"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries: %+v", len(got), got)
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || g.contentType != w.contentType || !maps.Equal(g.metadata, w.metadata) || g.sse != w.sse || g.sseKMSKeyID != w.sseKMSKeyID {
			t.Errorf("%q: got %+v, want %+v", k, g, w)
		}
	}
	if len(parseListingHeaders([]byte(`<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>`))) != 0 {
		t.Error("a plain S3 listing produced headers")
	}
}
