package fs

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"syscall"

	"github.com/bucketfs/bucketfs/backend"
)

// POSIX ACLs. setfacl and getfacl speak the kernel's binary xattr form of
// system.posix_acl_access and system.posix_acl_default; bucketfs stores
// that form, base64, in x-amz-meta-posix-acl-access and
// x-amz-meta-posix-acl-default, and reads s3fs's (the same names in its
// x-amz-meta-xattr header) too. An access ACL sets the mode's permission
// bits, as on a local filesystem; a directory's default ACL is what new
// entries in it start with. With --allow-other the kernel enforces them.

const (
	aclAccessXattr  = "system.posix_acl_access"
	aclDefaultXattr = "system.posix_acl_default"
	aclAccessMeta   = "posix-acl-access"
	aclDefaultMeta  = "posix-acl-default"

	aclVersion = 2
	// Tags of ACL entries.
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

// aclEntry is one entry of an ACL in the kernel's xattr form.
type aclEntry struct {
	tag, perm uint16
	id        uint32
}

// parseACL decodes the kernel's xattr form: a version, then 8-byte
// entries; an empty value is no ACL.
func parseACL(v []byte) ([]aclEntry, syscall.Errno) {
	if len(v) < 4 || (len(v)-4)%8 != 0 || binary.LittleEndian.Uint32(v) != aclVersion {
		return nil, syscall.EINVAL
	}
	var out []aclEntry
	for b := v[4:]; len(b) > 0; b = b[8:] {
		e := aclEntry{binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:]), binary.LittleEndian.Uint32(b[4:])}
		switch e.tag {
		case aclUserObj, aclUser, aclGroupObj, aclGroup, aclMask, aclOther:
		default:
			return nil, syscall.EINVAL
		}
		if e.perm&^7 != 0 {
			return nil, syscall.EINVAL
		}
		out = append(out, e)
	}
	return out, 0
}

func encodeACL(entries []aclEntry) []byte {
	b := binary.LittleEndian.AppendUint32(nil, aclVersion)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// aclMode is the permission bits an access ACL gives: the owner's entry,
// the mask (or, without one, the owning group's entry) and other's.
// Minimal tells whether the ACL says no more than those bits.
func aclMode(entries []aclEntry) (perm uint32, minimal bool) {
	var group, mask uint32
	hasMask, minimal := false, true
	for _, e := range entries {
		switch e.tag {
		case aclUserObj:
			perm |= uint32(e.perm) << 6
		case aclGroupObj:
			group = uint32(e.perm)
		case aclMask:
			mask, hasMask = uint32(e.perm), true
		case aclOther:
			perm |= uint32(e.perm)
		default:
			minimal = false
		}
	}
	if hasMask {
		group = mask
	}
	return perm | group<<3, minimal && !hasMask
}

// inheritedACL is what a new entry of mode gets from its directory's
// default ACL: the access ACL, with the owner, mask (or group) and other
// entries cut to mode's bits, and the mode those give.
func inheritedACL(def []aclEntry, mode uint32) ([]aclEntry, uint32) {
	access := append([]aclEntry(nil), def...)
	hasMask := false
	for _, e := range access {
		hasMask = hasMask || e.tag == aclMask
	}
	for i, e := range access {
		switch {
		case e.tag == aclUserObj:
			access[i].perm &= uint16(mode >> 6 & 7)
		case e.tag == aclMask || e.tag == aclGroupObj && !hasMask:
			access[i].perm &= uint16(mode >> 3 & 7)
		case e.tag == aclOther:
			access[i].perm &= uint16(mode & 7)
		}
	}
	perm, _ := aclMode(access)
	return access, mode&^0o777 | perm
}

// aclHeader reads an ACL header value (base64 of the xattr form); nil
// when absent or unreadable.
func aclHeader(v string) []byte {
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b) == 0 {
		return nil
	}
	return b
}

