package fs

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/bucketfs/bucketfs/backend"
)

// posixHeaders are the x-amz-meta-* names that carry POSIX metadata: they
// show as file attributes, not as user.* xattrs.
var posixHeaders = map[string]bool{"mode": true, "uid": true, "gid": true, "mtime": true, "atime": true, "ctime": true, "rdev": true,
	aclAccessMeta: true, aclDefaultMeta: true}

// xattr is one extended attribute; value computes it when asked, since
// some cost a request (acl, versions) or a signature (presigned_url).
type xattr struct {
	name  string
	value func(ctx context.Context) (string, error)
}

func constant(v string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return v, nil }
}

// objectXattrs are the user.s3.* attributes of an object and its user
// metadata (the README's table lists them). obj may be
// the zero Object (an implicit directory): it has a URI only.
func (f *filesystem) objectXattrs(key string, obj backend.Object) []xattr {
	attrs := []xattr{{"user.s3.uri", constant("s3://" + f.bucket.Name() + "/" + key)}}
	if obj.Key == "" {
		return attrs
	}
	sse := obj.SSE
	if sse == "" {
		sse = "none"
	}
	version := obj.VersionID
	if version == "" {
		version = "null"
	}
	attrs = append(attrs,
		xattr{"user.s3.etag", constant(obj.ETag)},
		xattr{"user.s3.version_id", constant(version)},
		xattr{"user.s3.storage_class", constant(obj.StorageClass)},
		xattr{"user.s3.sse", constant(sse)},
	)
	if obj.SSE == "aws:kms" {
		attrs = append(attrs, xattr{"user.s3.sse_kms_key_id", constant(obj.SSEKMSKeyID)})
	}
	attrs = append(attrs,
		xattr{"user.s3.acl", func(ctx context.Context) (string, error) {
			acl, err := f.bucket.GetACL(ctx, key)
			if err != nil {
				return "", err
			}
			out, err := json.Marshal(acl)
			return string(out), err
		}},
		xattr{"user.s3.content_type", constant(obj.ContentType)},
		xattr{"user.s3.presigned_url", func(ctx context.Context) (string, error) {
			return f.bucket.Presign(ctx, key, "GET", f.cfg.PresignExpiry)
		}},
		xattr{"user.s3.versions", func(ctx context.Context) (string, error) {
			versions, err := f.bucket.Versions(ctx, key)
			if err != nil {
				return "", err
			}
			return formatVersions(versions), nil
		}},
	)
	s3fs, fromS3fs := s3fsXattrs(obj.Metadata[s3fsXattrHeader])
	names := make([]string, 0, len(obj.Metadata))
	own := map[string]bool{}
	for name := range obj.Metadata {
		if !posixHeaders[name] && !(fromS3fs && name == s3fsXattrHeader) {
			names = append(names, name)
			own["user."+name] = true
		}
	}
	slices.Sort(names)
	for _, name := range names {
		attrs = append(attrs, xattr{"user." + name, constant(decodeHeaderValue(obj.Metadata[name]))})
	}
	for _, name := range slices.Sorted(maps.Keys(s3fs)) {
		if strings.HasPrefix(name, "user.") && !own[strings.ToLower(name)] {
			attrs = append(attrs, xattr{name, constant(s3fs[name])})
		}
	}
	return attrs
}

// formatVersions writes one line per version, newest first:
// ID<TAB>RFC3339 time<TAB>size<TAB>flags (latest, delete-marker, or -).
func formatVersions(versions []backend.Version) string {
	var b strings.Builder
	for _, v := range versions {
		var flags []string
		if v.Latest {
			flags = append(flags, "latest")
		}
		if v.DeleteMarker {
			flags = append(flags, "delete-marker")
		}
		if len(flags) == 0 {
			flags = []string{"-"}
		}
		fmt.Fprintf(&b, "%s\t%s\t%d\t%s\n", v.ID, v.LastModified.UTC().Format(time.RFC3339), v.Size, strings.Join(flags, ","))
	}
	return b.String()
}

