package main

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestBadInputFailsBeforeMounting(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	tests := []struct {
		name string
		env  []string
		args []string
		want string // in the one line on stderr, lower-cased
	}{
		{"no arguments", nil, nil, "bucket"},
		{"unknown option", nil, []string{"--frobnicate", bucket, "MNT"}, "unknown option"},
		{"missing bucket", nil, append(connectArgs(srv), "no-such-bucket-here", "MNT"), "bucket"},
		{"wrong credentials", []string{"AWS_SECRET_ACCESS_KEY=wrong-secret-value"}, append(connectArgs(srv), bucket, "MNT"), "denied"},
		{"unreachable endpoint", nil, []string{"--endpoint-url", "http://127.0.0.1:9", "--path-style", bucket, "MNT"}, "127.0.0.1:9"},
		{"mountpoint is a file", nil, append(connectArgs(srv), bucket, file), "not a directory"},
		{"mountpoint not empty", nil, append(connectArgs(srv), bucket, full), "not empty"},
		{"mountpoint missing", nil, append(connectArgs(srv), bucket, "/nonexistent/mnt"), "no such file"},
		{"as-of with all buckets", nil, append(connectArgs(srv), "--as-of", "2026-01-01T00:00:00Z", "--all-buckets", "MNT"), "--all-buckets"},
		{"secret as a flag", nil, append(connectArgs(srv), "-o", "secret_access_key=hunter2", bucket, "MNT"), "environment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mnt := t.TempDir()
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.ReplaceAll(a, "MNT", mnt)
			}
			start := time.Now()
			_, stderr, err := bucketfs(t, srv, tt.env, args...)
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("err = %v, want a non-zero exit; stderr %q", err, stderr)
			}
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 {
				t.Errorf("stderr has %d lines, want one:\n%s", len(lines), stderr)
			}
			if !strings.Contains(strings.ToLower(stderr), tt.want) {
				t.Errorf("stderr = %q, want it to mention %q", stderr, tt.want)
			}
			for _, secret := range []string{"wrong-secret-value", "hunter2", srv.SecretKey} {
				if strings.Contains(stderr, secret) {
					t.Errorf("stderr shows a secret: %q", stderr)
				}
			}
			if isMounted(mnt) {
				unmountForTest(t, mnt)
				t.Error("mounted despite the error")
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %v to fail", d)
			}
		})
	}
}

func TestOrdinaryToolsReadTheBucket(t *testing.T) {
	srv := server(t)
	big := make([]byte, 5<<20+777)
	rand.Read(big)
	bigSum := md5.Sum(big)
	bucket := newBucket(t, srv, map[string]object{
		"README.txt":          {body: []byte("hello world\nneedle here\n")},
		"docs/":               {contentType: "application/x-directory"},
		"docs/a.txt":          {body: []byte("a\n"), meta: map[string]string{"author": "ada"}},
		"deep/er/still/f.txt": {body: []byte("deep\n")},
		"big.bin":             {body: big},
		"sp ace/Zürich 夜.txt": {body: []byte("unicode\n")},
		"bin/run.sh": {body: []byte("#!/bin/sh\n"), meta: map[string]string{
			"mode": "33261", "uid": "42", "gid": "43", "mtime": "1600000000.500000000"}},
	})
	mnt := mountBackground(t, srv, bucket)

	if got, want := sh(t, mnt, "LC_ALL=C ls"), "README.txt\nbig.bin\nbin\ndeep\ndocs\nsp ace\n"; got != want {
		t.Errorf("ls = %q, want %q", got, want)
	}
	if got := sh(t, mnt, "ls -la . 2>&1"); strings.Contains(got, "error") {
		t.Errorf("ls -la of the root: %q", got)
	}
	if got := sh(t, mnt, "LC_ALL=C ls -ln bin"); !strings.Contains(got, "-rwxr-xr-x 1 42 43 10 Sep 13  2020 run.sh") {
		t.Errorf("ls -l bin = %q", got)
	}
	if got := sh(t, mnt, "stat -c '%a %u %g %Y %s' bin/run.sh"); got != "755 42 43 1600000000 10\n" {
		t.Errorf("stat = %q", got)
	}
	if got := sh(t, mnt, "cat README.txt"); got != "hello world\nneedle here\n" {
		t.Errorf("cat = %q", got)
	}
	out := t.TempDir()
	sh(t, mnt, "cp big.bin "+out+"/big.bin")
	if got, _ := os.ReadFile(out + "/big.bin"); !bytes.Equal(got, big) {
		t.Error("cp out of the mount changed the bytes")
	}
	if got, want := sh(t, mnt, "find . -type f | LC_ALL=C sort"), "./README.txt\n./big.bin\n./bin/run.sh\n./deep/er/still/f.txt\n./docs/a.txt\n./sp ace/Zürich 夜.txt\n"; got != want {
		t.Errorf("find = %q, want %q", got, want)
	}
	if got, want := sh(t, mnt, "find . -type d | LC_ALL=C sort"), ".\n./bin\n./deep\n./deep/er\n./deep/er/still\n./docs\n./sp ace\n"; got != want {
		t.Errorf("find -type d = %q, want %q", got, want)
	}
	if got := sh(t, mnt, "du -b big.bin"); !strings.HasPrefix(got, "5243657\t") {
		t.Errorf("du -b = %q", got)
	}
	if got := sh(t, mnt, "du -sk ."); !strings.HasPrefix(got, "51") { // 5 MiB in 1 KiB blocks: 5128
		t.Errorf("du -sk = %q", got)
	}
	if got := sh(t, mnt, "head -c 100 big.bin"); got != string(big[:100]) {
		t.Error("head -c differs")
	}
	if got := sh(t, mnt, "tail -c 100 big.bin"); got != string(big[len(big)-100:]) {
		t.Error("tail -c differs")
	}
	if got := sh(t, mnt, "grep -r needle ."); got != "./README.txt:needle here\n" {
		t.Errorf("grep -r = %q", got)
	}
	if got := sh(t, mnt, "md5sum big.bin"); !strings.HasPrefix(got, hex.EncodeToString(bigSum[:])) {
		t.Errorf("md5sum = %q", got)
	}
	if got := sh(t, mnt, "dd if=big.bin bs=1M skip=3 count=1 status=none"); got != string(big[3<<20:4<<20]) {
		t.Error("dd skip=3 differs")
	}
	if got := sh(t, mnt, "cat 'sp ace/Zürich 夜.txt'"); got != "unicode\n" {
		t.Errorf("unicode name: %q", got)
	}
	if got := sh(t, mnt, "getfattr -d docs/a.txt"); !strings.Contains(got, `user.author="ada"`) {
		t.Errorf("getfattr -d = %q", got)
	}
	if got := sh(t, mnt, "getfattr --only-values -n user.s3.uri docs/a.txt"); got != "s3://"+bucket+"/docs/a.txt" {
		t.Errorf("user.s3.uri = %q", got)
	}
}

