package main

import (
	"fmt"
	"io"
	"strings"
	"syscall"
)

// pendingXattr is the mount's report of what S3 does not have yet, one
// line per file: STATE<TAB>KEY<TAB>SIZE<TAB>SINCE<TAB>DETAIL.
const pendingXattr = "user.s3.pending"

// pending prints, for each mountpoint, the files whose upload is still
// pending and the conflict copies kept in the cache dir. The mount answers
// through an xattr of its root, so this needs no credentials.
func pending(mountpoints []string, stdout, stderr io.Writer) error {
	for _, mnt := range mountpoints {
		report, err := getxattr(mnt, pendingXattr)
		if err != nil {
			return fmt.Errorf("%s: %w (is it the root of a bucketfs mount?)", mnt, err)
		}
		if report == "" {
			fmt.Fprintf(stderr, "%s: nothing pending\n", mnt)
			continue
		}
		for line := range strings.Lines(report) {
			fmt.Fprintf(stdout, "%s\t%s", mnt, line)
		}
	}
	return nil
}

// getxattr reads a whole attribute, growing the buffer as needed.
func getxattr(path, name string) (string, error) {
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Getxattr(path, name, buf)
		if err == syscall.ERANGE {
			size, err := syscall.Getxattr(path, name, nil)
			if err != nil {
				return "", err
			}
			buf = make([]byte, size+4096)
			continue
		}
		if err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
}