// rootXattrs are the bucket's attributes, on the mount's root.
func (f *filesystem) rootXattrs() []xattr {
	return []xattr{
		{"user.s3.uri", constant("s3://" + f.bucket.Name() + "/" + f.cfg.Prefix)},
		{"user.s3.bucket", constant(f.bucket.Name())},
		{"user.s3.region", constant(f.cfg.Region)},
		{"user.s3.endpoint", constant(f.cfg.Endpoint)},
		{"user.s3.versioning", f.bucket.Versioning},
		{"user.s3.policy", f.bucket.Policy},
	}
}

// attrTarget is what a node's xattrs describe: the object at key (a
// file, or a directory's marker), the bucket for a root, or the local copy
// of a file this mount holds.
type attrTarget struct {
	key   string
	root  bool
	local *localFile
}

// xattrsOf returns the attributes of the target. A local file shows its
// own headers, which may be newer than S3's (or S3 may not have it yet).
func (f *filesystem) xattrsOf(ctx context.Context, t attrTarget) ([]xattr, syscall.Errno) {
	if t.root {
		return f.rootXattrs(), 0
	}
	if t.local != nil {
		obj := t.local.asObject()
		if obj.ETag != "" {
			stored, err := f.headers(ctx, t.key)
			if err == nil && stored.ETag == obj.ETag {
				obj.VersionID, obj.SSEKMSKeyID = stored.VersionID, cmp.Or(obj.SSEKMSKeyID, stored.SSEKMSKeyID)
			}
		}
		return f.objectXattrs(t.key, obj), 0
	}
	obj, err := f.headers(ctx, t.key)
	if err != nil && !(isNotFound(err) && strings.HasSuffix(t.key, "/")) {
		return nil, f.errno("getxattr", t.key, err)
	}
	return f.objectXattrs(t.key, obj), 0
}

// ownXattr tells the names this filesystem has: user.* and the POSIX
// ACLs (answered from the headers the mount has, without a request).
// Other namespaces (security.*, trusted.*) get ENOTSUP, not ENODATA: tools
// such as ls remember an unsupported namespace per filesystem and stop
// asking.
func ownXattr(name string) bool {
	return strings.HasPrefix(name, "user.") || name == aclAccessXattr || name == aclDefaultXattr
}

// getxattrOf and listxattrOf serve the object behind a node.
func (f *filesystem) getxattrOf(ctx context.Context, t attrTarget, name string, dest []byte) (uint32, syscall.Errno) {
	if !ownXattr(name) {
		return 0, syscall.ENOTSUP
	}
	if req, ok := strings.CutPrefix(name, presignXattr); ok {
		return f.presignXattr(ctx, t.key, t.root || strings.HasSuffix(t.key, "/"), req, dest)
	}
	if name == aclAccessXattr || name == aclDefaultXattr {
		return f.getACL(ctx, t, name, dest)
	}
	if name == statsXattr && t.root && f.cfg.StatsReport != nil {
		return xattrAnswer(dest, f.cfg.StatsReport())
	}
	if name == pendingXattr && t.root {
		return xattrAnswer(dest, f.pendingReport())
	}
	attrs, errno := f.xattrsOf(ctx, t)
	if errno != 0 {
		return 0, errno
	}
	for _, a := range attrs {
		if a.name != name {
			continue
		}
		v, err := a.value(ctx)
		if isNotFound(err) {
			return 0, syscall.ENODATA // no policy, say
		}
		if err != nil {
			return 0, f.errno("getxattr", t.key, err)
		}
		return xattrAnswer(dest, v)
	}
	return 0, syscall.ENODATA
}

