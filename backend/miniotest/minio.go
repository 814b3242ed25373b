// Package miniotest runs a real MinIO server on 127.0.0.1 for integration
// tests, demos and benchmarks. The server is started as a child process with
// four data folders and random credentials, and is stopped by PID.
package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
)

// Version is the pinned MinIO module version (the Makefile pins the same).
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

const (
	readyTimeout = 30 * time.Second
	stopGrace    = 5 * time.Second
	region       = "us-east-1"
)

// Server is one MinIO process serving Dir on 127.0.0.1.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Dir       string
	PID       int // of the running process; changes on Restart

	binary string
	port   int
	// versity: the server is versitygw, not MinIO (see versitygw.go).
	versity bool

	// mu protects the fields below.
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

var installMu sync.Mutex

// EnsureBinary returns the path of the MinIO binary: $BUCKETFS_MINIO if set,
// else $HOME/.cache/bucketfs/bin/minio, which it installs with go install
// when missing (a cold build takes minutes).
func EnsureBinary() (string, error) {
	return ensureTool("minio", "BUCKETFS_MINIO", "github.com/minio/minio@"+Version)
}

// ensureTool returns the path of a server binary: $env if set, else
// $HOME/.cache/bucketfs/bin/name, installed from module when missing.
func ensureTool(name, env, module string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s binary from %s: %w", name, env, err)
		}
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("%s binary: %w", name, err)
	}
	bin := filepath.Join(home, ".cache", "bucketfs", "bin")
	path := filepath.Join(bin, name)
	installMu.Lock()
	defer installMu.Unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	cmd := exec.Command("go", "install", module)
	cmd.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", module, err, tail(out, 20))
	}
	return path, nil
}

// Start starts a server in a test's temporary folder and stops it when the
// test ends. It fails the test when MinIO cannot be started.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := StartServer(t.TempDir())
	return forTest(t, "minio", s, err)
}

// forTest fails t if the server did not start, and stops it (by PID) when
// t ends.
func forTest(t testing.TB, name string, s *Server, err error) *Server {
	t.Helper()
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop %s: %v", name, err)
		}
	})
	return s
}

// StartServer starts a server on a free port with its data, log and keys in
// dir. Credentials and the KMS key are kept in dir, so a server started
// again on the same dir serves the same data.
func StartServer(dir string) (*Server, error) {
	binary, err := EnsureBinary()
	if err != nil {
		return nil, err
	}
	s, err := newServer(dir, binary)
	if err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// newServer prepares a server of binary on a free port with its data, log
// and keys in dir.
func newServer(dir, binary string) (*Server, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("minio dir: %w", err)
	}
	accessKey, err := persistentSecret(filepath.Join(dir, "access-key"), func(b []byte) string {
		return "bfs" + hex.EncodeToString(b[:8])
	})
	if err != nil {
		return nil, err
	}
	secretKey, err := persistentSecret(filepath.Join(dir, "secret-key"), func(b []byte) string {
		return hex.EncodeToString(b[:20])
	})
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(port),
		AccessKey: accessKey,
		SecretKey: secretKey,
		Dir:       dir,
		binary:    binary,
		port:      port,
	}
	return s, nil
}

func (s *Server) start() error {
	if s.versity {
		return s.startVersity()
	}
	kmsKey, err := persistentSecret(filepath.Join(s.Dir, "kms-key"), func(b []byte) string {
		return "bucketfs-test:" + base64.StdEncoding.EncodeToString(b)
	})
	if err != nil {
		return err
	}
	consolePort, err := freePort()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("minio log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor

	cmd := exec.Command(s.binary, "server",
		"--address", "127.0.0.1:"+strconv.Itoa(s.port),
		"--console-address", "127.0.0.1:"+strconv.Itoa(consolePort),
		filepath.Join(s.Dir, "d{1...4}"))
	// Credentials go through the environment, never argv.
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
		"MINIO_KMS_SECRET_KEY="+kmsKey,
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	return s.run(cmd, s.waitReady)
}

// run starts cmd as the server's process and waits until ready says it
// serves; a server that never gets ready is stopped.
func (s *Server) run(cmd *exec.Cmd, ready func(exited <-chan struct{}) error) error {
	// Its own process group keeps terminal signals away from it; Pdeathsig
	// kills it if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", filepath.Base(s.binary), err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()

	s.mu.Lock()
	s.cmd, s.done, s.PID = cmd, done, cmd.Process.Pid
	s.mu.Unlock()

	if err := ready(done); err != nil {
		s.Stop()
		return err
	}
	return nil
}

// waitReady polls the cluster health endpoint: /minio/health/ready and /live
// answer 200 before the erasure set can serve requests.
func (s *Server) waitReady(exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	url := s.Endpoint + "/minio/health/cluster"
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("minio exited before it was ready; log tail:\n%s", s.logTail())
		default:
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("minio not ready after %v; log tail:\n%s", readyTimeout, s.logTail())
}

// Stop terminates the server (SIGTERM, then SIGKILL after a few seconds) and
// waits for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop minio pid %d: %w", cmd.Process.Pid, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(stopGrace):
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill minio pid %d: %w", cmd.Process.Pid, err)
	}
	<-done
	return nil
}

// Restart stops the server and starts it again on the same port and data, so
// tests can simulate a dead server coming back.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start()
}

// StartAgain starts a stopped server on the same port and data.
func (s *Server) StartAgain() error { return s.start() }

// Client returns a raw S3 client for the server, independent of the backend
// under test.
func (s *Server) Client() *s3.Client {
	return NewClient(s.Endpoint, s.AccessKey, s.SecretKey)
}

// NewClient returns a raw S3 client for a MinIO server: path-style, static
// credentials, region us-east-1, checksums only when required, SDK logging
// off.
func NewClient(endpoint, accessKey, secretKey string) *s3.Client {
	return s3.New(s3.Options{
		Region:                     region,
		BaseEndpoint:               aws.String(endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		Logger:                     logging.Nop{},
	})
}

// CreateBucket creates a bucket on the server.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("create bucket %q: %w", name, err)
	}
	return nil
}

// Env returns the environment a child process needs to reach the server with
// the standard AWS credential chain.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + region,
	}
}

func (s *Server) logPath() string { return filepath.Join(s.Dir, filepath.Base(s.binary)+".log") }

func (s *Server) logTail() string {
	data, err := os.ReadFile(s.logPath())
	if err != nil {
		return err.Error()
	}
	return tail(data, 30)
}

// tail returns the last n lines of out.
func tail(out []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(out, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// persistentSecret returns the secret stored in path, creating it from 32
// random bytes with format on first use.
func persistentSecret(path string, format func([]byte) string) (string, error) {
	if data, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(data)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	secret := format(b)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return secret, nil
}

// freePort asks the kernel for a free TCP port on 127.0.0.1. Another process
// could take it before MinIO binds it; that is rare enough for tests.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
