// Command s3dev runs a local MinIO for the demo and for trying bucketfs by
// hand:
//
//	s3dev demo -dir D    start MinIO, seed bucket "demo", mount it at D/mnt, show it
//	s3dev serve -dir D   run MinIO until SIGTERM (what demo starts in the background)
//	s3dev stop -dir D    unmount D/mnt and stop the server
//
// D/env holds the endpoint and credentials as shell exports (mode 0600), so
// `source D/env` lets other tools reach the server.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: s3dev demo|serve|stop -dir DIR")
		os.Exit(2)
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := flags.String("dir", ".demo", "state directory")
	flags.Parse(os.Args[2:])
	abs, err := filepath.Abs(*dir)
	if err == nil {
		switch os.Args[1] {
		case "demo":
			err = demo(abs)
		case "serve":
			err = serve(abs)
		case "stop":
			err = stop(abs)
		default:
			err = fmt.Errorf("unknown command %q", os.Args[1])
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3dev:", err)
		os.Exit(1)
	}
}

// serve runs MinIO in dir/data and writes dir/env, then waits for SIGTERM.
func serve(dir string) error {
	srv, err := miniotest.StartServer(filepath.Join(dir, "data"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	env := fmt.Sprintf("export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\nexport AWS_REGION=us-east-1\nexport S3_ENDPOINT=%s\n",
		srv.AccessKey, srv.SecretKey, srv.Endpoint)
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte(env), 0o600); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return nil
}

func stop(dir string) error {
	mnt := filepath.Join(dir, "mnt")
	if isMounted(mnt) {
		if err := exec.Command("umount", mnt).Run(); err != nil {
			exec.Command("umount", "-l", mnt).Run()
		}
	}
	pid, err := readPID(dir)
	if err != nil {
		return nil // nothing running
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	os.Remove(filepath.Join(dir, "s3dev.pid"))
	os.Remove(filepath.Join(dir, "env"))
	fmt.Println("stopped the demo server")
	return nil
}

func readPID(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "s3dev.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func isMounted(dir string) bool {
	b, _ := os.ReadFile("/proc/mounts")
	return bytes.Contains(b, []byte(" "+dir+" "))
}

// startServe runs `s3dev serve` detached and returns once dir/env exists.
func startServe(dir string) (map[string]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	os.Remove(filepath.Join(dir, "env"))
	logf, err := os.Create(filepath.Join(dir, "s3dev.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(self, "serve", "-dir", dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	os.WriteFile(filepath.Join(dir, "s3dev.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		if b, err := os.ReadFile(filepath.Join(dir, "env")); err == nil {
			return parseEnv(string(b)), nil
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "s3dev.log"))
			return nil, fmt.Errorf("server exited (%v): %s", err, log)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil, errors.New("server not ready after 60s")
}

func parseEnv(s string) map[string]string {
	env := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
			env[k] = v
		}
	}
	return env
}
