package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDeviceNodesAreStored: mknod of character and block devices is
// stored like FIFOs, with the device number in x-amz-meta-rdev as s3fs
// does, instead of EPERM; stat shows type and number after a remount and
// after a chmod, and s3fs's own device objects show the same way.
func TestDeviceNodesAreStored(t *testing.T) {
	srv := server(t)
	const chr, blk = 3<<8 | 7, 8<<8 | 1 // the kernel's 32-bit encoding: 3:7, 8:1
	bucket := newBucket(t, srv, map[string]object{
		"by-s3fs": {meta: map[string]string{"mode": fmt.Sprint(syscall.S_IFCHR | 0o600), "rdev": fmt.Sprint(chr)}},
	})
	cmd, mnt, _ := mountForeground(t, srv, bucket)
	sh(t, mnt, "mknod tty c 3 7 && mknod disk b 8 1 && chmod 640 disk")
	if got := headRaw(t, srv, bucket, "tty").Metadata["rdev"]; got != fmt.Sprint(chr) {
		t.Errorf("x-amz-meta-rdev of tty = %q, want %d", got, chr)
	}
	unmountForTest(t, mnt)
	waitGone(t, cmd.Process.Pid)
	_, mnt, _ = mountForeground(t, srv, bucket)
	want := map[string]string{"tty": "character special file 3:7 644", "disk": "block special file 8:1 640",
		"by-s3fs": "character special file 3:7 600"}
	// The mount is nodev: a device object another client wrote (1:1 would
	// be /dev/mem) must never open the device.
	if f, err := os.Open(filepath.Join(mnt, "by-s3fs")); !errors.Is(err, syscall.EACCES) {
		f.Close()
		t.Errorf("open of a device node: %v, want EACCES (nodev)", err)
	}
	for name, w := range want {
		got := strings.TrimSpace(sh(t, mnt, "stat -c '%F %Hr:%Lr %a' "+name))
		if got != w {
			t.Errorf("stat %s after a remount = %q, want %q", name, got, w)
		}
	}
}
