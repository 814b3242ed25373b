package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
)

// Every version the clients of TestModelTwoMountsAndAWriter write carries
// a header naming its length and the hash of its body, so any read, by
// anyone, can tell a complete version from a truncated or mixed one
// without knowing which version it should be.
const versionHeaderLen = len("v0123456789abcdef 00000000 0123456789abcdef\n")

func versionContent(id uint64, size int) []byte {
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(id*131 + uint64(i)*7 + uint64(i>>12))
	}
	return append(fmt.Appendf(nil, "v%016x %08d %016x\n", id, size, hashOf(body)), body...)
}

// checkVersion tells what is wrong with b, if it is not one complete
// version.
func checkVersion(b []byte) error {
	if len(b) < versionHeaderLen {
		return fmt.Errorf("%d bytes, shorter than a header", len(b))
	}
	fields := strings.Fields(string(b[:versionHeaderLen]))
	if len(fields) != 3 {
		return fmt.Errorf("no header: %q", b[:versionHeaderLen])
	}
	size, err := strconv.Atoi(fields[1])
	if err != nil {
		return fmt.Errorf("no header: %q", b[:versionHeaderLen])
	}
	body := b[versionHeaderLen:]
	if len(body) != size {
		what := ""
		if len(body) > size {
			what = "; past its end: " + describeBytes(body, size)
		}
		return fmt.Errorf("version %s: %d bytes of body, header says %d%s", fields[0], len(body), size, what)
	}
	if sum := fmt.Sprintf("%016x", hashOf(body)); sum != fields[2] {
		return fmt.Errorf("version %s: body mixed (hash %s, header says %s): %s", fields[0], sum, fields[2], whereMixed(fields[0], body))
	}
	return nil
}

// describeBytes says what body holds from offset from on: zeros, or the
// bytes of which version (the low byte of its number).
func describeBytes(body []byte, from int) string {
	if b := body[from:]; bytes.Count(b, []byte{0}) == len(b) {
		return fmt.Sprintf("zeros at %d..%d", from, len(body))
	}
	other := (uint64(body[from]) - uint64(from)*7 - uint64(from>>12)) * 187 % 256
	return fmt.Sprintf("bytes at %d..%d of a version ≡ %#x (mod 256)", from, len(body), other)
}

// whereMixed says where body departs from the version it claims to be,
// and what stands there: zeros, or bytes of which version (the low byte of
// its number, from the pattern versionContent writes).
func whereMixed(version string, body []byte) string {
	id, err := strconv.ParseUint(strings.TrimPrefix(version, "v"), 16, 64)
	if err != nil {
		return "unknown version"
	}
	want := versionContent(id, len(body))[versionHeaderLen:]
	for i := range body {
		if body[i] == want[i] {
			continue
		}
		end := i
		for end < len(body) && body[end] != want[end] {
			end++
		}
		if body[i] == 0 && body[end-1] == 0 {
			return fmt.Sprintf("zeros at %d..%d of %d", i, end, len(body))
		}
		// body[i] = id*131 + 7i + i>>12 (mod 256); 131 * 187 = 1 (mod 256).
		other := (uint64(body[i]) - uint64(i)*7 - uint64(i>>12)) * 187 % 256
		return fmt.Sprintf("bytes %d..%d of %d are of a version ≡ %#x (mod 256), not %#x", i, end, len(body), other, id%256)
	}
	return "no difference"
}

// clients is the shared state of the clients of one run.
type clients struct {
	names   []string
	nextID  atomic.Uint64
	maxSize int

	mu         sync.Mutex
	ops        int
	errnos     map[string]int
	mismatches []string
}

func (c *clients) newVersion(rng *rand.Rand) []byte {
	return versionContent(c.nextID.Add(1), rng.IntN(c.maxSize))
}

// result counts one operation's outcome: allowed lists the errno values
// the contract documents for it; anything else, and any content that is
// not one complete version, is a mismatch.
func (c *clients) result(desc string, err error, allowed ...syscall.Errno) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops++
	if err == nil {
		return
	}
	errno := errnoOf(err)
	if !errors.As(err, new(syscall.Errno)) && !errors.Is(err, backend.ErrNotFound) {
		errno = 0 // not an errno: a content check failed
	}
	for _, a := range allowed {
		if errno == a {
			c.errnos[errno.Error()]++
			return
		}
	}
	c.mismatches = append(c.mismatches, fmt.Sprintf("%s: %v", desc, err))
}

func (c *clients) read(desc string, b []byte, err error) {
	if err == nil {
		err = checkVersion(b)
	}
	c.result(desc, err, syscall.ENOENT, syscall.ESTALE)
}

