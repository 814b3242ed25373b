package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

// The systems TestCompare measures side by side, the loop that times one
// run of one of them on a fresh mount, and the write workloads, whose
// rounds pair a copy with a removal. Every system reaches the server
// through the same counting proxy, so the requests of a run are the
// difference of the proxy's counters around it.

// system is one way to reach the bucket: the raw SDK (no mount) or a
// FUSE mount.
type system struct {
	name   string
	skip   string // why it is not measured; "" when it is
	proxy  *miniotest.FaultProxy
	bucket string
	mount  func(t *testing.T) mountPoint // nil for the raw SDK
}

type mountPoint struct {
	dir string
	pid int // of the process that serves the mount
}

// systemsFor returns the raw SDK, bucketfs with default options, s3fs and
// rclone, each reaching bucket of srv through proxy, and geesefs as not
// available.
func systemsFor(srv *miniotest.Server, proxy *miniotest.FaultProxy, bucket string) []*system {
	return []*system{
		{name: "raw SDK", proxy: proxy, bucket: bucket},
		bucketfsSystem("bucketfs", srv, proxy, bucket),
		s3fsSystem(srv, proxy, bucket),
		rcloneSystem(srv, proxy, bucket),
		{name: "geesefs", skip: "not available: not served by the Go module proxy here (403)"},
	}
}

// bucketfsSystem mounts the built binary with args after the defaults of
// the tests, its endpoint the proxy.
func bucketfsSystem(name string, srv *miniotest.Server, proxy *miniotest.FaultProxy, bucket string, args ...string) *system {
	return &system{name: name, proxy: proxy, bucket: bucket, mount: func(t *testing.T) mountPoint {
		// A private --cache-dir is a location, not a behaviour: it keeps
		// runs from sharing staged data and /var/cache/bucketfs, which
		// other tests on this machine use, untouched.
		cmd, mnt, _ := mountForeground(t, srv, bucket,
			append([]string{"--endpoint-url", proxy.Endpoint, "--cache-dir", t.TempDir()}, args...)...)
		return mountPoint{mnt, cmd.Process.Pid}
	}}
}

func s3fsSystem(srv *miniotest.Server, proxy *miniotest.FaultProxy, bucket string) *system {
	s := &system{name: "s3fs", proxy: proxy, bucket: bucket}
	if _, err := exec.LookPath("s3fs"); err != nil {
		s.skip = "not installed (make bench-deps)"
		return s
	}
	// mountS3fs needs only the endpoint and the keys.
	via := &miniotest.Server{Endpoint: proxy.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	s.mount = func(t *testing.T) mountPoint {
		mnt, _ := mountS3fs(t, via, bucket)
		return mountPoint{mnt, childPID(t, "s3fs", mnt)}
	}
	return s
}

func rcloneSystem(srv *miniotest.Server, proxy *miniotest.FaultProxy, bucket string) *system {
	s := &system{name: "rclone", proxy: proxy, bucket: bucket}
	if _, err := exec.LookPath("rclone"); err != nil {
		s.skip = "not installed (make bench-deps)"
		return s
	}
	s.mount = func(t *testing.T) mountPoint { return mountRclone(t, srv, proxy.Endpoint, bucket) }
	return s
}

// mountRclone runs `rclone mount --vfs-cache-mode writes` in the
// foreground, with an on-the-fly remote whose keys are in its environment,
// and returns once the mount is ready; it unmounts and stops rclone when
// the test ends.
func mountRclone(t *testing.T, srv *miniotest.Server, endpoint, bucket string) mountPoint {
	t.Helper()
	dir := t.TempDir()
	mnt, conf := filepath.Join(dir, "mnt"), filepath.Join(dir, "rclone.conf")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	// An empty private config file keeps ~/.config/rclone out of it.
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "rclone", "mount", "bench:"+bucket, mnt,
		"--vfs-cache-mode", "writes", "--cache-dir", filepath.Join(dir, "cache"))
	// Nothing of the AWS SDK's environment: rclone's SDK fails on this
	// machine's AWS_CA_BUNDLE ("HTTPClient's transport unsupported type").
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "RCLONE_")
	})
	cmd.Env = append(env, "RCLONE_CONFIG="+conf,
		"RCLONE_CONFIG_BENCH_TYPE=s3", "RCLONE_CONFIG_BENCH_PROVIDER=Minio",
		"RCLONE_CONFIG_BENCH_ENDPOINT="+endpoint, "RCLONE_CONFIG_BENCH_REGION=us-east-1",
		"RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="+srv.AccessKey, "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="+srv.SecretKey)
	// Cancelling asks rclone to stop; WaitDelay kills it if it does not.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	// A file, not a buffer: it can be read while rclone still writes.
	logPath := filepath.Join(dir, "rclone.log")
	logs, err := os.Create(logPath)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer logs.Close() // rclone has its own descriptor
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		unmountForTest(t, mnt)
		cancel()
		<-exited
	})
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(20 * time.Second)
	for !isMounted(mnt) {
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			t.Fatalf("rclone mount exited before mounting:\n%s", out)
		case <-timeout:
			out, _ := os.ReadFile(logPath)
			t.Fatalf("rclone: not mounted after 20s:\n%s", out)
		case <-tick.C:
		}
	}
	return mountPoint{mnt, cmd.Process.Pid}
}

