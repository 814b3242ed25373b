package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

// benchRandom measures random 4 KiB reads of a 1 GiB object: fio with
// default options on bucketfs and on s3fs; 2,000 reads with the object
// above --fetch-whole against raw ranged GETs; and a re-read of the whole
// object kept by --cache-size after a remount.
func benchRandom(t *testing.T, srv *miniotest.Server, client *s3.Client, bucket, key string, size int64) [][]string {
	var rows [][]string
	row := func(cells ...string) { rows = append(rows, cells) }
	rawIOPS := rawRandomGets(t, client, bucket, key, size, 2000)

	if _, err := exec.LookPath("fio"); err != nil {
		t.Log("fio not installed (make bench-deps): fio rows skipped")
	} else {
		mountIOPS := func(mnt string) float64 { return fioRandRead(t, filepath.Join(mnt, key), size, 15*time.Second) }
		_, mnt, _ := mountForeground(t, srv, bucket)
		ours := mountIOPS(mnt)
		unmountForTest(t, mnt)
		theirs := "not installed"
		target := ">= s3fs"
		if mnt, ok := mountS3fs(t, srv, bucket); ok {
			s3fsIOPS := mountIOPS(mnt)
			theirs = fmt.Sprintf("s3fs %.0f IOPS", s3fsIOPS)
			target = fmt.Sprintf(">= s3fs (%.2fx of it)", ours/s3fsIOPS)
			unmountForTest(t, mnt)
		}
		row("fio 4 KiB randread, 1 GiB, 15 s, defaults", fmt.Sprintf("%.0f IOPS", ours), fmt.Sprintf("%.0f IOPS (ranged GETs)", rawIOPS),
			fmt.Sprintf("%.1fx", ours/rawIOPS), target+"; "+theirs)
	}

	addr := freeAddr(t)
	_, mnt, _ := mountForeground(t, srv, bucket, "--metrics-addr", addr, "--fetch-whole", strconv.FormatInt(size/2, 10))
	before := metric(t, addr, "get")
	start := time.Now()
	reads := goRandomReads(t, filepath.Join(mnt, key), size, 2000)
	ours := float64(reads) / time.Since(start).Seconds()
	gets := metric(t, addr, "get") - before
	unmountForTest(t, mnt)
	row("2,000 random 4 KiB reads above --fetch-whole", fmt.Sprintf("%.0f reads/s, %d GETs", ours, gets),
		fmt.Sprintf("%.0f GETs/s", rawIOPS), fmt.Sprintf("%.2fx", ours/rawIOPS), ">= 0.8x, ~1 GET per read")

	cacheDir := t.TempDir()
	readKept := func() (time.Duration, int64) {
		addr := freeAddr(t)
		cmd, mnt, _ := mountForeground(t, srv, bucket, "--metrics-addr", addr, "--cache-dir", cacheDir, "--cache-size", "2GiB")
		dropPageCache()
		start := time.Now()
		readFile(t, filepath.Join(mnt, key), io.Discard)
		d := time.Since(start)
		gets := metric(t, addr, "get")
		unmountForTest(t, mnt)
		waitGone(t, cmd.Process.Pid)
		return d, gets
	}
	readKept()
	again, gets := readKept()
	raw := rawParallelGet(t, client, bucket, key, size)
	row("re-read 1 GiB kept by --cache-size, remounted", fmt.Sprintf("%.0f MiB/s, %d GETs", float64(size>>20)/again.Seconds(), gets),
		fmt.Sprintf("%.0f MiB/s", float64(size>>20)/raw.Seconds()), fmt.Sprintf("%.2fx", raw.Seconds()/again.Seconds()), ">= 2x, 0 GETs")
	return rows
}

// rawRandomGets is the rate of n ranged GETs of 4 KiB at random offsets, one at a time.
func rawRandomGets(t *testing.T, c *s3.Client, bucket, key string, size int64, n int) float64 {
	rng := mrand.New(mrand.NewPCG(7, 7))
	start := time.Now()
	for range n {
		off := rng.Int64N(size/4096) * 4096
		out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
			Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+4095))})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, out.Body)
		out.Body.Close()
	}
	return float64(n) / time.Since(start).Seconds()
}

// goRandomReads reads n blocks of 4 KiB at random offsets of path through
// one descriptor and returns n.
func goRandomReads(t *testing.T, path string, size int64, n int) int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	randomReads(t, f, size, nil, n, 8)
	return n
}

// fioRandRead runs fio's 4 KiB random reads over path for d and returns its IOPS.
func fioRandRead(t *testing.T, path string, size int64, d time.Duration) float64 {
	out, err := exec.Command("fio", "--name=randread", "--filename="+path, "--readonly", "--rw=randread", "--bs=4k",
		"--size="+strconv.FormatInt(size, 10), "--ioengine=psync", "--time_based", "--runtime="+strconv.Itoa(int(d.Seconds())),
		"--output-format=json").Output()
	if err != nil {
		t.Fatalf("fio: %v\n%s", err, out)
	}
	var res struct {
		Jobs []struct {
			Read struct {
				IOPS float64 `json:"iops"`
			} `json:"read"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Jobs) == 0 {
		t.Fatalf("fio output: %v\n%s", err, out)
	}
	return res.Jobs[0].Read.IOPS
}

// mountS3fs mounts bucket with s3fs-fuse (Debian's package) in the
// foreground, its credentials in a private password file; ok is false when
// s3fs is not installed.
func mountS3fs(t *testing.T, srv *miniotest.Server, bucket string) (string, bool) {
	if _, err := exec.LookPath("s3fs"); err != nil {
		return "", false
	}
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte(srv.AccessKey+":"+srv.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	cmd := exec.Command("s3fs", bucket, mnt, "-f", "-o", "url="+srv.Endpoint, "-o", "use_path_request_style",
		"-o", "passwd_file="+passwd, "-o", "no_check_certificate")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unmountForTest(t, mnt)
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(20 * time.Second); !isMounted(mnt); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("s3fs did not mount in 20s")
		}
	}
	return mnt, true
}