// xattrAnswer copies a value into getxattr's buffer, or says how big the
// buffer must be (a buffer of 0 asks the size).
func xattrAnswer[V string | []byte](dest []byte, v V) (uint32, syscall.Errno) {
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

// listxattrOf lists only what belongs to the object: its user metadata.
// The user.s3.* attributes stay readable by name (and `bucketfs info`
// prints them) but are not listed: tools that copy every listed attribute
// (rsync -X, tar --xattrs, cp -a) would otherwise copy a working download
// link (user.s3.presigned_url) into backups, send a request per file for
// the ACL and the versions, and try to set S3's own attributes on the
// copy. A new empty file lists no attribute, as on a local filesystem.
func (f *filesystem) listxattrOf(ctx context.Context, t attrTarget, dest []byte) (uint32, syscall.Errno) {
	var names []byte
	if !t.root {
		attrs, errno := f.xattrsOf(ctx, t)
		if errno != 0 {
			return 0, errno
		}
		for _, a := range attrs {
			if !strings.HasPrefix(a.name, "user.s3.") {
				names = append(append(names, a.name...), 0)
			}
		}
	}
	if len(dest) < len(names) {
		return uint32(len(names)), syscall.ERANGE
	}
	return uint32(copy(dest, names)), 0
}

var (
	_ = (gofs.NodeGetxattrer)((*fileNode)(nil))
	_ = (gofs.NodeListxattrer)((*fileNode)(nil))
	_ = (gofs.NodeGetxattrer)((*dirNode)(nil))
	_ = (gofs.NodeListxattrer)((*dirNode)(nil))
)

// attrTarget is the file at key, or its local copy while it has one.
func (n *fileNode) attrTarget(key string) attrTarget {
	return attrTarget{key: key, local: n.current()}
}

func (n *fileNode) Getxattr(ctx context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	key, ok := n.key()
	if !ok {
		return 0, syscall.ENOENT
	}
	return n.fs.getxattrOf(ctx, n.attrTarget(key), name, dest)
}

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	key, ok := n.key()
	if !ok {
		return 0, syscall.ENOENT
	}
	return n.fs.listxattrOf(ctx, n.attrTarget(key), dest)
}

func (d *dirNode) Getxattr(ctx context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	prefix, ok := d.prefix()
	if !ok {
		return 0, syscall.ENOENT
	}
	return d.fs.getxattrOf(ctx, attrTarget{key: prefix, root: d.top()}, name, dest)
}

func (d *dirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	prefix, ok := d.prefix()
	if !ok {
		return 0, syscall.ENOENT
	}
	return d.fs.listxattrOf(ctx, attrTarget{key: prefix, root: d.top()}, dest)
}

// pendingXattr, on a bucket's root, is how `bucketfs pending` asks the
// mount what S3 does not have yet (see pendingReport). Not listed.
const pendingXattr = "user.s3.pending"

// presignXattr is how `bucketfs presign` asks the mount, which holds the
// credentials, for a URL: "user.s3.presign:METHOD:SECONDS" on a file, or
// "user.s3.presign:PUT:SECONDS:NAME" on a directory for a file NAME that
// need not exist yet. These names are not listed.
const presignXattr = "user.s3.presign:"

func (f *filesystem) presignXattr(ctx context.Context, key string, isDir bool, req string, dest []byte) (uint32, syscall.Errno) {
	parts := strings.SplitN(req, ":", 3)
	if len(parts) < 2 {
		return 0, syscall.EINVAL
	}
	seconds, err := strconv.Atoi(parts[1])
	if err != nil {
		return 0, syscall.EINVAL
	}
	method := parts[0]
	if isDir {
		// A file to be uploaded into this directory.
		if len(parts) != 3 || method != "PUT" || !validName(parts[2]) {
			return 0, syscall.EINVAL
		}
		key += parts[2]
	} else if len(parts) != 2 {
		return 0, syscall.EINVAL
	}
	url, err := f.bucket.Presign(ctx, key, method, time.Duration(seconds)*time.Second)
	if err != nil {
		return 0, f.errno("presign", key, err)
	}
	return xattrAnswer(dest, url)
}
