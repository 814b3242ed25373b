package main

import (
	"testing"

	"github.com/bucketfs/bucketfs/fs/posixsuite"
)

// TestPOSIXSuiteOnMinIO runs go-fuse's POSIX test suite over a real mount
// of MinIO (posixsuite lists the cases left out, and why).
func TestPOSIXSuiteOnMinIO(t *testing.T) {
	srv := server(t)
	_, mnt, _ := mountForeground(t, srv, newBucket(t, srv, nil))
	posixsuite.Run(t, mnt)
}
