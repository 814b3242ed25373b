package fs

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
)

// s3fs keeps a file's extended attributes in one header, x-amz-meta-xattr:
// a JSON object of attribute name to base64 value, the whole
// percent-encoded. bucketfs shows the user.* ones of that header beside its
// own x-amz-meta-NAME attributes, and keeps the header when it rewrites
// the object. Its own writes use its own form: setting or removing an
// attribute drops the name from s3fs's header, so that an attribute never
// has two values (where both exist, bucketfs's own is shown).

// s3fsXattrHeader is the metadata name of s3fs's header.
const s3fsXattrHeader = "xattr"

// s3fsXattrs decodes s3fs's header: attribute name to value. ok is false
// when v is not one (then it is an ordinary user.xattr attribute).
func s3fsXattrs(v string) (attrs map[string]string, ok bool) {
	if unescaped, err := url.PathUnescape(v); err == nil {
		v = unescaped
	}
	var encoded map[string]string
	if !strings.HasPrefix(v, "{") || json.Unmarshal([]byte(v), &encoded) != nil {
		return nil, false
	}
	attrs = make(map[string]string, len(encoded))
	for name, value := range encoded {
		decoded, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			return nil, false
		}
		attrs[name] = string(decoded)
	}
	return attrs, true
}

// encodeS3fsXattrs is the header value of attrs, as s3fs writes it.
func encodeS3fsXattrs(attrs map[string]string) string {
	encoded := make(map[string]string, len(attrs))
	for name, value := range attrs {
		encoded[name] = base64.StdEncoding.EncodeToString([]byte(value))
	}
	b, _ := json.Marshal(encoded) // a map of strings always encodes
	return url.PathEscape(string(b))
}

// dropS3fsXattr removes the attribute full (user.NAME, an ACL's name) from
// s3fs's header in user (the headers' user metadata), and reports whether
// it was there.
func dropS3fsXattr(user map[string]string, full string) bool {
	attrs, ok := s3fsXattrs(user[s3fsXattrHeader])
	if !ok {
		return false
	}
	dropped := false
	for name := range attrs {
		if strings.EqualFold(name, full) {
			delete(attrs, name)
			dropped = true
		}
	}
	switch {
	case !dropped:
	case len(attrs) == 0:
		delete(user, s3fsXattrHeader)
	default:
		user[s3fsXattrHeader] = encodeS3fsXattrs(attrs)
	}
	return dropped
}
