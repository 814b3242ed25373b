package fs

import (
	"encoding/base64"
	"fmt"
	"mime"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
)

// fileHeaders is what an object's headers say about it as a file: the
// POSIX metadata written s3fs's way, its Content-Type, and the user
// metadata that every rewrite must carry over.
type fileHeaders struct {
	mode     uint32 // st_mode, type bits included
	uid, gid uint32
	rdev     uint32 // a device node's number
	// aclAccess and aclDefault are POSIX ACLs in the kernel's xattr form
	// (acl.go); nil for none.
	aclAccess, aclDefault []byte
	// mtime, atime and ctime as s3fs stores them; ctime moves at every
	// change of data or headers, and never back.
	mtime, atime, ctime time.Time
	contentType         string
	user                map[string]string // x-amz-meta-* other than the POSIX ones
	// S3 settings, which S3 does not carry over by itself when an object
	// is rewritten or copied: kept from the object, or the mount's defaults
	// for a new one. acl applies to new objects only.
	storageClass, sse, sseKMSKeyID, acl string
}

// hasPOSIXHeaders tells whether obj carries headers that change how it is
// shown: a mode, an owner, times, or s3fs's directory content type.
func hasPOSIXHeaders(obj backend.Object) bool {
	for name := range obj.Metadata {
		if posixHeaders[name] {
			return true
		}
	}
	return obj.ContentType == "application/x-directory"
}

// headersOf reads an object's headers, filling what they lack from the
// mount's defaults, as attrOf does.
func (f *filesystem) headersOf(k kind, obj backend.Object) fileHeaders {
	var a fuse.Attr
	f.owner.attrOf(k, obj, &a)
	h := fileHeaders{
		mode: a.Mode, uid: a.Uid, gid: a.Gid,
		mtime:       time.Unix(int64(a.Mtime), int64(a.Mtimensec)),
		atime:       time.Unix(int64(a.Atime), int64(a.Atimensec)),
		ctime:       time.Unix(int64(a.Ctime), int64(a.Ctimensec)),
		rdev:        a.Rdev,
		contentType: obj.ContentType,
		user:        map[string]string{},
		sse:         obj.SSE, sseKMSKeyID: obj.SSEKMSKeyID,
	}
	if obj.StorageClass != "STANDARD" {
		h.storageClass = obj.StorageClass
	}
	for name, v := range obj.Metadata {
		if !posixHeaders[name] {
			h.user[name] = decodeHeaderValue(v)
		}
	}
	h.aclAccess, h.aclDefault = aclHeader(obj.Metadata[aclAccessMeta]), aclHeader(obj.Metadata[aclDefaultMeta])
	if s3fs, ok := s3fsXattrs(obj.Metadata[s3fsXattrHeader]); ok {
		// s3fs's ACLs, unless bucketfs's own say otherwise.
		if h.aclAccess == nil && s3fs[aclAccessXattr] != "" {
			h.aclAccess = []byte(s3fs[aclAccessXattr])
		}
		if h.aclDefault == nil && s3fs[aclDefaultXattr] != "" {
			h.aclDefault = []byte(s3fs[aclDefaultXattr])
		}
	}
	if h.aclAccess != nil || h.aclDefault != nil {
		f.aclSeen.Store(true)
	}
	return h
}

// User metadata values are any bytes (setfattr writes binary values), but
// an HTTP header carries printable ASCII only. Other values are stored as
// one RFC 2047 encoded word, "=?UTF-8?B?base64?=", as AWS itself stores
// non-ASCII metadata, and decoded on read, so getfattr returns the exact
// bytes. A printable value that would read as an encoded word is encoded
// too.

func encodeHeaderValue(v string) string {
	if headerSafe(v) {
		return v
	}
	return "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(v)) + "?="
}

