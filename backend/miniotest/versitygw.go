package miniotest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// VersityVersion is the pinned versitygw version (the Makefile pins the
// same). versitygw is the second test server: strict where MinIO is
// lenient, and without MinIO's listing extension, so it answers listings
// as AWS does. It ignores SSE, storage classes and ACLs; tests of those
// skip it by name.
const VersityVersion = "v1.8.0"

// EnsureVersity returns the path of the versitygw binary: $BUCKETFS_VERSITYGW
// if set, else $HOME/.cache/bucketfs/bin/versitygw, installed when missing.
func EnsureVersity() (string, error) {
	return ensureTool("versitygw", "BUCKETFS_VERSITYGW", "github.com/versity/versitygw/cmd/versitygw@"+VersityVersion)
}

// StartVersity starts a versitygw server (posix backend) in a test's
// temporary folder and stops it when the test ends.
func StartVersity(t testing.TB) *Server {
	t.Helper()
	s, err := StartVersityServer(t.TempDir())
	return forTest(t, "versitygw", s, err)
}

// StartVersityServer starts a versitygw server on a free port with its
// data, log and keys in dir; the caller stops it.
func StartVersityServer(dir string) (*Server, error) {
	binary, err := EnsureVersity()
	if err != nil {
		return nil, fmt.Errorf("versitygw: %w", err)
	}
	s, err := newServer(dir, binary)
	if err != nil {
		return nil, err
	}
	s.versity = true
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Versity tells whether s is versitygw rather than MinIO.
func (s *Server) Versity() bool { return s.versity }

func (s *Server) startVersity() error {
	data, versions := filepath.Join(s.Dir, "data"), filepath.Join(s.Dir, "versions")
	for _, dir := range []string{data, versions} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("versitygw log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(s.binary, "--port", "127.0.0.1:"+strconv.Itoa(s.port), "posix", "--versioning-dir", versions, data)
	// Credentials go through the environment, never argv.
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	return s.run(cmd, s.waitVersity)
}

// waitVersity waits until the server answers a signed ListBuckets.
func (s *Server) waitVersity(exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("versitygw exited before it was ready; log tail:\n%s", s.logTail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := s.Client().ListBuckets(ctx, nil)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("versitygw not ready after %v; log tail:\n%s", readyTimeout, s.logTail())
}
