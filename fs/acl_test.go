package fs

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/bucketfs/bucketfs/backend/memory"
)

// anACL is an access ACL in the kernel's xattr form: owner rw, user 4242
// r, group r, mask r, other none.
func anACL() []byte {
	return encodeACL([]aclEntry{
		{tag: aclUserObj, perm: 6, id: 0xffffffff}, {tag: aclUser, perm: 4, id: 4242},
		{tag: aclGroupObj, perm: 4, id: 0xffffffff}, {tag: aclMask, perm: 4, id: 0xffffffff},
		{tag: aclOther, perm: 0, id: 0xffffffff},
	})
}

func aclErr(path string) error {
	_, err := syscall.Getxattr(path, aclAccessXattr, make([]byte, 256))
	return err
}

// TestACLFreeMountAnswersENOTSUP: until the mount has seen an ACL, a file
// without one answers ENOTSUP, so GNU ls stops asking (one FUSE round trip
// a file less in ls -l); directories answer ENODATA, since ls asks the
// directory it lists before the listing tells whether ACLs are in it.
// Once an ACL is seen (set here, or in a listing), files answer ENODATA,
// and ls shows the "+" of those that have one.
func TestACLFreeMountAnswersENOTSUP(t *testing.T) {
	mem := memory.New("b")
	put(t, mem, "a", []byte("a"), nil, "")
	put(t, mem, "b", []byte("b"), nil, "")
	put(t, mem, "d/x", []byte("x"), nil, "")
	mnt := mountMemory(t, mem, nil)
	if err := aclErr(filepath.Join(mnt, "a")); !errors.Is(err, syscall.ENOTSUP) {
		t.Errorf("ACL of a file on a mount without ACLs: %v, want ENOTSUP", err)
	}
	for _, dir := range []string{mnt, filepath.Join(mnt, "d")} {
		if err := aclErr(dir); !errors.Is(err, syscall.ENODATA) {
			t.Errorf("ACL of directory %s: %v, want ENODATA", dir, err)
		}
	}
	if err := syscall.Setxattr(filepath.Join(mnt, "a"), aclAccessXattr, anACL(), 0); err != nil {
		t.Fatal(err)
	}
	if err := aclErr(filepath.Join(mnt, "b")); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("ACL of a file once the mount has set one: %v, want ENODATA", err)
	}
	if err := aclErr(filepath.Join(mnt, "a")); err != nil {
		t.Errorf("ACL of the file that has one: %v", err)
	}

	// A listing that carries an ACL (MinIO's carry user metadata).
	listed := memory.New("b")
	listed.ListHeaders = true
	put(t, listed, "plain", []byte("p"), nil, "")
	put(t, listed, "shared", []byte("s"), map[string]string{aclAccessMeta: base64.StdEncoding.EncodeToString(anACL())}, "")
	mnt = mountMemory(t, listed, nil)
	if _, err := os.ReadDir(mnt); err != nil {
		t.Fatal(err)
	}
	if err := aclErr(filepath.Join(mnt, "plain")); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("ACL of a file listed beside one with an ACL: %v, want ENODATA", err)
	}
}
