package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"flag"
	"fmt"
	"io"
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
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

// compareSizes are the sizes of TestCompare's workloads.
type compareSizes struct {
	ttfb, seq, par                int64 // bytes: first-byte object, sequential read, each parallel reader's
	dir, many, small, plain       int   // files: ls -l, ls -l cold, cp -r and rm -rf, versitygw ls -l
	walkDirs, walkSubs, walkFiles int   // find: directories, subdirectories in each, files in each of those
	fioTime                       time.Duration
	rawGets                       int // the raw side of the random reads
	runs, heavyRuns               int // runs of each system; heavyRuns for reads of whole objects and fio
}

var (
	fullSizes = compareSizes{ttfb: 100 << 20, seq: 1 << 30, par: 256 << 20, dir: 1000, many: 10000, small: 1000,
		plain: 10000, walkDirs: 10, walkSubs: 10, walkFiles: 20, fioTime: 15 * time.Second, rawGets: 2000, runs: 3, heavyRuns: 2}
	// quickSizes keep `make bench-quick` under 3 minutes on 2 cores.
	quickSizes = compareSizes{ttfb: 16 << 20, seq: 128 << 20, par: 32 << 20, dir: 200, many: 1000, small: 200,
		plain: 1000, walkDirs: 10, walkSubs: 10, walkFiles: 2, fioTime: 3 * time.Second, rawGets: 300, runs: 2, heavyRuns: 2}
)

// compare is what TestCompare's workloads share.
type compare struct {
	srv     *miniotest.Server
	proxy   *miniotest.FaultProxy
	raw     *s3.Client // the raw SDK, through the counting proxy
	direct  *s3.Client // for seeding and checks, not counted
	bucket  string
	size    compareSizes
	systems []*system
	seeded  map[string]bool
	sums    map[string][md5.Size]byte // of the random objects, by key
}

// TestCompare measures bucketfs (default options) against the raw SDK,
// s3fs and rclone on one MinIO in one run (make bench; make bench-quick
// with smaller sizes), and writes a table per workload, the raw numbers
// and a chart per workload to docs/bench. Like TestBench it is no
// pass/fail test of speed: it fails only when a system returns wrong data.
func TestCompare(t *testing.T) {
	if os.Getenv("BUCKETFS_BENCH") == "" {
		t.Skip("set BUCKETFS_BENCH=1 (make bench, make bench-quick)")
	}
	start := time.Now()
	quick := os.Getenv("BENCH_QUICK") != ""
	size := fullSizes
	if quick {
		size = quickSizes
	}
	// The counting proxy forwards through http.DefaultTransport, which
	// keeps 2 idle connections per host: against a mount's parallel
	// requests it would dial MinIO for most of them and fill the port
	// range with TIME_WAIT sockets.
	tr := http.DefaultTransport.(*http.Transport)
	idle := tr.MaxIdleConnsPerHost
	tr.MaxIdleConnsPerHost = 64
	t.Cleanup(func() { tr.MaxIdleConnsPerHost = idle })

	srv := miniotest.Start(t)
	proxy := miniotest.StartFaultProxy(t, srv.Endpoint)
	bucket := newBucket(t, srv, nil)
	c := &compare{srv: srv, proxy: proxy, raw: miniotest.NewClient(proxy.Endpoint, srv.AccessKey, srv.SecretKey),
		direct: srv.Client(), bucket: bucket, size: size, systems: systemsFor(srv, proxy, bucket),
		seeded: map[string]bool{}, sums: map[string][md5.Size]byte{}}
	for _, s := range c.systems {
		if s.skip != "" {
			t.Logf("%s skipped: %s", s.name, s.skip)
		}
	}

	goTest := goTestLine(quick)
	command := cmp.Or(os.Getenv("BENCH_COMMAND"), goTest)
	rep := newReport(quick, command, goTest)
	workloads := []struct {
		name string
		run  func(*testing.T) []*result
	}{
		{"ttfb", c.firstByte}, {"seq-read", c.seqRead}, {"parallel-read", c.parallelRead},
		{"ls-dir", c.listDir}, {"ls-many", c.listMany}, {"find", c.walk}, {"cp-rm", c.copyRemove},
		{"fio", c.randRead}, {"versitygw-ls", c.plainListing},
	}
	if os.Getenv("BENCH_LARGE") != "" {
		workloads = append(workloads, struct {
			name string
			run  func(*testing.T) []*result
		}{"ls-large", c.listLarge})
	}
	completed := 0
	for _, w := range workloads {
		t.Run(w.name, func(t *testing.T) {
			for _, res := range w.run(t) {
				rep.Results = append(rep.Results, res)
				fmt.Print("\n" + res.markdown())
			}
			completed++
		})
	}
	rep.Seconds = time.Since(start).Seconds()
	dir := os.Getenv("BENCH_OUT")
	switch {
	case dir != "":
	case completed < len(workloads):
		t.Log("not every workload ran to its end: nothing written (set BENCH_OUT=DIR to write them anyway)")
		return
	case quick:
		dir = filepath.Join("..", "..", "docs", "bench", "quick")
	default:
		dir = filepath.Join("..", "..", "docs", "bench")
	}
	if err := rep.write(dir); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("\nTestCompare wrote %s/results.md, results.json and %d charts in %.0f s\n", dir, len(rep.Results), rep.Seconds)
}