// procStat reads a process's state, parent and command name from
// /proc/PID/stat; ok is false once it is gone.
func procStat(pid int) (state byte, ppid int, comm string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, "", false
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	fields := strings.Fields(string(b[end+1:]))
	if open < 0 || len(fields) < 2 {
		return 0, 0, "", false
	}
	ppid, _ = strconv.Atoi(fields[1])
	return fields[0][0], ppid, string(b[open+1 : end]), true
}

// childPID returns the PID of this process's child comm that was given arg
// (mountS3fs starts s3fs but does not say its PID).
func childPID(t *testing.T, comm, arg string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(d))
		if _, ppid, c, ok := procStat(pid); !ok || ppid != os.Getpid() || c != comm {
			continue
		}
		cmdline, _ := os.ReadFile(d + "/cmdline")
		if slices.Contains(strings.Split(string(cmdline), "\x00"), arg) {
			return pid
		}
	}
	t.Fatalf("no %s process of this test serves %s", comm, arg)
	return 0
}

// waitExited waits for a mount daemon to end after its unmount, so that
// it takes no CPU from the next run; a zombie (s3fs is reaped only when
// the test ends) has ended.
func waitExited(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if state, _, _, ok := procStat(pid); !ok || state == 'Z' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running 60s after its unmount", pid)
		}
	}
}

// trial is what a workload's function gets for one timed run.
type trial struct {
	t     *testing.T
	sys   *system
	dir   string  // the mount point; "" for the raw SDK
	pid   int     // of the mount daemon; 0 for the raw SDK
	rate  float64 // set by a workload whose tool measures it (fio's IOPS)
	extra map[string]float64
	// check, when set, runs after the run's requests and memory are
	// counted and before the unmount: untimed, uncounted verification.
	check  func()
	errors []string
}

// fail records that the system returned something wrong: the test fails,
// and the table says so next to the system's figures.
func (r *trial) fail(format string, args ...any) {
	r.t.Helper()
	msg := fmt.Sprintf(format, args...)
	r.t.Errorf("%s: %s", r.sys.name, msg)
	r.errors = append(r.errors, msg)
}

// sample is what one run of one system measured.
type sample struct {
	Seconds  float64            `json:"seconds"`
	Rate     float64            `json:"rate,omitempty"` // in the workload's unit
	Requests map[string]int     `json:"requests"`       // by operation, from the counting proxy
	PeakRSS  int64              `json:"peak_rss_bytes,omitempty"`
	Extra    map[string]float64 `json:"extra,omitempty"`
	Errors   []string           `json:"errors,omitempty"` // what the checks found wrong
}