func headerSafe(v string) bool {
	if strings.HasPrefix(v, "=?") || strings.TrimSpace(v) != v {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

func decodeHeaderValue(v string) string {
	if !strings.HasPrefix(v, "=?") {
		return v
	}
	decoded, err := new(mime.WordDecoder).DecodeHeader(v)
	if err != nil {
		return v // not ours: shown as stored
	}
	return decoded
}

// newHeaders are the headers of a file or directory this mount creates.
func (f *filesystem) newHeaders(mode uint32, uid, gid uint32, name string) fileHeaders {
	d := f.cfg.Defaults
	now := time.Now()
	return fileHeaders{
		mode: mode, uid: uid, gid: gid,
		mtime: now, atime: now, ctime: now,
		contentType:  contentTypeOf(mode, name),
		user:         map[string]string{},
		storageClass: d.StorageClass, sse: d.SSE, sseKMSKeyID: d.SSEKMSKeyID, acl: d.ACL,
	}
}

// UploadDefaults are the S3 settings of the objects a mount creates
// (--storage-class, --sse, --sse-kms-key-id, --acl); "" leaves each to the
// bucket.
type UploadDefaults struct {
	StorageClass, SSE, SSEKMSKeyID, ACL string
}

// metadata renders the headers as x-amz-meta-* values: mode in decimal,
// times as seconds with nine digits of fraction, as s3fs writes them.
func (h fileHeaders) metadata() map[string]string {
	m := make(map[string]string, len(h.user)+4)
	for name, v := range h.user {
		m[name] = encodeHeaderValue(v)
	}
	m["mode"] = fmt.Sprint(h.mode)
	if k := kind(h.mode & syscall.S_IFMT); k == kindChar || k == kindBlock {
		m["rdev"] = fmt.Sprint(h.rdev)
	}
	if len(h.aclAccess) > 0 {
		m[aclAccessMeta] = base64.StdEncoding.EncodeToString(h.aclAccess)
	}
	if len(h.aclDefault) > 0 {
		m[aclDefaultMeta] = base64.StdEncoding.EncodeToString(h.aclDefault)
	}
	m["uid"] = fmt.Sprint(h.uid)
	m["gid"] = fmt.Sprint(h.gid)
	for name, t := range map[string]time.Time{"mtime": h.mtime, "atime": h.atime, "ctime": h.ctime} {
		if !t.IsZero() {
			m[name] = fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
		}
	}
	return m
}

// putInput is an upload of key with these headers.
func (h fileHeaders) putInput(key string) backend.PutInput {
	return backend.PutInput{Key: key, ContentType: h.contentType, Metadata: h.metadata(), Size: -1,
		StorageClass: h.storageClass, SSE: h.sse, SSEKMSKeyID: h.sseKMSKeyID, ACL: h.acl}
}

// copyInput rewrites obj with these headers in place (server-side).
func (h fileHeaders) copyInput(obj backend.Object) backend.CopyInput {
	return backend.CopyInput{Src: obj.Key, Dst: obj.Key, SrcETag: obj.ETag, SrcSize: obj.Size,
		ReplaceHeaders: true, ContentType: h.contentType, Metadata: h.metadata(),
		StorageClass: h.storageClass, SSE: h.sse, SSEKMSKeyID: h.sseKMSKeyID}
}

// renamedContentType is the Content-Type a file renamed from oldKey to
// newKey gets: one that was only the guess for the old name (or a
// server's or tool's default) becomes the guess for the new name, so that
// a file written under a temporary name (rsync's .photo.jpg.Xy12Ab, an
// editor's or a downloader's) is served with its real type; one set on
// purpose stays. ok is false when the type stays as it is.
func renamedContentType(current, oldKey, newKey string) (string, bool) {
	switch current {
	case contentTypeOf(syscall.S_IFREG, oldKey), "", "application/octet-stream", "binary/octet-stream":
	default:
		return current, false
	}
	next := contentTypeOf(syscall.S_IFREG, newKey)
	return next, next != current
}

// contentTypeOf guesses a Content-Type from the file name's extension,
// without parameters ("text/plain", not "text/plain; charset=utf-8": some
// clients compare it whole); directories get s3fs's application/x-directory.
func contentTypeOf(mode uint32, name string) string {
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		return "application/x-directory"
	}
	t := mime.TypeByExtension(path.Ext(name))
	if t == "" {
		return "application/octet-stream"
	}
	t, _, _ = strings.Cut(t, ";")
	return strings.TrimSpace(t)
}

// changed records a change of the file's data or headers at now: ctime
// moves, and never back.
func (h *fileHeaders) changed(now time.Time) {
	if now.After(h.ctime) {
		h.ctime = now
	}
}