// goTestLine is the go test command this run amounts to.
func goTestLine(quick bool) string {
	env := "BUCKETFS_BENCH=1 "
	if quick {
		env += "BENCH_QUICK=1 "
	}
	return fmt.Sprintf("%sgo test -count=1 -run '%s' -v ./cmd/bucketfs", env, flag.Lookup("test.run").Value)
}

// seed runs f the first time name is asked for: the objects of a
// workload, stored with the uncounted client.
func (c *compare) seed(name string, f func()) {
	if !c.seeded[name] {
		f()
		c.seeded[name] = true
	}
}

// random stores size pseudo-random bytes at key once.
func (c *compare) random(t *testing.T, key string, size int64) {
	c.seed(key, func() { c.sums[key] = uploadRandom(t, c.direct, c.bucket, key, size) })
}

// directRange reads n bytes of key at off with the uncounted client.
func (c *compare) directRange(t *testing.T, key string, off, n int64) []byte {
	out, err := c.direct.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &c.bucket, Key: &key,
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkSum hashes path and compares it with the stored object's MD5.
func (c *compare) checkSum(r *trial, path, key string) {
	h := md5.New()
	readFile(r.t, path, h)
	if [md5.Size]byte(h.Sum(nil)) != c.sums[key] {
		r.fail("%s: the mount returned different bytes", key)
	}
}

func sizeName(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

func (c *compare) firstByte(t *testing.T) []*result {
	key := "ttfb/" + strings.ReplaceAll(sizeName(c.size.ttfb), " ", "")
	c.random(t, key, c.size.ttfb)
	want := c.directRange(t, key, 0, 1)
	res := &result{ID: "ttfb", Reads: true, Title: fmt.Sprintf("Time to first byte of a %s object, fresh mount (open + read 1 byte)", sizeName(c.size.ttfb))}
	got := make([]byte, 1)
	raw := func(r *trial) time.Duration {
		start := time.Now()
		out, err := c.raw.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &c.bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		if _, err := io.ReadFull(out.Body, got); err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		if got[0] != want[0] {
			r.fail("first byte %#x, want %#x", got[0], want[0])
		}
		return d
	}
	mounted := func(r *trial) time.Duration {
		start := time.Now()
		f, err := os.Open(filepath.Join(r.dir, key))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := io.ReadFull(f, got); err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		if got[0] != want[0] {
			r.fail("first byte %#x, want %#x", got[0], want[0])
		}
		return d
	}
	measure(t, res, c.size.runs, entries(c.systems, raw, mounted)...)
	res.Notes = append(res.Notes, "Requests include what a mount's read-ahead started before the file was closed.")
	return []*result{res}
}

// ddRead reads each path to /dev/null with dd, 1 MiB at a time, all at
// once, and returns the CPU time the dd processes used.
func ddRead(t *testing.T, paths ...string) time.Duration {
	t.Helper()
	cmds := make([]*exec.Cmd, len(paths))
	errs := make([]bytes.Buffer, len(paths))
	for i, p := range paths {
		cmds[i] = exec.Command("dd", "if="+p, "of=/dev/null", "bs=1M", "status=none")
		cmds[i].Stderr = &errs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	var cpu time.Duration
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("dd if=%s: %v\n%s", paths[i], err, errs[i].String())
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return cpu
}

const bigKey = "big/object"

func (c *compare) seqRead(t *testing.T) []*result {
	c.random(t, bigKey, c.size.seq)
	res := &result{ID: "seq-read", Title: fmt.Sprintf("Cold sequential read of %s", sizeName(c.size.seq)),
		Unit: "MiB/s", Bytes: c.size.seq, Reads: true}
	gib := float64(c.size.seq) / (1 << 30)
	perGiB := func(d time.Duration) float64 { return d.Seconds() / gib }
	raw := func(r *trial) time.Duration {
		server, self := cpuTime(c.srv.PID), rusageTime(syscall.RUSAGE_SELF)
		d := rawParallelGet(t, c.raw, c.bucket, bigKey, c.size.seq)
		r.extra["reader_cpu_s_per_gib"] = perGiB(rusageTime(syscall.RUSAGE_SELF) - self)
		r.extra["minio_cpu_s_per_gib"] = perGiB(cpuTime(c.srv.PID) - server)
		return d
	}
	verified := map[string]bool{}
	mounted := func(r *trial) time.Duration {
		path := filepath.Join(r.dir, bigKey)
		server, daemon, self := cpuTime(c.srv.PID), cpuTime(r.pid), rusageTime(syscall.RUSAGE_SELF)
		start := time.Now()
		reader := ddRead(t, path)
		d := time.Since(start)
		r.extra["daemon_cpu_s_per_gib"] = perGiB(cpuTime(r.pid) - daemon)
		r.extra["reader_cpu_s_per_gib"] = perGiB(reader)
		r.extra["proxy_cpu_s_per_gib"] = perGiB(rusageTime(syscall.RUSAGE_SELF) - self)
		r.extra["minio_cpu_s_per_gib"] = perGiB(cpuTime(c.srv.PID) - server)
		if !verified[r.sys.name] {
			verified[r.sys.name] = true
			r.check = func() { c.checkSum(r, path, bigKey) }
		}
		return d
	}
	measure(t, res, c.size.heavyRuns, entries(c.systems, raw, mounted)...)
	res.noteEach(func(name string, s sample) string {
		e := s.Extra
		if _, ok := e["daemon_cpu_s_per_gib"]; !ok {
			return fmt.Sprintf("CPU s/GiB: reader (SDK client and proxy, one process) %.2f, MinIO %.2f",
				e["reader_cpu_s_per_gib"], e["minio_cpu_s_per_gib"])
		}
		return fmt.Sprintf("CPU s/GiB: daemon %.2f, reader (dd) %.2f, proxy %.2f, MinIO %.2f",
			e["daemon_cpu_s_per_gib"], e["reader_cpu_s_per_gib"], e["proxy_cpu_s_per_gib"], e["minio_cpu_s_per_gib"])
	})
	res.Notes = append(res.Notes, "Raw: 8 MiB ranged GETs, 8 at a time (rawParallelGet). Mounts: `dd bs=1M` to /dev/null. "+
		"The counting proxy runs in the test process, so for the raw SDK its CPU is inside the reader's.")
	return []*result{res}
}

func (c *compare) parallelRead(t *testing.T) []*result {
	var keys, paths []string
	for i := range 4 {
		keys = append(keys, fmt.Sprintf("par/%d", i))
		c.random(t, keys[i], c.size.par)
	}
	res := &result{ID: "parallel-read", Title: fmt.Sprintf("4 parallel readers of 4 different %s objects, aggregate", sizeName(c.size.par)),
		Unit: "MiB/s", Bytes: 4 * c.size.par, Reads: true}
	raw := func(r *trial) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for _, k := range keys {
			// On an error rawParallelGet fails the test from this
			// goroutine, which then ends; Wait still returns.
			wg.Go(func() { rawParallelGet(t, c.raw, c.bucket, k, c.size.par) })
		}
		wg.Wait()
		return time.Since(start)
	}
	verified := map[string]bool{}
	mounted := func(r *trial) time.Duration {
		paths = paths[:0]
		for _, k := range keys {
			paths = append(paths, filepath.Join(r.dir, k))
		}
		start := time.Now()
		ddRead(t, paths...)
		d := time.Since(start)
		if !verified[r.sys.name] {
			verified[r.sys.name] = true
			r.check = func() { c.checkSum(r, paths[3], keys[3]) }
		}
		return d
	}
	measure(t, res, c.size.heavyRuns, entries(c.systems, raw, mounted)...)
	res.Notes = append(res.Notes, "Raw: 4 readers, each with 8 MiB ranged GETs 8 at a time. Mounts: 4 `dd bs=1M` at once.")
	return []*result{res}
}

// lines times a shell command on the mount and checks that it printed
// want lines.
func lines(command string, want int) func(*trial) time.Duration {
	return func(r *trial) time.Duration {
		start := time.Now()
		out := sh(r.t, r.dir, command+" | wc -l")
		d := time.Since(start)
		if got := strings.TrimSpace(out); got != strconv.Itoa(want) {
			r.fail("%s printed %s lines, want %d", command, got, want)
		}
		return d
	}
}

// listing measures ls -l of a directory of n files against a raw
// ListObjectsV2 of its prefix.
func (c *compare) listing(t *testing.T, id, title, dir string, n int, extra ...*system) []*result {
	c.seed(dir, func() { putMany(t, c.direct, c.bucket, dir+"/", n, 1024) })
	res := &result{ID: id, Title: title}
	raw := func(r *trial) time.Duration { return rawListAll(t, c.raw, c.bucket, dir+"/") }
	// Extra rows after the default bucketfs one (systemsFor's order).
	systems := append(append([]*system{c.systems[0], c.systems[1]}, extra...), c.systems[2:]...)
	measure(t, res, c.size.runs, entries(systems, raw, lines("ls -l "+dir, n+1))...)
	return []*result{res}
}

func (c *compare) listDir(t *testing.T) []*result {
	return c.listing(t, "ls-dir", fmt.Sprintf("`ls -l` of a directory of %s files (raw: ListObjectsV2)", thousands(c.size.dir)), "dir", c.size.dir)
}

// listMany also runs bucketfs with MinIO's listing extension switched off
// (--provider ceph), as on the servers that lack it, beside versitygw.
func (c *compare) listMany(t *testing.T) []*result {
	noExtension := bucketfsSystem("bucketfs --provider ceph (no listing headers)", c.srv, c.proxy, c.bucket, "--provider", "ceph")
	return c.listing(t, "ls-many", fmt.Sprintf("`ls -l` cold of %s objects (raw: ListObjectsV2)", thousands(c.size.many)), "many", c.size.many, noExtension)
}

// listLarge measures ls -l of 10 times the ls-many objects (BENCH_LARGE=1),
// bucketfs against the raw listing only: the question is how time and
// memory grow with a directory's size. Its note sets the time against 10
// times the ls-many time of the same run.
func (c *compare) listLarge(t *testing.T) []*result {
	n := 10 * c.size.many
	var systems []*system
	for _, s := range c.systems {
		if s.mount == nil || s.name == "bucketfs" {
			systems = append(systems, s)
		}
	}
	c.seed("many", func() { putMany(t, c.direct, c.bucket, "many/", c.size.many, 1024) })
	c.seed("large", func() { putMany(t, c.direct, c.bucket, "large/", n, 1024) })
	small := &result{ID: "ls-large-base", Title: fmt.Sprintf("`ls -l` cold of %s objects, the base of the next row", thousands(c.size.many))}
	res := &result{ID: "ls-large", Title: fmt.Sprintf("`ls -l` cold of %s objects (BENCH_LARGE; raw: ListObjectsV2)", thousands(n))}
	raw := func(dir string) func(r *trial) time.Duration {
		return func(r *trial) time.Duration { return rawListAll(t, c.raw, c.bucket, dir+"/") }
	}
	measure(t, small, c.size.runs, entries(systems, raw("many"), lines("ls -l many", c.size.many+1))...)
	measure(t, res, c.size.runs, entries(systems, raw("large"), lines("ls -l large", n+1))...)
	base, _ := small.bestOf("bucketfs")
	if large, _ := res.bestOf("bucketfs"); base.Seconds > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("bucketfs: %.2f s for %s objects = %.2f× ten times its %.2f s for %s (target ≤ 1.2×); peak RSS %d MiB",
			large.Seconds, thousands(n), large.Seconds/(10*base.Seconds), base.Seconds, thousands(c.size.many), large.PeakRSS>>20))
	}
	return []*result{small, res}
}

