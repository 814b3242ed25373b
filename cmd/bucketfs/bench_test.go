package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"math/rand/v2"
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
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/sync/errgroup"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

// TestBench prints the figures of `make bench`: the same MinIO, one run,
// the mount side by side with the raw SDK. It is not a pass/fail test of
// speed; it fails only when the mount returns wrong bytes.
func TestBench(t *testing.T) {
	if os.Getenv("BUCKETFS_BENCH") == "" {
		t.Skip("set BUCKETFS_BENCH=1 (make bench)")
	}
	srv := miniotest.Start(t)
	bucket := newBucket(t, srv, nil)
	client := srv.Client()

	const bigSize = 1 << 30
	const smallCount = 10000
	seedMany := sync.OnceFunc(func() { putMany(t, client, bucket, "many/", smallCount, 1024) })
	seedBig := sync.OnceValue(func() [md5.Size]byte { return uploadRandom(t, client, bucket, "big/1GiB.bin", bigSize) })

	var rows [][]string
	row := func(cells ...string) { rows = append(rows, cells) }

	// Subtests, so that one figure can be measured alone:
	// go test -run 'TestBench/write' ./cmd/bucketfs
	t.Run("read", func(t *testing.T) {
		bigSum := seedBig()
		// Cold read of 1 GiB.
		rawRead := best(3, func() time.Duration { return rawParallelGet(t, client, bucket, "big/1GiB.bin", bigSize) })
		rss, verified := int64(0), false
		mountRead := best(3, func() time.Duration {
			cmd, mnt, _ := mountForeground(t, srv, bucket)
			dropPageCache()
			start := time.Now()
			readFile(t, filepath.Join(mnt, "big/1GiB.bin"), io.Discard)
			d := time.Since(start)
			if !verified {
				// Untimed: hashing 1 GiB costs more CPU than reading it.
				h := md5.New()
				readFile(t, filepath.Join(mnt, "big/1GiB.bin"), h)
				if [md5.Size]byte(h.Sum(nil)) != bigSum {
					t.Fatalf("the mount returned different bytes")
				}
				verified = true
			}
			rss = max(rss, peakRSS(cmd.Process.Pid))
			unmountForTest(t, mnt)
			return d
		})
		mibps := func(d time.Duration) float64 { return float64(bigSize) / (1 << 20) / d.Seconds() }
		row("read 1 GiB, cold", fmt.Sprintf("%.0f MiB/s (%.2fs)", mibps(mountRead), mountRead.Seconds()),
			fmt.Sprintf("%.0f MiB/s (%.2fs)", mibps(rawRead), rawRead.Seconds()),
			fmt.Sprintf("%.2fx", mibps(mountRead)/mibps(rawRead)), ">= 0.8x")
		row("mount peak RSS, reading", fmt.Sprintf("%d MiB", rss>>20), "", "", "<= 200 MiB")
	})

	t.Run("random", func(t *testing.T) {
		seedBig()
		rows = append(rows, benchRandom(t, srv, client, bucket, "big/1GiB.bin", bigSize)...)
	})

	t.Run("list", func(t *testing.T) {
		seedMany()
		// ls -l of 10,000 objects, on a fresh mount each time (cold caches).
		rawList := best(3, func() time.Duration { return rawListAll(t, client, bucket, "many/") })
		var heads, rss int64
		mountList := best(3, func() time.Duration {
			addr := freeAddr(t)
			cmd, mnt, _ := mountForeground(t, srv, bucket, "--metrics-addr", addr)
			before := metric(t, addr, "head")
			start := time.Now()
			out := sh(t, mnt, "ls -l many | wc -l")
			d := time.Since(start)
			if strings.TrimSpace(out) != strconv.Itoa(smallCount+1) {
				t.Fatalf("ls -l listed %s lines", out)
			}
			heads = metric(t, addr, "head") - before
			rss = max(rss, peakRSS(cmd.Process.Pid))
			unmountForTest(t, mnt)
			return d
		})
		rawMetaList := best(3, func() time.Duration { return rawListAll(t, client, bucket, "many/", withListMetadata) })
		row("ls -l 10,000 objects", fmt.Sprintf("%.3fs, %d HEAD", mountList.Seconds(), heads),
			fmt.Sprintf("%.3fs (ListObjectsV2)", rawList.Seconds()),
			fmt.Sprintf("%.2fx", mountList.Seconds()/rawList.Seconds()), "<= 1.5x, 0 HEAD")
		row("  the same, against a listing with headers", "", fmt.Sprintf("%.3fs (metadata=true)", rawMetaList.Seconds()),
			fmt.Sprintf("%.2fx", mountList.Seconds()/rawMetaList.Seconds()), "")
		row("mount peak RSS, listing", fmt.Sprintf("%d MiB", rss>>20), "", "", "<= 200 MiB")
	})

	t.Run("walk", func(t *testing.T) {
		rows = append(rows, benchWalk(t, srv, bucket)...)
	})
	t.Run("list-plain", func(t *testing.T) {
		rows = append(rows, benchPlainListing(t, smallCount)...)
	})
	t.Run("presign", func(t *testing.T) {
		seedMany()
		rows = append(rows, benchPresign(t, srv, bucket, smallCount)...)
	})
	t.Run("write", func(t *testing.T) {
		rows = append(rows, benchWrites(t, srv, bucket)...)
	})
	printTable(t, []string{"figure", "bucketfs", "raw SDK", "ratio", "target"}, rows)
}

