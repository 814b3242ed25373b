package fs

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"syscall"

	"github.com/bucketfs/bucketfs/backend"
)

// The writable user.s3.* attributes. Each change is checked
// before any request, and made in place with a server-side copy.

// storageClasses are the classes S3 defines; a typo fails here (EINVAL)
// rather than at the server. Whether a server offers one is its call.
var storageClasses = map[string]bool{
	"STANDARD": true, "REDUCED_REDUNDANCY": true, "STANDARD_IA": true, "ONEZONE_IA": true,
	"INTELLIGENT_TIERING": true, "GLACIER": true, "DEEP_ARCHIVE": true, "GLACIER_IR": true,
	"OUTPOSTS": true, "SNOW": true, "EXPRESS_ONEZONE": true,
}

// cannedACLs are S3's canned ACLs.
var cannedACLs = map[string]bool{
	"private": true, "public-read": true, "public-read-write": true, "authenticated-read": true,
	"aws-exec-read": true, "bucket-owner-read": true, "bucket-owner-full-control": true,
}

// readOnlyS3Xattrs can be read but not set.
var readOnlyS3Xattrs = map[string]bool{
	"uri": true, "etag": true, "version_id": true, "sse_kms_key_id": true,
	"presigned_url": true, "versions": true, "bucket": true, "region": true, "endpoint": true,
}

// setS3Xattr sets user.s3.NAME of the file n.
func (n *fileNode) setS3Xattr(ctx context.Context, name, value string) syscall.Errno {
	key, ok := n.key()
	if !ok {
		return syscall.ENOENT
	}
	switch name {
	case "storage_class":
		if !storageClasses[value] {
			return syscall.EINVAL
		}
		return n.editFileHeaders(ctx, func(h *fileHeaders) (bool, syscall.Errno) {
			if value == "STANDARD" {
				value = "" // how headers keep the default class
			}
			changed := h.storageClass != value
			h.storageClass = value
			return changed, 0
		})
	case "sse":
		sse, keyID, errno := n.fs.parseSSE(value)
		if errno != 0 {
			return errno
		}
		return n.editFileHeaders(ctx, func(h *fileHeaders) (bool, syscall.Errno) {
			changed := h.sse != sse || h.sseKMSKeyID != keyID
			h.sse, h.sseKMSKeyID = sse, keyID
			return changed, 0
		})
	case "content_type":
		if !strings.Contains(value, "/") || strings.ContainsAny(value, "\r\n") {
			return syscall.EINVAL
		}
		return n.editFileHeaders(ctx, func(h *fileHeaders) (bool, syscall.Errno) {
			changed := h.contentType != value
			h.contentType = value
			return changed, 0
		})
	case "acl":
		if !cannedACLs[value] {
			return syscall.EINVAL
		}
		err := n.fs.bucket.PutACL(ctx, key, value)
		if errors.Is(err, backend.ErrNotImplemented) {
			n.fs.log.Warn("the server does not implement object ACLs", "key", key, "acl", value)
		}
		return n.fs.errno("setxattr", key, err)
	case "restore":
		return n.restore(ctx, key, value)
	}
	if readOnlyS3Xattrs[name] {
		return n.fs.setReadOnly(ctx, n.attrTarget(key), "user.s3."+name, value)
	}
	return syscall.ENOTSUP
}

// setReadOnly answers a set of a read-only attribute: to its current
// value it succeeds and changes nothing (cp -a and rsync -X between two
// mounts copy it), to another value it fails with EPERM.
func (f *filesystem) setReadOnly(ctx context.Context, t attrTarget, name, value string) syscall.Errno {
	attrs, errno := f.xattrsOf(ctx, t)
	if errno != 0 {
		return errno
	}
	for _, a := range attrs {
		if a.name == name {
			if current, err := a.value(ctx); err == nil && strings.TrimRight(current, "\x00\n") == value {
				return 0
			}
		}
	}
	return syscall.EPERM
}

// parseSSE reads "none", "AES256", "aws:kms" (the mount's --sse-kms-key-id)
// or "aws:kms:KEY-ID".
func (f *filesystem) parseSSE(value string) (sse, keyID string, errno syscall.Errno) {
	switch {
	case value == "none":
		return "", "", 0
	case value == "AES256":
		return "AES256", "", 0
	case value == "aws:kms":
		return "aws:kms", f.cfg.Defaults.SSEKMSKeyID, 0
	case strings.HasPrefix(value, "aws:kms:") && len(value) > len("aws:kms:"):
		return "aws:kms", strings.TrimPrefix(value, "aws:kms:"), 0
	}
	return "", "", syscall.EINVAL
}

// restore makes version id of key the current one again, with a copy
// (newer versions stay).
func (n *fileNode) restore(ctx context.Context, key, id string) syscall.Errno {
	if id == "" || strings.ContainsAny(id, "\r\n/") {
		return syscall.EINVAL
	}
	if l := n.current(); l != nil && l.unsaved() {
		return syscall.EBUSY // its next upload would undo the restore
	}
	versions, err := n.fs.bucket.Versions(ctx, key)
	if err != nil {
		return n.fs.errno("restore", key, err)
	}
	for _, v := range versions {
		if v.ID != id {
			continue
		}
		if v.DeleteMarker {
			return syscall.EINVAL
		}
		obj, err := n.fs.headers(ctx, key)
		if err != nil {
			return n.fs.errno("restore", key, err)
		}
		h := n.fs.headersOf(objectKind(obj), obj)
		in := backend.CopyInput{Src: key, Dst: key, SrcVersionID: id, SrcSize: v.Size,
			StorageClass: h.storageClass, SSE: h.sse, SSEKMSKeyID: h.sseKMSKeyID}
		_, err = n.fs.bucket.Copy(ctx, in)
		return n.fs.errno("restore", key, err)
	}
	return syscall.ENOENT // no such version
}

// setRootXattr sets a bucket attribute on the mount's root.
func (f *filesystem) setRootXattr(ctx context.Context, name, value string) syscall.Errno {
	switch name {
	case "versioning":
		if value != "Enabled" && value != "Suspended" {
			return syscall.EINVAL
		}
		return f.errno("setxattr", "", f.bucket.SetVersioning(ctx, value))
	case "policy":
		if !json.Valid([]byte(value)) {
			return syscall.EINVAL
		}
		return f.errno("setxattr", "", f.bucket.SetPolicy(ctx, value))
	}
	if readOnlyS3Xattrs[name] {
		return f.setReadOnly(ctx, attrTarget{key: f.cfg.Prefix, root: true}, "user.s3."+name, value)
	}
	return syscall.ENOTSUP
}

// removeRootXattr removes a bucket attribute: the policy only.
func (f *filesystem) removeRootXattr(ctx context.Context, name string) syscall.Errno {
	if name == "policy" {
		return f.errno("removexattr", "", f.bucket.DeletePolicy(ctx))
	}
	return syscall.EPERM
}