func (c *compare) walk(t *testing.T) []*result {
	c.seed("walk", func() { c.putWalk(t, c.direct, c.bucket) })
	res := &result{ID: "find", Title: c.walkTitle("")}
	return []*result{c.measureWalk(t, res, c.raw, c.bucket, c.systems)}
}

// putWalk stores the tree the find workloads walk.
func (c *compare) putWalk(t *testing.T, client *s3.Client, bucket string) {
	s := c.size
	for d := range s.walkDirs {
		for e := range s.walkSubs {
			putMany(t, client, bucket, fmt.Sprintf("walk/d%d/e%d/", d, e), s.walkFiles, 100)
		}
	}
}

func (c *compare) walkTitle(server string) string {
	s := c.size
	return fmt.Sprintf("%s`find` over %s files in %d directories, cold (raw: flat ListObjectsV2)",
		server, thousands(s.walkDirs*s.walkSubs*s.walkFiles), s.walkDirs*(1+s.walkSubs))
}

// measureWalk times find over the tree against a raw flat listing.
func (c *compare) measureWalk(t *testing.T, res *result, rawClient *s3.Client, bucket string, systems []*system) *result {
	s := c.size
	dirs, files := s.walkDirs*(1+s.walkSubs), s.walkDirs*s.walkSubs*s.walkFiles
	raw := func(r *trial) time.Duration { return rawListFlat(t, rawClient, bucket, "walk/") }
	measure(t, res, s.runs, entries(systems, raw, lines("find walk", 1+dirs+files))...)
	return res
}

