package fs

import (
	"strings"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

// A node's key is not stored: it follows from the node's place in the tree,
// which go-fuse updates on rename, so a renamed directory's descendants
// need no rewriting.

// pathOf returns the names from the root down to n, or false when n is no
// longer in the tree (unlinked while open).
func pathOf(n *gofs.Inode) ([]string, bool) {
	var names []string
	for !isTop(n) {
		name, parent := n.Parent()
		if parent == nil {
			return nil, false
		}
		names = append(names, name)
		n = parent
	}
	for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
		names[i], names[j] = names[j], names[i]
	}
	return names, true
}

// dirPrefix is the key prefix of directory node n: the mount's prefix for
// the root, else ending in "/".
func (f *filesystem) dirPrefix(n *gofs.Inode) (string, bool) {
	names, ok := pathOf(n)
	if !ok {
		return "", false
	}
	if len(names) == 0 {
		return f.cfg.Prefix, true
	}
	return f.cfg.Prefix + strings.Join(names, "/") + "/", true
}

// fileKey is the object key of file node n; a shadowed file's name carries
// the suffix that its key does not.
func (f *filesystem) fileKey(n *gofs.Inode, shadowed bool) (string, bool) {
	names, ok := pathOf(n)
	if !ok || len(names) == 0 {
		return "", false
	}
	if shadowed {
		names[len(names)-1] = strings.TrimSuffix(names[len(names)-1], shadowSuffix)
	}
	return f.cfg.Prefix + strings.Join(names, "/"), true
}

// isTop tells whether n is where keys start: the mount's root, or a
// bucket's directory in an --all-buckets mount.
func isTop(n *gofs.Inode) bool {
	if n.IsRoot() {
		return true
	}
	d, ok := n.Operations().(*dirNode)
	return ok && d.bucketRoot
}
