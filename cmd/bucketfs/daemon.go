package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// The background mode re-executes the binary with daemonEnv set and a pipe
// as file descriptor 3; the child writes "ok" or the error that stopped it.
const daemonEnv = "BUCKETFS_DAEMON_CHILD"

func isDaemonChild() bool { return os.Getenv(daemonEnv) == "1" }

func startDaemon(opts Options) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// The child logs to --log-file when given; otherwise its output is lost
	// as a daemon's is, and --foreground is the way to see it.
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start background process: %w", err)
	}
	w.Close()
	line, _ := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case line == "ok":
		cmd.Process.Release()
		return nil
	case line != "":
		cmd.Wait()
		return errors.New(line)
	default:
		err := cmd.Wait()
		return fmt.Errorf("background process exited before the mount was ready (%v); run with --foreground to see why", err)
	}
}

// readyPipe reports the outcome of mounting to the waiting parent, once.
type readyPipe struct{ f *os.File }

func daemonReadyPipe() *readyPipe {
	if !isDaemonChild() {
		return &readyPipe{}
	}
	os.Unsetenv(daemonEnv)
	return &readyPipe{f: os.NewFile(3, "ready")}
}

func (p *readyPipe) report(err error) {
	if p.f == nil {
		return
	}
	if err != nil {
		fmt.Fprintln(p.f, err)
	} else {
		fmt.Fprintln(p.f, "ok")
	}
	p.f.Close()
	p.f = nil
}
