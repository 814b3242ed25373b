package fs

import (
	"testing"

	"github.com/bucketfs/bucketfs/backend/memory"
	"github.com/bucketfs/bucketfs/fs/posixsuite"
)

// TestPOSIXSuite runs go-fuse's POSIX test suite over an in-process mount
// of the memory backend (posixsuite lists the cases left out, and why).
func TestPOSIXSuite(t *testing.T) {
	posixsuite.Run(t, mountMemory(t, memory.New("b"), nil))
}
