package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogFormatJSON: with --log-format json every line is one JSON object.
func TestLogFormatJSON(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"f": {body: []byte("x")}})
	logFile := filepath.Join(t.TempDir(), "log")
	mnt := mountBackground(t, srv, bucket, "--log-format", "json", "--debug", "--log-file", logFile)
	sh(t, mnt, "cat f > /dev/null")
	unmountForTest(t, mnt)
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	requests := 0
	for _, line := range lines {
		var record map[string]any
		if err := json.Unmarshal([]byte(line), &record); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, line)
		}
		if record["level"] == nil || record["msg"] == nil {
			t.Errorf("log line without level or msg: %s", line)
		}
		if record["msg"] == "s3 request" && record["op"] == "GetObject" && record["key"] == "f" {
			requests++
		}
	}
	if requests != 1 {
		t.Errorf("%d traces of the GetObject of f in:\n%s", requests, data)
	}
}

// TestUnwritableLogFile: a log file that cannot be written fails the
// mount with one line and a non-zero exit, before anything is mounted.
func TestUnwritableLogFile(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	dir := t.TempDir()
	for path, why := range map[string]string{
		filepath.Join(dir, "missing", "log"): "no such file or directory",
		dir:                                  "is a directory",
	} {
		mnt := t.TempDir()
		_, stderr, err := bucketfs(t, srv, nil, append(connectArgs(srv), "--log-file", path, bucket, mnt)...)
		if err == nil || isMounted(mnt) {
			unmountForTest(t, mnt)
			t.Fatalf("mounted with --log-file %s", path)
		}
		if want := "bucketfs: --log-file " + path + ": " + why + "\n"; stderr != want {
			t.Errorf("stderr %q, want %q", stderr, want)
		}
	}
}

// TestBackgroundLogsToSyslog: a background mount without --log-file logs
// to syslog (/dev/log, where journald listens too). In a private mount
// namespace /dev is a copy whose log is the test's socket.
func TestBackgroundLogsToSyslog(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"hello.txt": {body: []byte("hello")}})
	dir := t.TempDir()
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "log"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	devCopy, mnt := filepath.Join(dir, "dev"), filepath.Join(dir, "mnt")
	for _, d := range []string{devCopy, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := `set -e
mount -t tmpfs tmpfs "$DEV"
for d in fuse null zero urandom random; do touch "$DEV/$d"; mount --bind "/dev/$d" "$DEV/$d"; done
touch "$DEV/log"; mount --bind "$SOCK" "$DEV/log"
mount --move "$DEV" /dev
"$BUCKETFS" "$@" "$BUCKET" "$MNT" 2>&1
cat "$MNT/hello.txt"; echo
umount "$MNT"`
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "bash", "-c", script, "bash"}, connectArgs(srv)...)...)
	cmd.Env = append(append(os.Environ(), srv.Env()...), "DEV="+devCopy, "SOCK="+filepath.Join(dir, "log"),
		"BUCKETFS="+binary, "BUCKET="+bucket, "MNT="+mnt)
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("%v\n%s", err, out)
	}
	sock.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 8192)
	for {
		n, err := sock.Read(buf)
		if err != nil {
			t.Fatalf("no 'mounted' line reached syslog: %v", err)
		}
		if msg := string(buf[:n]); strings.Contains(msg, "bucketfs") && strings.Contains(msg, "msg=mounted") {
			if strings.Contains(msg, "time=") {
				t.Errorf("syslog line carries its own time: %s", msg)
			}
			return
		}
	}
}