// best runs f n times and returns its shortest time.
func best(n int, f func() time.Duration) time.Duration {
	var b time.Duration
	for i := range n {
		if d := f(); i == 0 || d < b {
			b = d
		}
	}
	return b
}

func printTable(t *testing.T, header []string, rows [][]string) {
	widths := make([]int, len(header))
	for _, r := range append([][]string{header}, rows...) {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for _, r := range append([][]string{header}, rows...) {
		for i, c := range r {
			fmt.Fprintf(&b, "%-*s  ", widths[i], c)
		}
		b.WriteString("\n")
	}
	fmt.Print("\n" + b.String() + "\n")
}

// uploadRandom stores size pseudo-random bytes with a raw multipart upload
// and returns their MD5.
func uploadRandom(t *testing.T, c *s3.Client, bucket, key string, size int64) [md5.Size]byte {
	t.Helper()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(data)
	rawMultipart(t, c, bucket, key, data, 64<<20, 8)
	return md5.Sum(data)
}

func putMany(t *testing.T, c *s3.Client, bucket, prefix string, n, size int) {
	t.Helper()
	body := bytes.Repeat([]byte("x"), size)
	var g errgroup.Group
	g.SetLimit(32)
	for i := range n {
		g.Go(func() error {
			_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket,
				Key: aws.String(fmt.Sprintf("%sf%05d", prefix, i)), Body: bytes.NewReader(body)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// rawParallelGet reads an object as a tuned SDK client would: 8 MiB ranges,
// 8 at a time.
func rawParallelGet(t *testing.T, c *s3.Client, bucket, key string, size int64) time.Duration {
	const chunk = 8 << 20
	start := time.Now()
	var g errgroup.Group
	g.SetLimit(8)
	for off := int64(0); off < size; off += chunk {
		g.Go(func() error {
			out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key,
				Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, min(off+chunk, size)-1))})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			_, err = io.Copy(io.Discard, out.Body)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func rawListAll(t *testing.T, c *s3.Client, bucket, prefix string, opts ...func(*s3.Options)) time.Duration {
	return rawList(t, c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix, Delimiter: aws.String("/")}, opts...)
}

// rawListFlat lists every key under prefix, at any depth, as a raw client
// that wants a whole subtree would.
func rawListFlat(t *testing.T, c *s3.Client, bucket, prefix string) time.Duration {
	return rawList(t, c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
}

func rawList(t *testing.T, c *s3.Client, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) time.Duration {
	start := time.Now()
	p := s3.NewListObjectsV2Paginator(c, in)
	for p.HasMorePages() {
		if _, err := p.NextPage(context.Background(), opts...); err != nil {
			t.Fatal(err)
		}
	}
	return time.Since(start)
}

// readFile copies a file to w as cat does, 1 MiB at a time.
func readFile(t *testing.T, path string, w io.Writer) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyBuffer(w, f, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
}

var dropOnce sync.Once

// dropPageCache empties the kernel's page cache so reads are cold; where
// the sandbox forbids it, a fresh mount has no cached pages anyway.
func dropPageCache() {
	exec.Command("sync").Run()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
		dropOnce.Do(func() { fmt.Println("note: cannot drop the page cache:", err) })
	}
}

// cpuTime is the CPU time (user and system) a process has used so far.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may hold spaces: utime and stime
	// are the 12th and 13th, in clock ticks (100 per second on Linux).
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// rusageTime is the CPU time of this process (RUSAGE_SELF) or of its
// waited-for descendants (RUSAGE_CHILDREN).
func rusageTime(who int) time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is a process's high-water resident set, in bytes.
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// metricOps are the S3 operations of each request class the tests count.
var metricOps = map[string][]string{
	"head": {"HeadObject"}, "list": {"ListObjectsV2"}, "get": {"GetObject"}, "put": {"PutObject"},
	"delete": {"DeleteObject", "DeleteObjects"}, "copy": {"CopyObject"},
	"upload": {"CreateMultipartUpload", "UploadPart", "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload"},
}

// metric sums bucketfs_s3_requests_total of a class of operations (head,
// list, get, put, delete, copy, upload) from the mount's /metrics.
func metric(t *testing.T, addr, class string) int64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	ops, ok := metricOps[class]
	if !ok {
		t.Fatalf("no request class %q", class)
	}
	var n int64
	for _, line := range strings.Split(string(body), "\n") {
		for _, op := range ops {
			if rest, ok := strings.CutPrefix(line, fmt.Sprintf("bucketfs_s3_requests_total{operation=%q,", op)); ok {
				_, v, _ := strings.Cut(rest, "} ")
				f, _ := strconv.ParseFloat(v, 64)
				n += int64(f)
			}
		}
	}
	return n
}

// withListMetadata asks MinIO to put each object's headers in the listing,
// as the mount does: the raw cost of the information `ls -l` shows.
func withListMetadata(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Build.Add(middleware.BuildMiddlewareFunc("listMetadata", func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				q := req.URL.Query()
				q.Set("metadata", "true")
				req.URL.RawQuery = q.Encode()
			}
			return next.HandleBuild(ctx, in)
		}), middleware.After)
	})
}

