package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebugLogHoldsNoSecret: a full debug log of a mount that lists,
// reads, writes, renames, presigns and fails never holds the secret key,
// a session token or the signature of a presigned URL it handed out.
func TestDebugLogHoldsNoSecret(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{"d/f": {body: []byte("x")}})
	logFile := filepath.Join(t.TempDir(), "debug.log")
	const token = "session-token-never-logged"
	mnt := t.TempDir()
	args := append(connectArgs(srv), "--debug", "--log-file", logFile, bucket, mnt)
	if _, stderr, err := bucketfs(t, srv, []string{"AWS_SESSION_TOKEN=" + token}, args...); err != nil {
		// MinIO refuses the made-up token: the mount fails, after logging.
		if !strings.Contains(stderr, "bucketfs:") {
			t.Fatalf("mount: %v %s", err, stderr)
		}
	} else {
		t.Cleanup(func() { unmountForTest(t, mnt) })
	}
	mnt2 := mountBackground(t, srv, bucket, "--debug", "--log-file", logFile)
	out := sh(t, mnt2, "ls -l d && cat d/f && echo y > d/g && mv d/g d/h && getfattr --only-values -n user.s3.presigned_url d/f && "+
		"(cat d/missing 2>/dev/null; true)")
	_, signature, ok := strings.Cut(out, "X-Amz-Signature=")
	if !ok || len(signature) < 64 {
		t.Fatalf("no presigned URL printed: %q", out)
	}
	signature = signature[:64]
	unmountForTest(t, mnt2)
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) < 1000 {
		t.Fatalf("the debug log has %d bytes: the test shows nothing", len(log))
	}
	for name, secret := range map[string]string{"secret key": srv.SecretKey, "session token": token, "presigned signature": signature} {
		if strings.Contains(string(log), secret) {
			t.Errorf("the debug log contains the %s", name)
		}
	}
}
