package main

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// stranger is the uid and gid of an unprivileged user that owns nothing on
// this machine (no passwd entry is needed: the kernel checks numbers).
const stranger = 54321

// asStranger runs line in bash as the stranger and returns its combined
// output and error.
func asStranger(t *testing.T, dir, line string) (string, error) {
	t.Helper()
	id := strconv.Itoa(stranger)
	cmd := exec.Command("setpriv", "--reuid", id, "--regid", id, "--clear-groups", "bash", "-c", line)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "D=" + dir}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// reachable lets others traverse the test's temporary folders down to mnt
// (they are created 0700).
func reachable(t *testing.T, mnt string) {
	t.Helper()
	for dir := filepath.Dir(mnt); dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOtherUsersAndAllowOther: without --allow-other no other user gets in
// at all; with it, the kernel enforces the modes and owners the mount
// shows (default_permissions), and what another user creates is theirs.
func TestOtherUsersAndAllowOther(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{
		"public":      {body: []byte("for everyone"), meta: map[string]string{"mode": "33188", "uid": "0", "gid": "0"}},
		"private":     {body: []byte("root only"), meta: map[string]string{"mode": "33152", "uid": "0", "gid": "0"}},
		"open/":       {meta: map[string]string{"mode": "16895", "uid": "0", "gid": "0"}}, // drwxrwxrwx
		"theirs":      {body: []byte("the stranger's"), meta: map[string]string{"mode": "33152", "uid": strconv.Itoa(stranger), "gid": strconv.Itoa(stranger)}},
		"closed/file": {body: []byte("x")},
	})

	mine := mountBackground(t, srv, bucket)
	reachable(t, mine)
	if out, err := asStranger(t, mine, `ls "$D"`); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("another user listed a mount without --allow-other: %v %q", err, out)
	}
	if out, err := asStranger(t, mine, `cat "$D/public"`); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("another user read a mount without --allow-other: %v %q", err, out)
	}

	shared := mountBackground(t, srv, bucket, "--allow-other", "--stat-ttl", "1s")
	reachable(t, shared)
	for _, c := range []struct {
		line    string
		allowed bool
	}{
		{`ls "$D" | tr '\n' ' '`, true},
		{`cat "$D/public"`, true},
		{`cat "$D/private"`, false},
		{`cat "$D/theirs"`, true},
		{`echo more >> "$D/public"`, false},
		{`rm "$D/public"`, false}, // the root directory is 0755, root's
		{`touch "$D/new"`, false},
		{`chmod 666 "$D/private"`, false},
		{`setfattr -n user.x -v 1 "$D/public"`, false},
		{`echo mine > "$D/open/made"`, true},
		{`chmod 600 "$D/theirs"`, true},
	} {
		out, err := asStranger(t, shared, c.line)
		switch {
		case c.allowed && err != nil:
			t.Errorf("%s as another user with --allow-other: %v %q", c.line, err, out)
		case !c.allowed && (err == nil || !strings.Contains(out, "Permission denied") && !strings.Contains(out, "Operation not permitted")):
			t.Errorf("%s as another user with --allow-other succeeded or failed otherwise: %v %q", c.line, err, out)
		}
	}
	if obj := mustGet(t, srv, bucket, "open/made"); obj.meta["uid"] != strconv.Itoa(stranger) || obj.meta["gid"] != strconv.Itoa(stranger) {
		t.Errorf("a file the stranger made is stored with uid %q gid %q, want %d", obj.meta["uid"], obj.meta["gid"], stranger)
	}
	if obj := mustGet(t, srv, bucket, "private"); string(obj.body) != "root only" || obj.meta["mode"] != "33152" {
		t.Errorf("private changed: %q mode %q", obj.body, obj.meta["mode"])
	}
}

// TestReadOnlyRefusesEveryChange: --read-only answers EROFS to every kind
// of change, attributes and S3 settings included, and S3 is untouched.
func TestReadOnlyRefusesEveryChange(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"f": {body: []byte("keep"), meta: map[string]string{"note": "n"}}, "d/g": {body: []byte("g")}})
	mnt := mountBackground(t, srv, bucket, "--read-only")
	for _, op := range []string{
		"touch new", "touch f", "touch -d 2001-01-01 f", "mkdir e", "rmdir d", "rm f", "rm -r d", "echo x >> f",
		"truncate -s 0 f", "mv f g", "ln -s f l", "mkfifo p", "chmod 600 f", "chown 1:1 f",
		"setfattr -n user.x -v 1 f", "setfattr -x user.note f", "setfattr -n user.s3.storage_class -v STANDARD f",
		"setfattr -n user.s3.acl -v private f", "cp f f2",
	} {
		cmd := exec.Command("bash", "-c", op)
		cmd.Dir = mnt
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Read-only file system") {
			t.Errorf("%s on a read-only mount: %v %s", op, err, out)
		}
	}
	// The calls themselves, not only what the tools print.
	if err := syscall.Setxattr(filepath.Join(mnt, "f"), "user.y", []byte("1"), 0); err != syscall.EROFS {
		t.Errorf("setxattr on a read-only mount: %v, want EROFS", err)
	}
	if err := syscall.Removexattr(filepath.Join(mnt, "f"), "user.note"); err != syscall.EROFS {
		t.Errorf("removexattr on a read-only mount: %v, want EROFS", err)
	}
	if obj := mustGet(t, srv, bucket, "f"); string(obj.body) != "keep" || obj.meta["note"] != "n" || len(obj.meta) != 1 {
		t.Errorf("f changed on S3: %q %v", obj.body, obj.meta)
	}
	if got := sh(t, mnt, "cat f; ls -A | tr '\\n' ' '"); got != "keepd f " {
		t.Errorf("read-only mount shows %q", got)
	}
}

