package main

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// aclXattr is an access ACL in the kernel's xattr form: owner rw, the
// stranger r, group r, mask r, other none.
func aclXattr() []byte {
	b := []byte{2, 0, 0, 0}
	for _, e := range [][3]uint32{{0x01, 6, 0xffffffff}, {0x02, 4, stranger}, {0x04, 4, 0xffffffff}, {0x10, 4, 0xffffffff}, {0x20, 0, 0xffffffff}} {
		b = append(b, byte(e[0]), byte(e[0]>>8), byte(e[1]), byte(e[1]>>8), byte(e[2]), byte(e[2]>>8), byte(e[2]>>16), byte(e[2]>>24))
	}
	return b
}

// TestPOSIXACLs: setfacl and getfacl work (every ACL call was ENOTSUP).
// An access ACL is stored in x-amz-meta-posix-acl-access, checked with an
// independent client, sets the mode's group bits to its mask, survives a
// remount and is removed by setfacl -b; s3fs's form (in x-amz-meta-xattr)
// is read; a directory's default ACL is inherited by what is created in
// it; and with --allow-other the kernel enforces them.
func TestPOSIXACLs(t *testing.T) {
	srv := server(t)
	s3fsHeader := url.PathEscape(fmt.Sprintf(`{"system.posix_acl_access":%q}`, base64.StdEncoding.EncodeToString(aclXattr())))
	bucket := newBucket(t, srv, map[string]object{
		"f":       {body: []byte("x"), meta: map[string]string{"mode": "33188"}},
		"by-s3fs": {body: []byte("y"), meta: map[string]string{"mode": "33184", "xattr": s3fsHeader}},
		"d/":      {meta: map[string]string{"mode": "16877"}},
		"closed":  {body: []byte("z"), meta: map[string]string{"mode": "33184", "uid": "0", "gid": "0"}},
	})
	id := strconv.Itoa(stranger)
	cmd, mnt, _ := mountForeground(t, srv, bucket)
	// A fresh mount has seen no ACL, so a file without one answers ENOTSUP
	// (GNU ls then stops asking); getfacl and setfacl take it as "the mode
	// is the ACL".
	if got, want := strings.TrimSpace(sh(t, mnt, "getfacl -cp closed")), "user::rw-\ngroup::r--\nother::---"; got != want {
		t.Errorf("getfacl of a file without an ACL on a fresh mount:\n%s\nwant\n%s", got, want)
	}
	sh(t, mnt, "setfacl -m u:"+id+":rw f && setfacl -d -m u:"+id+":rwx d && touch d/new && mkdir d/sub")
	if got := headRaw(t, srv, bucket, "f").Metadata["posix-acl-access"]; got == "" {
		t.Error("x-amz-meta-posix-acl-access of f is empty after setfacl")
	}
	unmountForTest(t, mnt)
	waitGone(t, cmd.Process.Pid)
	cmd, mnt, _ = mountForeground(t, srv, bucket)
	for line, want := range map[string]string{
		"getfacl -cp f | grep -v '^#'": "user::rw-\nuser:" + id + ":rw-\ngroup::r--\nmask::rw-\nother::r--",
		"stat -c %a f":                 "664",
		// A fresh mount's ls -l: the listing shows the mount has ACLs, so
		// the files after one without an ACL get their "+" too.
		"ls -l | awk '{print $1, $NF}' | grep -v '^total'": "-rw-r-----+ by-s3fs\n-rw-r----- closed\ndrwxr-xr-x+ d\n-rw-rw-r--+ f",
		"getfacl -cp by-s3fs | grep -v '^#'":               "user::rw-\nuser:" + id + ":r--\ngroup::r--\nmask::r--\nother::---",
		// The kernel applies the umask (022) before bucketfs sees the
		// mode, so the inherited mask is r--, not rw- (README).
		"getfacl -cp d/new | grep -v '^#'":  "user::rw-\nuser:" + id + ":rwx\t#effective:r--\ngroup::r-x\t#effective:r--\nmask::r--\nother::r--",
		"getfacl -cpd d/sub | grep -v '^#'": "user::rwx\nuser:" + id + ":rwx\ngroup::r-x\nmask::rwx\nother::r-x",
	} {
		if got := strings.TrimSpace(sh(t, mnt, line)); got != want {
			t.Errorf("%s:\n%s\nwant\n%s", line, got, want)
		}
	}
	sh(t, mnt, "setfacl -b f")
	if got := headRaw(t, srv, bucket, "f").Metadata["posix-acl-access"]; got != "" {
		t.Errorf("x-amz-meta-posix-acl-access after setfacl -b: %q", got)
	}
	unmountForTest(t, mnt)
	waitGone(t, cmd.Process.Pid)

	// Enforced by the kernel: the stranger may read by-s3fs (0640, root's,
	// the ACL gives them r) but not closed (0640, root's, no ACL).
	open := mountBackground(t, srv, bucket, "--allow-other")
	reachable(t, open)
	if out, err := asStranger(t, open, `cat "$D/by-s3fs"`); err != nil || out != "y" {
		t.Errorf("the stranger, whom the ACL lets read, got %q, %v", out, err)
	}
	if out, err := asStranger(t, open, `cat "$D/closed"`); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("the stranger read a file they have no entry for: %q, %v", out, err)
	}
}
