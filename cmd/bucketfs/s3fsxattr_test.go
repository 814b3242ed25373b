package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// TestS3fsXattrHeader: s3fs keeps extended attributes in one header,
// x-amz-meta-xattr (JSON of name to base64 value, percent-encoded).
// Those attributes show as themselves (they showed as one user.xattr
// holding the header), survive a chmod, and a setfattr or setfattr -x of
// one moves it to bucketfs's own x-amz-meta-NAME form or removes it,
// leaving the rest of s3fs's header. Checked with an independent client.
func TestS3fsXattrHeader(t *testing.T) {
	srv := server(t)
	header := url.PathEscape(`{"user.color":"cmVk","user.tag":"YQ==","user.keep":"eWVz"}`)
	bucket := newBucket(t, srv, map[string]object{
		"f": {body: []byte("x"), meta: map[string]string{"mode": "33188", "xattr": header}},
	})
	_, mnt, _ := mountForeground(t, srv, bucket)
	dump := func() string {
		t.Helper()
		return strings.TrimSpace(sh(t, mnt, "getfattr -d --absolute-names f | grep -v '^#'"))
	}
	if got, want := dump(), "user.color=\"red\"\nuser.keep=\"yes\"\nuser.tag=\"a\""; got != want {
		t.Errorf("getfattr -d of s3fs's attributes:\n%s\nwant\n%s", got, want)
	}
	sh(t, mnt, "chmod 600 f && setfattr -n user.color -v blue f && setfattr -x user.tag f")
	if got, want := dump(), "user.color=\"blue\"\nuser.keep=\"yes\""; got != want {
		t.Errorf("getfattr -d after the changes:\n%s\nwant\n%s", got, want)
	}
	meta := headRaw(t, srv, bucket, "f").Metadata
	if meta["color"] != "blue" {
		t.Errorf("x-amz-meta-color = %q, want blue (bucketfs's own form)", meta["color"])
	}
	raw, err := url.PathUnescape(meta["xattr"])
	var left map[string]string
	if err != nil || json.Unmarshal([]byte(raw), &left) != nil || len(left) != 1 || left["user.keep"] != "eWVz" {
		t.Errorf("s3fs's header after the changes: %q; want only user.keep", meta["xattr"])
	}
}
