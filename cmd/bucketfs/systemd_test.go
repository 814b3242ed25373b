package main

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// unitSettings reads the [Service] settings of a unit file.
func unitSettings(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = v
		}
	}
	return settings
}

// systemdExpand expands a unit's command line as systemd does: %f is the
// instance path, ${VAR} one word, $VAR split at spaces.
func systemdExpand(line, instancePath string, env map[string]string) []string {
	var words []string
	for _, w := range strings.Fields(line) {
		w = strings.ReplaceAll(w, "%f", instancePath)
		if m := regexp.MustCompile(`^\$\{(\w+)\}$`).FindStringSubmatch(w); m != nil {
			words = append(words, env[m[1]])
		} else if m := regexp.MustCompile(`^\$(\w+)$`).FindStringSubmatch(w); m != nil {
			words = append(words, strings.Fields(env[m[1]])...)
		} else {
			words = append(words, w)
		}
	}
	return words
}

// TestSystemdUnit runs the shipped unit's ExecStart as systemd would
// (NOTIFY_SOCKET set, the example environment file's variables with this
// server's connection) and sees READY=1 arrive once the mount serves,
// then its ExecStop unmount the bucket and the process end cleanly, with
// STOPPING=1.
func TestSystemdUnit(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"hello.txt": {body: []byte("hello")}})
	unit := unitSettings(t, "../../contrib/systemd/bucketfs@.service")
	for k, want := range map[string]string{"Type": "notify", "Restart": "on-failure"} {
		if unit[k] != want {
			t.Errorf("unit %s=%q, want %q", k, unit[k], want)
		}
	}
	example := unitSettings(t, "../../contrib/systemd/bucketfs.env.example")
	if example["BUCKET"] == "" || example["BUCKETFS_OPTIONS"] == "" {
		t.Fatalf("the example environment file sets BUCKET=%q BUCKETFS_OPTIONS=%q", example["BUCKET"], example["BUCKETFS_OPTIONS"])
	}
	env := map[string]string{"BUCKET": bucket, "BUCKETFS_OPTIONS": strings.Join(connectArgs(srv), " ")}

	dir := t.TempDir()
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	start := systemdExpand(unit["ExecStart"], mnt, env)
	if start[0] != "/usr/local/bin/bucketfs" {
		t.Fatalf("ExecStart runs %s, want /usr/local/bin/bucketfs (where make install puts it)", start[0])
	}
	cmd := exec.Command(binary, start[1:]...)
	cmd.Env = append(append(os.Environ(), srv.Env()...), "NOTIFY_SOCKET="+filepath.Join(dir, "notify"))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	endOnCleanup(t, cmd, mnt, exited)

	type message struct {
		text    string
		mounted bool
	}
	messages := make(chan message, 8)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				close(messages)
				return
			}
			messages <- message{string(buf[:n]), isMounted(mnt)}
		}
	}()
	next := func(want string) {
		t.Helper()
		select {
		case m := <-messages:
			if m.text != want {
				t.Fatalf("systemd got %q, want %q\n%s", m.text, want, logs.String())
			}
			if want == "READY=1" && !m.mounted {
				t.Error("READY=1 came before the mount was there")
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s within 30 s\n%s", want, logs.String())
		}
	}
	next("READY=1")
	if got := sh(t, mnt, "cat hello.txt"); got != "hello" {
		t.Errorf("cat = %q", got)
	}

	stop := systemdExpand(unit["ExecStop"], mnt, env)
	if out, err := exec.Command(stop[0], stop[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("ExecStop %v: %v\n%s", stop, err, out)
	}
	next("STOPPING=1")
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("bucketfs ended with %v after ExecStop\n%s", waitErr, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("bucketfs still runs 15 s after ExecStop\n%s", logs.String())
	}
}

// TestMountHelperAndFstab mounts through mount(8): `mount -t fuse.bucketfs`
// and an /etc/fstab line with _netdev and allow_other. mount runs helpers
// with its own PATH, so in a private mount namespace the test binary is
// bound over /usr/local/bin, where make install puts it.
func TestMountHelperAndFstab(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"hello.txt": {body: []byte("hello")}})
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	mnt := filepath.Join(dir, "mnt")
	for _, d := range []string{bin, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(binary, filepath.Join(bin, "bucketfs")); err != nil {
		t.Fatal(err)
	}
	opts := "endpoint_url=" + srv.Endpoint + ",path_style"
	fstab := filepath.Join(dir, "fstab")
	line := bucket + " " + mnt + " fuse.bucketfs _netdev,allow_other,noauto," + opts + ",stat_ttl=5s 0 0\n"
	if err := os.WriteFile(fstab, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `set -e
mount --bind "$BIN" /usr/local/bin
mount -t fuse.bucketfs -o "$OPTS" "$BUCKET" "$MNT"
cat "$MNT/hello.txt"; echo
umount "$MNT"
mount -T "$FSTAB" "$MNT"
grep " $MNT " /proc/self/mounts | cut -d' ' -f3,4
cat "$MNT/hello.txt"; echo
umount "$MNT"`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "bash", "-c", script)
	cmd.Env = append(append(os.Environ(), srv.Env()...), "BIN="+bin, "OPTS="+opts, "BUCKET="+bucket, "MNT="+mnt, "FSTAB="+fstab)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || lines[0] != "hello" || lines[2] != "hello" ||
		!strings.HasPrefix(lines[1], "fuse.bucketfs ") || !strings.Contains(lines[1], "allow_other") {
		t.Errorf("through mount(8):\n%s", out)
	}
}