// getACL answers getxattr of an ACL from the headers the mount has: a
// local copy's, or what the listing or a HEAD gave (by --posix-metadata,
// so a listing without POSIX headers answers without a request).
func (f *filesystem) getACL(ctx context.Context, t attrTarget, name string, dest []byte) (uint32, syscall.Errno) {
	var h fileHeaders
	switch {
	case t.local != nil:
		t.local.mu.Lock()
		h = t.local.headers
		t.local.mu.Unlock()
	case t.key == "":
		return 0, f.noACL(true) // a bucket's root has no object to hold one
	default:
		obj, err := f.shownHeaders(ctx, t.key)
		isDir := strings.HasSuffix(t.key, "/")
		if isNotFound(err) && isDir {
			return 0, f.noACL(true) // an implicit directory
		}
		if err != nil {
			return 0, f.errno("getxattr", t.key, err)
		}
		if !hasACLHeaders(obj.Metadata) {
			// Most objects: ls -l asks this of every file it lists.
			return 0, f.noACL(isDir)
		}
		h = f.headersOf(objectKind(obj), obj)
	}
	v := h.aclAccess
	if name == aclDefaultXattr {
		v = h.aclDefault
	}
	if len(v) == 0 {
		return 0, f.noACL(t.root || h.mode&syscall.S_IFMT == syscall.S_IFDIR)
	}
	f.aclSeen.Store(true)
	return xattrAnswer(dest, v)
}

// noACL is the answer for a file without an ACL. ls -l asks every file
// it lists, one FUSE round trip each (a quarter more time for 10,000
// files), and GNU ls stops asking on a filesystem once one answers
// ENOTSUP. So until the mount has seen an ACL, a file answers ENOTSUP,
// which getfacl, setfacl, cp -a, rsync -A and tar --acls take as "the
// mode is the ACL"; once it has, ENODATA, so that ls shows the "+" of
// those that have one. A directory always answers ENODATA: ls asks a
// directory it lists before it reads the listing that tells whether
// ACLs are in it. With --allow-other the kernel asks for ACLs itself,
// keeps the answer, and takes only ENODATA as "none".
func (f *filesystem) noACL(isDir bool) syscall.Errno {
	if isDir || f.cfg.AllowOther || f.aclSeen.Load() {
		return syscall.ENODATA
	}
	return syscall.ENOTSUP
}

// hasACLHeaders tells whether user metadata may hold an ACL: bucketfs's
// headers, or s3fs's xattr header (its ACLs are decoded by headersOf).
func hasACLHeaders(md map[string]string) bool {
	return md[aclAccessMeta] != "" || md[aclDefaultMeta] != "" || md[s3fsXattrHeader] != ""
}

// noteACLs marks the mount as one that has seen an ACL when a listing
// carries one (MinIO's listings carry user metadata).
func (f *filesystem) noteACLs(objects []backend.Object) {
	if f.aclSeen.Load() {
		return
	}
	for _, obj := range objects {
		if hasACLHeaders(obj.Metadata) {
			f.aclSeen.Store(true)
			return
		}
	}
}

// setACL is the header change of setfacl (value nil: removing the ACL).
// An access ACL sets the mode's permission bits; one that says no more
// than those bits is stored as the mode alone, as local filesystems do.
// Only a directory has a default ACL.
func setACL(name string, value []byte, isDir bool) func(*fileHeaders) (bool, syscall.Errno) {
	return func(h *fileHeaders) (bool, syscall.Errno) {
		var entries []aclEntry
		if value != nil {
			var errno syscall.Errno
			if entries, errno = parseACL(value); errno != 0 {
				return false, errno
			}
		}
		dropS3fsXattr(h.user, name) // bucketfs's own form from now on
		stored := &h.aclAccess
		if name == aclDefaultXattr {
			if !isDir {
				return false, syscall.EACCES
			}
			stored = &h.aclDefault
		}
		switch {
		case value == nil && *stored == nil:
			return false, syscall.ENODATA
		case value == nil:
			*stored = nil
		case name == aclDefaultXattr:
			*stored = value
		default:
			perm, minimal := aclMode(entries)
			h.mode = h.mode&^0o777 | perm
			*stored = value
			if minimal {
				*stored = nil
			}
		}
		if metadataSize(h.metadata()) > maxUserMetadata {
			return false, syscall.E2BIG
		}
		return true, 0
	}
}

// inherit gives h, the headers of a new entry of d, what d's default ACL
// says: the access ACL and the mode it gives, and for a directory the
// default ACL itself.
func (d *dirNode) inherit(ctx context.Context, h *fileHeaders) {
	prefix, ok := d.prefix()
	if !ok || prefix == "" {
		return
	}
	marker, err := d.fs.shownHeaders(ctx, prefix) // cached, as a lookup left it
	if err != nil {
		return
	}
	def, errno := parseACL(d.fs.headersOf(kindDir, marker).aclDefault)
	if errno != 0 {
		return
	}
	access, mode := inheritedACL(def, h.mode)
	h.mode = mode
	if _, minimal := aclMode(access); !minimal {
		h.aclAccess = encodeACL(access)
	}
	if h.mode&syscall.S_IFMT == syscall.S_IFDIR {
		h.aclDefault = encodeACL(def)
	}
}