// benchPresign times `bucketfs presign -r` over the directory of small
// objects: on a fresh mount (the listing included) and again.
func benchPresign(t *testing.T, srv *miniotest.Server, bucket string, n int) [][]string {
	_, mnt, _ := mountForeground(t, srv, bucket)
	defer unmountForTest(t, mnt)
	var rates []string
	for range 2 {
		start := time.Now()
		out, stderr, err := bucketfs(t, srv, nil, "presign", "-r", filepath.Join(mnt, "many"))
		d := time.Since(start)
		if err != nil || strings.Count(out, "\n") != n {
			t.Fatalf("presign -r: %v %s", err, stderr)
		}
		rates = append(rates, fmt.Sprintf("%.0f/s", float64(n)/d.Seconds()))
	}
	return [][]string{{"presign -r 10,000 files (cold, warm)", strings.Join(rates, ", "), "", "", ">= 5,000/s"}}
}

// benchPlainListing measures ls -l of n objects without POSIX headers, as
// other tools write them, on versitygw, whose listings carry no headers
// (as AWS's do not): by default (--posix-metadata auto) and with always.
func benchPlainListing(t *testing.T, n int) [][]string {
	srv := miniotest.StartVersity(t)
	bucket := newBucket(t, srv, nil)
	client := srv.Client()
	putMany(t, client, bucket, "many/", n, 1024)
	rawList := best(3, func() time.Duration { return rawListAll(t, client, bucket, "many/") })
	var rows [][]string
	for _, policy := range []string{"auto", "always"} {
		var heads, lists int64
		mountList := best(2, func() time.Duration {
			addr := freeAddr(t)
			_, mnt, _ := mountForeground(t, srv, bucket, "--metrics-addr", addr, "--posix-metadata", policy)
			h0, l0 := metric(t, addr, "head"), metric(t, addr, "list")
			start := time.Now()
			out := sh(t, mnt, "ls -l many | wc -l")
			d := time.Since(start)
			if strings.TrimSpace(out) != strconv.Itoa(n+1) {
				t.Fatalf("ls -l listed %s lines", out)
			}
			heads, lists = metric(t, addr, "head")-h0, metric(t, addr, "list")-l0
			unmountForTest(t, mnt)
			return d
		})
		target := "<= 1.3x, <= 10 LIST + 16 HEAD"
		if policy == "always" {
			target = "(a HEAD per object)"
		}
		rows = append(rows, []string{fmt.Sprintf("ls -l %d plain objects, versitygw, --posix-metadata %s", n, policy),
			fmt.Sprintf("%.3fs, %d LIST, %d HEAD", mountList.Seconds(), lists, heads),
			fmt.Sprintf("%.3fs (ListObjectsV2)", rawList.Seconds()),
			fmt.Sprintf("%.2fx", mountList.Seconds()/rawList.Seconds()), target})
	}
	return rows
}

// benchWalk measures a cold find over 2,000 files in 110 directories (10
// with 10 subdirectories each, 20 files in each of those) against a raw
// flat listing of the same keys.
func benchWalk(t *testing.T, srv *miniotest.Server, bucket string) [][]string {
	client := srv.Client()
	for d := range 10 {
		for e := range 10 {
			putMany(t, client, bucket, fmt.Sprintf("walk/d%d/e%d/", d, e), 20, 100)
		}
	}
	rawWalk := best(3, func() time.Duration { return rawListFlat(t, client, bucket, "walk/") })
	var lists, heads int64
	mountWalk := best(3, func() time.Duration {
		addr := freeAddr(t)
		_, mnt, _ := mountForeground(t, srv, bucket, "--metrics-addr", addr)
		l0, h0 := metric(t, addr, "list"), metric(t, addr, "head")
		start := time.Now()
		out := sh(t, mnt, "find walk | wc -l")
		d := time.Since(start)
		if strings.TrimSpace(out) != "2111" {
			t.Fatalf("find printed %s lines, want 2111", out)
		}
		lists, heads = metric(t, addr, "list")-l0, metric(t, addr, "head")-h0
		unmountForTest(t, mnt)
		return d
	})
	return [][]string{{"find, 2,000 files in 110 directories, cold",
		fmt.Sprintf("%.3fs, %d LIST, %d HEAD", mountWalk.Seconds(), lists, heads),
		fmt.Sprintf("%.3fs (flat ListObjectsV2)", rawWalk.Seconds()),
		fmt.Sprintf("%.2fx", mountWalk.Seconds()/rawWalk.Seconds()), "<= 1.3x, <= 12 requests, 0 HEAD"}}
}