func (c *compare) randRead(t *testing.T) []*result {
	c.random(t, bigKey, c.size.seq)
	s := c.size
	res := &result{ID: "fio-randread", Unit: "IOPS", Reads: true,
		Title: fmt.Sprintf("fio 4 KiB random reads over a %s object for %.0f s, default options", sizeName(s.seq), s.fioTime.Seconds())}
	if _, err := exec.LookPath("fio"); err != nil {
		t.Log("fio not installed (make bench-deps): the random-read workload is skipped")
		res.Notes = append(res.Notes, "Skipped: fio is not installed.")
		return []*result{res}
	}
	raw := func(r *trial) time.Duration {
		r.rate = rawRandomGets(t, c.raw, c.bucket, bigKey, s.seq, s.rawGets)
		return time.Duration(float64(s.rawGets) / r.rate * float64(time.Second))
	}
	mounted := func(r *trial) time.Duration {
		path := filepath.Join(r.dir, bigKey)
		r.rate = fioRandRead(t, path, s.seq, s.fioTime)
		r.check = func() {
			off := s.seq / 3 / 4096 * 4096
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got := make([]byte, 4096)
			if _, err := f.ReadAt(got, off); err != nil || !bytes.Equal(got, c.directRange(t, bigKey, off, 4096)) {
				r.fail("4 KiB at %d: %v, or different bytes", off, err)
			}
		}
		return s.fioTime
	}
	measure(t, res, s.heavyRuns, entries(c.systems, raw, mounted)...)
	res.Notes = append(res.Notes, fmt.Sprintf("Raw: %s ranged GETs of 4 KiB at random offsets, one at a time (rawRandomGets); "+
		"the time column is theirs. Mounts: fio psync, 1 job, for %.0f s (its time is fixed).", thousands(s.rawGets), s.fioTime.Seconds()))
	return []*result{res}
}