// TestPresignedLinksAreScoped: a presigned link never outlives
// --presign-expiry (nor 7 days, which the option refuses), and a PUT link
// uploads to its one key only: the same signature on another key, another
// method or a changed expiry is refused by S3.
func TestPresignedLinksAreScoped(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"d/a.txt": {body: []byte("alpha")}})
	mnt := mountBackground(t, srv, bucket, "--presign-expiry", "90s")
	buf := make([]byte, 4096)
	n, err := syscall.Getxattr(filepath.Join(mnt, "d/a.txt"), "user.s3.presigned_url", buf)
	if err != nil {
		t.Fatal(err)
	}
	if link := string(buf[:n]); !strings.Contains(link, "X-Amz-Expires=90&") && !strings.HasSuffix(link, "X-Amz-Expires=90") {
		t.Errorf("user.s3.presigned_url with --presign-expiry 90s: %s", link)
	}
	if _, stderr, err := bucketfs(t, srv, nil, append(connectArgs(srv), "--presign-expiry", "8d", bucket, t.TempDir())...); err == nil || !strings.Contains(stderr, "7 days") {
		t.Errorf("--presign-expiry 8d: %v %q, want refused naming 7 days", err, stderr)
	}
	for _, name := range []string{"user.s3.presign:GET:604801", "user.s3.presign:GET:0", "user.s3.presign:GET:-5"} {
		if _, err := syscall.Getxattr(filepath.Join(mnt, "d/a.txt"), name, buf); err != syscall.EINVAL {
			t.Errorf("getxattr %s: %v, want EINVAL", name, err)
		}
	}

	out, stderr, err := bucketfs(t, srv, nil, "presign", "--method", "PUT", "--expires", "60s", filepath.Join(mnt, "d/new.txt"))
	if err != nil {
		t.Fatalf("presign PUT: %v %s", err, stderr)
	}
	_, putURL, _ := strings.Cut(strings.TrimSpace(out), "\t")
	put := func(method, link string, body []byte) int {
		req, err := http.NewRequest(method, link, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	u, _ := url.Parse(putURL)
	other := *u
	other.Path = strings.Replace(u.Path, "d/new.txt", "d/a.txt", 1)
	longer := *u
	q := longer.Query()
	q.Set("X-Amz-Expires", "604800")
	longer.RawQuery = q.Encode()
	for _, c := range []struct {
		what, method, link string
	}{
		{"the PUT link on another key", http.MethodPut, other.String()},
		{"the PUT link with its expiry raised", http.MethodPut, longer.String()},
		{"the PUT link used to GET", http.MethodGet, putURL},
		{"the PUT link used to DELETE", http.MethodDelete, putURL},
	} {
		if code := put(c.method, c.link, []byte("forged")); code != http.StatusForbidden {
			t.Errorf("%s: HTTP %d, want 403", c.what, code)
		}
	}
	if obj := mustGet(t, srv, bucket, "d/a.txt"); string(obj.body) != "alpha" {
		t.Errorf("d/a.txt was overwritten through a link for another key: %q", obj.body)
	}
	if code := put(http.MethodPut, putURL, []byte("uploaded")); code != http.StatusOK {
		t.Errorf("the PUT link on its own key: HTTP %d", code)
	}
}

// TestNonRootMount is the container case: a user without privileges
// (nobody, since fusermount3 wants a user name) mounts with fusermount3
// (setuid) and a /dev/fuse open to all (as docker --device gives; here it
// is root's only, so a private mount namespace has a copy), stages in
// their own cache dir, reads and writes, and unmounts, and what they
// wrote is stored as theirs.
func TestNonRootMount(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"hello.txt": {body: []byte("hello")}})
	const nobody = 65534
	dir := t.TempDir()
	home, mnt, dev, bin := filepath.Join(dir, "home"), filepath.Join(dir, "mnt"), filepath.Join(dir, "dev"), filepath.Join(dir, "bucketfs")
	for _, d := range []string{home, mnt, dev} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	reachable(t, mnt)
	t.Cleanup(func() { unmountForTest(t, mnt) })
	script := `set -e
mount -t tmpfs tmpfs "$DEV"
mknod -m 666 "$DEV/fuse" c 10 229
mount --bind "$DEV/fuse" /dev/fuse
as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
as_nobody "$BIN" --endpoint-url "$ENDPOINT" --path-style "$BUCKET" "$MNT"
as_nobody cat "$MNT/hello.txt"; echo
echo mine | as_nobody tee "$MNT/mine.txt" > /dev/null
as_nobody ls -d "$HOME/.cache/bucketfs"
as_nobody fusermount3 -u "$MNT"`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "bash", "-c", script)
	cmd.Dir = "/"
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "BIN=" + bin, "ENDPOINT=" + srv.Endpoint,
		"BUCKET=" + bucket, "MNT=" + mnt, "DEV=" + dev}, srv.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	if want := "hello\n" + home + "/.cache/bucketfs\n"; string(out) != want {
		t.Errorf("as nobody:\n%s\nwant\n%s", out, want)
	}
	if got := headRaw(t, srv, bucket, "mine.txt").Metadata["uid"]; got != strconv.Itoa(nobody) {
		t.Errorf("mine.txt stored with uid %q, want %d", got, nobody)
	}
}