// TestModelTwoMountsAndAWriter races two mounts of one bucket and a client
// writing the bucket directly, on a few shared names, with short cache
// lifetimes so each sees the others' changes. Nobody may ever read a
// truncated or mixed version, through either mount or from S3; a lost
// race must surface as a documented errno (ESTALE for an overwrite,
// EEXIST for a create, ENOENT for a name that went); and at the end every
// object in the bucket is one complete version.
func TestModelTwoMountsAndAWriter(t *testing.T) {
	ops, seed := modelOps(), modelSeed(t)
	mem := memory.New("b")
	mem.MinPartSize = 1 << 20
	quick := func(c *Config) {
		c.Logger = slog.New(slog.DiscardHandler)
		smallParts(mem)(c)
		c.StatTTL, c.NegativeTTL = 20*time.Millisecond, 20*time.Millisecond
	}
	mntA, mntB := mountMemory(t, mem, quick), mountMemory(t, mem, quick)
	c := &clients{names: []string{"a", "b", "c", "d/x"}, maxSize: 3 << 19, errnos: map[string]int{}}
	for _, root := range []string{mntA, mntB} {
		os.Mkdir(filepath.Join(root, "d"), 0o755) // the other mount may have made it
	}

	workers := map[string]func(rng *rand.Rand, i int){
		// A writes a temporary name and renames it over the target, as
		// rsync and editors do; it also changes modes and attributes and
		// removes names.
		"mount A writer": func(rng *rand.Rand, i int) {
			name := c.names[rng.IntN(len(c.names))]
			p := filepath.Join(mntA, name)
			switch rng.IntN(5) {
			case 0, 1:
				tmp := filepath.Join(filepath.Dir(p), fmt.Sprintf(".tmp-%d", i))
				err := os.WriteFile(tmp, c.newVersion(rng), 0o644)
				c.result("A write "+tmp, err)
				if err == nil {
					c.result("A rename over "+name, os.Rename(tmp, p))
				}
			case 2:
				c.result("A chmod "+name, os.Chmod(p, os.FileMode(0o600+rng.IntN(2)*0o044)), syscall.ENOENT, syscall.ESTALE)
			case 3:
				c.result("A setfattr "+name, syscall.Setxattr(p, "user.model", []byte(strconv.Itoa(i)), 0), syscall.ENOENT, syscall.ESTALE)
			case 4:
				c.result("A rm "+name, os.Remove(p), syscall.ENOENT)
			}
		},
		"mount A reader": func(rng *rand.Rand, i int) {
			name := c.names[rng.IntN(len(c.names))]
			b, err := os.ReadFile(filepath.Join(mntA, name))
			c.read("A read "+name, b, err)
			_, err = os.ReadDir(mntA)
			c.result("A ls", err)
		},
		// B overwrites in place (O_TRUNC) and reads: its overwrites are
		// the ones that lose to the other clients.
		"mount B": func(rng *rand.Rand, i int) {
			name := c.names[rng.IntN(len(c.names))]
			p := filepath.Join(mntB, name)
			if rng.IntN(2) == 0 {
				b, err := os.ReadFile(p)
				c.read("B read "+name, b, err)
				return
			}
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				c.result("B open "+name, err, syscall.ESTALE)
				return
			}
			_, err = f.Write(c.newVersion(rng))
			c.result("B write "+name, err)
			c.result("B close "+name, f.Close(), syscall.ESTALE, syscall.EEXIST)
		},
		// The other client writes whole versions and deletes, straight to
		// S3, and reads what S3 has.
		"S3 client": func(rng *rand.Rand, i int) {
			name := c.names[rng.IntN(len(c.names))]
			ctx := context.Background()
			switch rng.IntN(3) {
			case 0:
				v := c.newVersion(rng)
				_, err := mem.Put(ctx, backend.PutInput{Key: name, Body: bytes.NewReader(v), Size: int64(len(v))})
				c.result("S3 put "+name, err)
			case 1:
				c.result("S3 delete "+name, mem.Delete(ctx, name), syscall.ENOENT)
			case 2:
				b, err := memGet(mem, name)
				c.read("S3 get "+name, b, err)
			}
		},
	}
	var wg sync.WaitGroup
	w := uint64(0)
	for _, run := range workers {
		rng := rand.New(rand.NewPCG(seed+w, w))
		w++
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range max(ops/len(workers), 50) {
				run(rng, i)
			}
		}()
	}
	wg.Wait()

	for _, key := range mem.Keys() {
		if strings.HasSuffix(key, "/") {
			continue
		}
		b, err := memGet(mem, key)
		c.read("final "+key, b, err)
	}
	t.Logf("%d operations by 4 clients, errors by errno %v, mismatches %d", c.ops, c.errnos, len(c.mismatches))
	for i, m := range c.mismatches {
		if i == 20 {
			t.Errorf("… %d more", len(c.mismatches)-i)
			break
		}
		t.Errorf("mismatch: %s", m)
	}
}

func memGet(mem *memory.Bucket, key string) ([]byte, error) {
	body, _, err := mem.Get(context.Background(), backend.GetInput{Key: key, Length: -1})
	if errors.Is(err, backend.ErrNotFound) {
		return nil, syscall.ENOENT
	}
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(body)
	return buf.Bytes(), err
}