func TestSignalsAndUmountEndTheProcess(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"f": {body: []byte("x")}})
	for _, stop := range []string{"SIGTERM", "SIGINT", "umount"} {
		t.Run(stop, func(t *testing.T) {
			cmd, mnt, logs := mountForeground(t, srv, bucket)
			if got := sh(t, mnt, "cat f"); got != "x" {
				t.Fatalf("cat = %q", got)
			}
			switch stop {
			case "SIGTERM":
				cmd.Process.Signal(syscall.SIGTERM)
			case "SIGINT":
				cmd.Process.Signal(syscall.SIGINT)
			default:
				if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
					t.Fatalf("umount: %v %s", err, out)
				}
			}
			done := make(chan struct{})
			go func() {
				for cmd.ProcessState == nil {
					time.Sleep(20 * time.Millisecond)
				}
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Fatalf("still running 15s after %s:\n%s", stop, logs)
			}
			if !cmd.ProcessState.Success() {
				t.Errorf("exit %v after %s:\n%s", cmd.ProcessState, stop, logs)
			}
			if isMounted(mnt) {
				t.Errorf("still mounted after %s", stop)
			}
		})
	}
}

func TestOtherClientsChangesAppearAfterTTL(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"d/f": {body: []byte("version 1")}})
	mnt := mountBackground(t, srv, bucket, "--stat-ttl", "1s", "--negative-ttl", "1s")
	if got := sh(t, mnt, "cat d/f; ls d"); got != "version 1f\n" {
		t.Fatalf("before: %q", got)
	}
	putObject(t, srv, bucket, "d/f", object{body: []byte("version 2, longer")})
	putObject(t, srv, bucket, "d/new", object{body: []byte("new")})
	time.Sleep(1500 * time.Millisecond) // a real TTL, end to end
	if got := sh(t, mnt, "cat d/f; ls d"); got != "version 2, longerf\nnew\n" {
		t.Errorf("after the TTL: %q", got)
	}
	if err := deleteObject(srv, bucket, "d/new"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(mnt, "d/new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted object still there after the TTL: %v", err)
	}
}

func TestOptionFormsPrefixAndReadOnly(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"top": {body: []byte("t")}, "sub/dir/f": {body: []byte("f")}})
	// fstab style: options after the positionals, through -o.
	mnt := t.TempDir()
	_, stderr, err := bucketfs(t, srv, nil, bucket+":sub/", mnt, "-o", "endpoint_url="+srv.Endpoint+",path_style,ro,stat_ttl=10s,file_mode=0600,uid=123")
	if err != nil {
		t.Fatalf("mount: %v %s", err, stderr)
	}
	t.Cleanup(func() { unmountForTest(t, mnt) })
	if got := sh(t, mnt, "find . | sort"); got != ".\n./dir\n./dir/f\n" {
		t.Errorf("prefix mount shows %q", got)
	}
	if got := sh(t, mnt, "stat -c '%a %u' dir/f"); got != "600 123\n" {
		t.Errorf("stat = %q", got)
	}
	for _, op := range []string{"touch new", "mkdir d", "rm dir/f", "echo x >> dir/f", "mv dir/f dir/g", "setfattr -n user.x -v 1 dir/f"} {
		cmd := exec.Command("bash", "-c", op)
		cmd.Dir = mnt
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Read-only file system") {
			t.Errorf("%s on a read-only mount: %v %s", op, err, out)
		}
	}
}

func TestDeadServerFailsInBoundedTimeAndRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	srv := startPrivateServer(t)
	bucket := newBucket(t, srv, map[string]object{"f": {body: []byte("alive")}, "d/e/x": {body: []byte("x")}})
	mnt := mountBackground(t, srv, bucket, "--stat-ttl", "1s", "--negative-ttl", "1s")
	if got := sh(t, mnt, "cat f"); got != "alive" {
		t.Fatal(got)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	start := time.Now()
	// d/e/ was never listed (the mount lists the root and d/): nothing
	// tells what is in it. A name the root's last listing did not have is
	// missing, as an offline lookup says.
	_, err := os.ReadFile(filepath.Join(mnt, "d/e/g"))
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("read with the server gone: %v, want EIO", err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "g")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat of a name the last listing lacked, server gone: %v, want ENOENT", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("failing took %v, want well under a minute", d)
	}
	t.Logf("failed in %v", time.Since(start))
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || string(got) != "alive" {
		t.Errorf("after the server came back: %q, %v", got, err)
	}
}
