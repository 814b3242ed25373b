// Package posixsuite runs go-fuse's POSIX test suite over a bucketfs
// mount, for the tests of package fs (memory backend) and of the binary
// (MinIO).
package posixsuite

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// LeftOut are the cases of go-fuse's POSIX suite that are not run, and
// why. Every other case runs, on the memory backend (fs.TestPOSIXSuite)
// and on MinIO (TestPOSIXSuiteOnMinIO in cmd/bucketfs).
var LeftOut = map[string]string{
	"Link":             "hard links are ENOTSUP by design: S3 cannot share one object between two keys",
	"LinkUnlinkRename": "makes a hard link: ENOTSUP by design",
	"FcntlFlockLocksFile": "expects two descriptors of one process to hold conflicting POSIX locks, " +
		"which POSIX record locks never do (ext4 answers the same); the kernel keeps the mount's locks",
}

// Run runs every case not left out under mnt, each in a directory of
// its own. Cases that skip themselves: Tmpfile (O_TMPFILE: a nameless
// file cannot be an object), XAttrLarge (S3 holds 2 KiB of metadata)
// and RenameOpenDir (a limit of go-fuse itself, its issue 55).
func Run(t *testing.T, mnt string) {
	for _, name := range slices.Sorted(maps.Keys(posixtest.All)) {
		t.Run(name, func(t *testing.T) {
			if why, ok := LeftOut[name]; ok {
				t.Skip(why)
			}
			dir := filepath.Join(mnt, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			posixtest.All[name](t, dir)
		})
	}
}
