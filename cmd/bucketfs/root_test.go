package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// TestMountRootTakesAttributes: touch, chmod and chown of the mountpoint
// itself succeed (they gave EPERM on a bucket root): on a BUCKET:PREFIX
// mount they are stored on the prefix's marker object, checked with an
// independent client; on a bucket root, which has no object to hold them,
// they last as long as the mount.
func TestMountRootTakesAttributes(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"sub/f": {body: []byte("x")}})
	const change = "touch -d @1700000000 . && chmod 700 . && chown 123:456 ."
	const want = "700 123:456 1700000000"

	_, mnt, _ := mountForeground(t, srv, bucket+":sub/")
	sh(t, mnt, change)
	if got := strings.TrimSpace(sh(t, mnt, "stat -c '%a %u:%g %Y' .")); got != want {
		t.Errorf("prefix root after the changes: %q, want %q", got, want)
	}
	meta := headRaw(t, srv, bucket, "sub/").Metadata
	if meta["mode"] != fmt.Sprint(syscall.S_IFDIR|0o700) || meta["uid"] != "123" || meta["gid"] != "456" || !strings.HasPrefix(meta["mtime"], "1700000000") {
		t.Errorf("the marker sub/ holds %v", meta)
	}

	cmd, mnt, _ := mountForeground(t, srv, bucket)
	sh(t, mnt, change)
	if got := strings.TrimSpace(sh(t, mnt, "stat -c '%a %u:%g %Y' .")); got != want {
		t.Errorf("bucket root after the changes: %q, want %q", got, want)
	}
	unmountForTest(t, mnt)
	waitGone(t, cmd.Process.Pid)
	_, mnt, _ = mountForeground(t, srv, bucket)
	if got := strings.TrimSpace(sh(t, mnt, "stat -c '%a' .")); got != "755" {
		t.Errorf("bucket root after a remount: mode %s, want the default 755 (nothing holds it)", got)
	}
}