// once times fn on a fresh mount of sys (the raw SDK has none), the page
// cache dropped first for a workload that reads data, and returns what it
// measured.
func once(t *testing.T, res *result, sys *system, fn func(*trial) time.Duration) sample {
	t.Helper()
	r := &trial{t: t, sys: sys, extra: map[string]float64{}}
	if sys.mount != nil {
		mp := sys.mount(t)
		r.dir, r.pid = mp.dir, mp.pid
	}
	if res.Reads {
		dropPageCache()
	}
	before := sys.proxy.Seen()
	d := fn(r)
	s := sample{Seconds: d.Seconds(), Rate: r.rate, Requests: map[string]int{}, Extra: r.extra}
	for op, n := range sys.proxy.Seen() {
		if n -= before[op]; n > 0 {
			s.Requests[op] = n
		}
	}
	if r.pid != 0 {
		s.PeakRSS = peakRSS(r.pid)
	}
	if r.check != nil {
		r.check()
	}
	if r.pid != 0 {
		unmountForTest(t, r.dir)
		waitExited(t, r.pid)
	}
	s.Errors = r.errors
	return s
}

// entry pairs a system with the function that runs a workload on it.
type entry struct {
	sys *system
	fn  func(*trial) time.Duration
}

// entries pairs the raw SDK with raw and every mount with mounted.
func entries(systems []*system, raw, mounted func(*trial) time.Duration) []entry {
	var out []entry
	for _, s := range systems {
		fn := mounted
		if s.mount == nil {
			fn = raw
		}
		out = append(out, entry{s, fn})
	}
	return out
}

// measure runs every entry n times, round by round so that drift in the
// machine's speed touches every system alike, and records the samples.
func measure(t *testing.T, res *result, n int, es ...entry) {
	t.Helper()
	for range n {
		for _, e := range es {
			if e.sys.skip == "" {
				res.add(e.sys, once(t, res, e.sys, e.fn))
			} else {
				res.add(e.sys, sample{})
			}
		}
	}
}

// The write workloads: cp -r of small files into the mount, then rm -rf
// of them on a fresh mount.

func (c *compare) copyRemove(t *testing.T) []*result {
	n := c.size.small
	src := t.TempDir()
	body := bytes.Repeat([]byte("bucketfs"), 512)
	name := func(i int) string { return fmt.Sprintf("f%04d", i) }
	for i := range n {
		if err := os.WriteFile(filepath.Join(src, name(i)), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cp := &result{ID: "cp", Title: fmt.Sprintf("`cp -r` of %s files of 4 KiB into the mount, until all are in S3 (raw: a PutObject loop)", thousands(n))}
	rm := &result{ID: "rm", Title: fmt.Sprintf("`rm -rf` of those %s files, until none is left in S3 (raw: a DeleteObject loop)", thousands(n))}
	writeBack := bucketfsSystem("bucketfs --write-back", c.srv, c.proxy, c.bucket, "--write-back")
	batch := &system{name: "raw SDK, DeleteObjects", proxy: c.proxy, bucket: c.bucket}
	// The write-back row after the default bucketfs one (systemsFor's order).
	systems := append([]*system{c.systems[0], c.systems[1], writeBack}, c.systems[2:]...)

	copyIn := func(prefix string) func(*trial) time.Duration {
		return func(r *trial) time.Duration {
			start := time.Now()
			if r.dir == "" {
				for i := range n {
					if _, err := c.raw.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &c.bucket,
						Key: aws.String(prefix + name(i)), Body: bytes.NewReader(body)}); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				sh(t, r.dir, fmt.Sprintf("cp -r '%s' '%s'", src, strings.TrimSuffix(prefix, "/")))
			}
			r.extra["returned_s"] = time.Since(start).Seconds()
			c.waitKeys(r, prefix, n)
			d := time.Since(start)
			r.check = func() {
				if got := mustGet(t, c.srv, c.bucket, prefix+name(n-1)); !bytes.Equal(got.body, body) {
					r.fail("%s%s holds %d different bytes", prefix, name(n-1), len(got.body))
				}
			}
			return d
		}
	}
	remove := func(prefix string) func(*trial) time.Duration {
		return func(r *trial) time.Duration {
			start := time.Now()
			switch {
			case r.sys == batch:
				keys := make([]string, n)
				for i := range keys {
					keys[i] = fmt.Sprintf("%sf%05d", prefix, i) // as putMany names them
				}
				c.deleteObjects(t, c.raw, keys)
			case r.dir == "":
				for i := range n {
					if _, err := c.raw.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &c.bucket,
						Key: aws.String(prefix + name(i))}); err != nil {
						t.Fatal(err)
					}
				}
			default:
				sh(t, r.dir, "rm -rf '"+strings.TrimSuffix(prefix, "/")+"'")
			}
			r.extra["returned_s"] = time.Since(start).Seconds()
			c.waitKeys(r, prefix, 0)
			return time.Since(start)
		}
	}
	for range c.size.runs {
		for _, sys := range systems {
			if sys.skip != "" {
				cp.add(sys, sample{})
				rm.add(sys, sample{})
				continue
			}
			prefix := "cp-" + strings.NewReplacer(" ", "", "-", "").Replace(sys.name) + "/"
			cp.add(sys, once(t, cp, sys, copyIn(prefix)))
			rm.add(sys, once(t, rm, sys, remove(prefix)))
			if sys.mount == nil {
				// Against the raw loop, the same files removed in batches.
				putMany(t, c.direct, c.bucket, "cp-batch/", n, len(body))
				rm.add(batch, once(t, rm, batch, remove("cp-batch/")))
			}
		}
	}
	returned := func(verb string) func(string, sample) string {
		return func(_ string, s sample) string {
			return fmt.Sprintf("%s returned after %s s", verb, num(s.Extra["returned_s"]))
		}
	}
	cp.noteEach(returned("cp"))
	rm.noteEach(returned("rm"))
	rm.Notes = append(rm.Notes, againstBatch(rm, writeBack, batch))
	cp.Notes = append(cp.Notes, "The time runs until a listing (uncounted, not through the proxy) shows every file in S3; "+
		"`--write-back` and rclone (`--vfs-cache-mode writes`, uploads 5 s after close by default) upload after cp returns.")
	return []*result{cp, rm}
}

