package fs

import "strings"

// Limits from POSIX (NAME_MAX) and S3 (the key length limit).
const (
	maxNameLen = 255
	maxKeyLen  = 1024
)

// shadowSuffix names the file `a` when a directory `a/` also exists: the
// directory keeps the name and the file stays reachable as `a.__file__`.
const shadowSuffix = ".__file__"

// legacyDirSuffix marks directories written by old s3fs versions.
const legacyDirSuffix = "_$folder$"

// validName reports whether one path component of a key can be a file name.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= maxNameLen &&
		!strings.ContainsRune(name, '/') && !strings.ContainsRune(name, 0)
}

// shadowedName is the name under which a file shadowed by a directory of
// the same name is shown.
func shadowedName(name string) string { return name + shadowSuffix }

// unshadow returns the file name behind a shadowed name.
func unshadow(name string) (string, bool) {
	base, ok := strings.CutSuffix(name, shadowSuffix)
	return base, ok && validName(base)
}
