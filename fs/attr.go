package fs

import (
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
)

// owner holds the attributes an object gets when its headers say nothing.
type owner struct {
	uid, gid          uint32
	fileMode, dirMode uint32 // permission bits only
	mountTime         time.Time
}

// kind is what an object or prefix is as a file.
type kind uint32

const (
	kindFile    kind = syscall.S_IFREG
	kindDir     kind = syscall.S_IFDIR
	kindSymlink kind = syscall.S_IFLNK
	kindFIFO    kind = syscall.S_IFIFO
	kindSocket  kind = syscall.S_IFSOCK
	kindChar    kind = syscall.S_IFCHR
	kindBlock   kind = syscall.S_IFBLK
)

// parseMode reads x-amz-meta-mode like C's strtol(s, 0): decimal, or octal
// with a leading 0, or hex with 0x. s3fs writes decimal.
func parseMode(s string) (uint32, bool) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 0, 32)
	return uint32(v), err == nil
}

// parseMtime reads decimal seconds with an optional fraction of any length
// ("1700000000", "1700000000.5", "1700000000.123456789").
func parseMtime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	secStr, fracStr, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var nsec int64
	if fracStr != "" {
		if len(fracStr) > 9 {
			fracStr = fracStr[:9]
		}
		fracStr += strings.Repeat("0", 9-len(fracStr))
		if nsec, err = strconv.ParseInt(fracStr, 10, 64); err != nil || nsec < 0 {
			return time.Time{}, false
		}
	}
	return time.Unix(sec, nsec), true
}

// objectKind tells what an object is: a directory if its mode or s3fs's
// Content-Type says so (or its key is a marker), else its mode's type.
func objectKind(obj backend.Object) kind {
	if strings.HasSuffix(obj.Key, "/") || obj.ContentType == "application/x-directory" {
		return kindDir
	}
	if m, ok := parseMode(obj.Metadata["mode"]); ok {
		switch kind(m & syscall.S_IFMT) {
		case kindDir, kindSymlink, kindFIFO, kindSocket, kindChar, kindBlock:
			return kind(m & syscall.S_IFMT)
		}
	}
	return kindFile
}

// attrOf fills the attributes of a file or directory. obj may be the zero
// Object (an implicit directory).
func (o owner) attrOf(k kind, obj backend.Object, out *fuse.Attr) {
	perm := o.fileMode
	if k == kindDir {
		perm = o.dirMode
	}
	uid, gid, mtime := o.uid, o.gid, obj.LastModified
	if mtime.IsZero() {
		mtime = o.mountTime
	}
	// Without their own headers, atime and ctime are the mtime (not 1970).
	atime, ctime := mtime, mtime
	if len(obj.Metadata) > 0 { // most objects have none: no parse errors to make
		if m, ok := parseMode(obj.Metadata["mode"]); ok {
			perm = m &^ syscall.S_IFMT
		}
		if v, err := strconv.ParseUint(obj.Metadata["uid"], 10, 32); err == nil {
			uid = uint32(v)
		}
		if v, err := strconv.ParseUint(obj.Metadata["gid"], 10, 32); err == nil {
			gid = uint32(v)
		}
		if t, ok := parseMtime(obj.Metadata["mtime"]); ok {
			mtime, atime, ctime = t, t, t
		}
		if t, ok := parseMtime(obj.Metadata["atime"]); ok {
			atime = t
		}
		if t, ok := parseMtime(obj.Metadata["ctime"]); ok {
			ctime = t
		}
	}
	out.Mode = uint32(k) | perm&07777
	out.Owner = fuse.Owner{Uid: uid, Gid: gid}
	if k == kindChar || k == kindBlock {
		out.Rdev = parseRdev(obj.Metadata["rdev"])
	}
	out.Nlink = 1 // "unknown": keeps find(1) from guessing leaves from link counts
	if k != kindDir {
		out.Size = uint64(obj.Size)
		out.Blocks = (out.Size + 511) / 512
	}
	out.Blksize = 4096
	out.SetTimes(&atime, &mtime, &ctime)
}

// parseRdev reads a device number as s3fs stores it in x-amz-meta-rdev:
// decimal, in the kernel's 32-bit encoding that FUSE passes to mknod and
// takes back in getattr; 0 when absent or unreadable.
func parseRdev(v string) uint32 {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}