// againstBatch compares rm -rf on the --write-back mount with raw batch
// deletes, which is what it does in the background: until rm returned,
// and until S3 agreed.
func againstBatch(rm *result, writeBack, batch *system) string {
	wb, ok1 := rm.bestOf(writeBack.name)
	raw, ok2 := rm.bestOf(batch.name)
	if !ok1 || !ok2 || raw.Seconds == 0 {
		return "`--write-back` against raw DeleteObjects: not measured."
	}
	return fmt.Sprintf("`--write-back` against raw DeleteObjects (target ≤ 1.5×): %.2f× until rm returned, %.2f× until S3 agreed.",
		wb.Extra["returned_s"]/raw.Seconds, wb.Seconds/raw.Seconds)
}

// waitKeys waits until S3 holds exactly n files (directory markers aside)
// under prefix, and none at all when n is 0; the listings do not go
// through the counting proxy.
func (c *compare) waitKeys(r *trial, prefix string, n int) {
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		keys := listKeys(r.t, c.srv, c.bucket, prefix)
		files := 0
		for _, k := range keys {
			if !strings.HasSuffix(k, "/") {
				files++
			}
		}
		if files == n && (n > 0 || len(keys) == 0) {
			return
		}
		if time.Now().After(deadline) {
			r.fail("after 2 minutes S3 holds %d keys under %s (%d files), want %d files", len(keys), prefix, files, n)
			return
		}
	}
}

// deleteObjects removes keys, 1,000 per DeleteObjects.
func (c *compare) deleteObjects(t *testing.T, client *s3.Client, keys []string) {
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 1000)]
		keys = keys[len(batch):]
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, k := range batch {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := client.DeleteObjects(context.Background(), &s3.DeleteObjectsInput{Bucket: &c.bucket,
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Errors) > 0 {
			t.Fatalf("DeleteObjects: %d errors, the first %s", len(out.Errors), aws.ToString(out.Errors[0].Message))
		}
	}
}