// plainListing measures ls -l of objects without POSIX headers, and find,
// on versitygw, whose listings carry no headers (as AWS's do not): bucketfs
// against a raw ListObjectsV2, a second counting proxy in front.
func (c *compare) plainListing(t *testing.T) []*result {
	n := c.size.plain
	vsrv := miniotest.StartVersity(t)
	vproxy := miniotest.StartFaultProxy(t, vsrv.Endpoint)
	bucket := newBucket(t, vsrv, nil)
	putMany(t, vsrv.Client(), bucket, "many/", n, 1024)
	c.putWalk(t, vsrv.Client(), bucket)
	client := miniotest.NewClient(vproxy.Endpoint, vsrv.AccessKey, vsrv.SecretKey)
	systems := []*system{{name: "raw SDK", proxy: vproxy, bucket: bucket}, bucketfsSystem("bucketfs", vsrv, vproxy, bucket)}
	res := &result{ID: "versitygw-ls", Title: fmt.Sprintf("versitygw: `ls -l` of %s plain objects (raw: ListObjectsV2)", thousands(n))}
	raw := func(r *trial) time.Duration { return rawListAll(t, client, bucket, "many/") }
	measure(t, res, c.size.runs, entries(systems, raw, lines("ls -l many", n+1))...)
	note := "Objects stored by the raw SDK, without POSIX headers; bucketfs with its default " +
		"`--posix-metadata auto`. Only bucketfs and the raw SDK are measured on versitygw."
	res.Notes = append(res.Notes, note)
	walk := &result{ID: "versitygw-find", Title: c.walkTitle("versitygw: "), Notes: []string{note}}
	return []*result{res, c.measureWalk(t, walk, client, bucket, systems)}
}
