package fs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend/memory"
)

// modelOps is how many random operations each model test runs:
// $BUCKETFS_MODEL_OPS (make stress sets 100,000), else a short run for
// make test.
func modelOps() int {
	if n, err := strconv.Atoi(os.Getenv("BUCKETFS_MODEL_OPS")); err == nil && n > 0 {
		return n
	}
	return 400
}

// modelSeed is $BUCKETFS_MODEL_SEED, which replays a run, else a new one.
func modelSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("BUCKETFS_MODEL_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (BUCKETFS_MODEL_SEED=%d replays it)", seed, seed)
	return seed
}

// TestModelAgainstLocalDir runs random operations (create, write at random
// offsets, truncate, read, rename of files and directories, unlink, mkdir,
// rmdir, chmod, setxattr) on the mount and on a local directory side by
// side, the local one being the model: every result, errno, content,
// listing and mode must agree.
func TestModelAgainstLocalDir(t *testing.T) {
	ops, seed := modelOps(), modelSeed(t)
	mem := memory.New("b")
	mem.MinPartSize = 1 << 20
	mnt := mountMemory(t, mem, func(c *Config) {
		c.Logger = slog.New(slog.DiscardHandler) // quiet: thousands of operations
		smallParts(mem)(c)
	})
	m := newModel(seed, mnt, t.TempDir(), 3<<20)
	err := m.run(ops)
	if err != nil && os.Getenv("BUCKETFS_MODEL_DEBUG") != "" {
		for _, k := range modelNames {
			obj, err := mem.Head(t.Context(), k)
			st, serr := os.Stat(filepath.Join(mnt, k))
			mode := ""
			if serr == nil {
				mode = st.Mode().String()
			}
			t.Logf("%s: S3 mode %q %v; stat %s %v", k, obj.Metadata["mode"], err, mode, serr)
		}
	}
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	t.Logf("%d operations, errors by errno %v, mismatches 0", ops, m.errnos)
}

// TestModelConcurrent runs the model test in several goroutines at once on
// one mount, each in a directory of its own (checked against a model of
// its own): the caches, listings, the table of local files and the
// uploads are shared and raced; the answers must still be exact.
func TestModelConcurrent(t *testing.T) {
	const workers = 4
	ops, seed := modelOps(), modelSeed(t)
	mem := memory.New("b")
	mem.MinPartSize = 1 << 20
	mnt := mountMemory(t, mem, func(c *Config) {
		c.Logger = slog.New(slog.DiscardHandler)
		smallParts(mem)(c)
	})
	local := t.TempDir()
	models := make([]*model, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		dir := fmt.Sprintf("w%d", w)
		for _, root := range []string{mnt, local} {
			if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		models[w] = newModel(seed+uint64(w), filepath.Join(mnt, dir), filepath.Join(local, dir), 1<<20)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = models[w].run(max(ops/workers, 50))
		}()
	}
	wg.Wait()
	errnos := map[string]int{}
	for w, m := range models {
		if errs[w] != nil {
			t.Errorf("worker %d (seed %d): %v", w, seed+uint64(w), errs[w])
		}
		for k, v := range m.errnos {
			errnos[k] += v
		}
	}
	if got, want := tree(mnt), tree(local); !slices.Equal(got, want) {
		t.Errorf("the trees differ:\nmount %q\nmodel %q", got, want)
	}
	t.Logf("%d workers × %d operations, errors by errno %v", workers, max(ops/workers, 50), errnos)
}

type model struct {
	rng        *rand.Rand
	mnt, local string
	maxWrite   int // bytes
	errnos     map[string]int
	mismatches int
	last       string
	history    []string // the last operations, for a mismatch's report
}

func newModel(seed uint64, mnt, local string, maxWrite int) *model {
	return &model{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), mnt: mnt, local: local,
		maxWrite: maxWrite, errnos: map[string]int{}}
}

// run runs ops random operations, comparing the trees every 100, and
// returns the first mismatch with the operations that led to it.
func (m *model) run(ops int) error {
	for i := range ops {
		m.step(i)
		if m.mismatches > 0 {
			return fmt.Errorf("mismatch at operation %d:\n%s\nlast operations:\n%s", i, m.last, strings.Join(m.history, "\n"))
		}
		if i%100 == 99 || i == ops-1 {
			if got, want := tree(m.mnt), tree(m.local); !slices.Equal(got, want) {
				return fmt.Errorf("after operation %d the trees differ:\nmount %q\nmodel %q", i, got, want)
			}
		}
	}
	return nil
}

var modelNames = []string{"a", "b", "c", "d/x", "d/y", "e/f/g", "e/h"}

func (m *model) name() string {
	return modelNames[m.rng.IntN(len(modelNames))]
}

// both runs op on the mount and on the model and checks they agree.
func (m *model) both(desc string, op func(root string) (string, error)) {
	got, gotErr := op(m.mnt)
	want, wantErr := op(m.local)
	m.last = fmt.Sprintf("%s: mount %q, %v; model %q, %v", desc, got, gotErr, want, wantErr)
	m.history = append(m.history, m.last)
	if len(m.history) > 12 {
		m.history = m.history[1:]
	}
	if errnoOf(gotErr) != errnoOf(wantErr) || got != want {
		m.mismatches++
		return
	}
	if wantErr != nil {
		m.errnos[errnoOf(wantErr).Error()]++
	}
}

func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	if err == nil {
		return 0
	}
	if errors.As(err, &errno) {
		return errno
	}
	return syscall.EIO
}

func (m *model) step(i int) {
	p := m.name()
	switch m.rng.IntN(11) {
	case 0, 1: // write at a random offset, creating the file
		data := bytes.Repeat([]byte{byte('a' + i%26)}, 1+m.rng.IntN(m.maxWrite))
		off := int64(m.rng.IntN(1 << 20))
		if m.rng.IntN(3) == 0 {
			off = 0
		}
		m.both(fmt.Sprintf("write %s @%d +%d", p, off, len(data)), func(root string) (string, error) {
			os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
			f, err := os.OpenFile(filepath.Join(root, p), os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				return "", err
			}
			if _, err := f.WriteAt(data, off); err != nil {
				f.Close()
				return "", err
			}
			return "", f.Close()
		})
	case 2: // truncate
		size := int64(m.rng.IntN(2 << 20))
		m.both(fmt.Sprintf("truncate %s %d", p, size), func(root string) (string, error) {
			return "", os.Truncate(filepath.Join(root, p), size)
		})
	case 3, 4: // read
		m.both("read "+p, func(root string) (string, error) {
			b, err := os.ReadFile(filepath.Join(root, p))
			return fmt.Sprintf("%d:%x", len(b), hashOf(b)), err
		})
	case 5: // rename a file or a directory
		dst := m.name()
		if dir := filepath.Dir(p); dir != "." && m.rng.IntN(3) == 0 {
			// A directory (renaming the mount's root itself would cross
			// the mount point).
			p, dst = dir, filepath.Dir(dst)+"2"
		}
		m.both("rename "+p+" "+dst, func(root string) (string, error) {
			if filepath.Dir(dst) != "." {
				os.MkdirAll(filepath.Join(root, filepath.Dir(dst)), 0o755)
			}
			return "", os.Rename(filepath.Join(root, p), filepath.Join(root, dst))
		})
	case 6: // unlink
		m.both("rm "+p, func(root string) (string, error) { return "", os.Remove(filepath.Join(root, p)) })
	case 7: // mkdir, rmdir
		dir := filepath.Dir(p)
		if dir == "." {
			dir = p + "dir"
		}
		if m.rng.IntN(2) == 0 {
			m.both("mkdir "+dir, func(root string) (string, error) { return "", os.Mkdir(filepath.Join(root, dir), 0o755) })
		} else {
			m.both("rmdir "+dir, func(root string) (string, error) { return "", syscall.Rmdir(filepath.Join(root, dir)) })
		}
	case 8: // chmod
		mode := os.FileMode(0o600 + m.rng.IntN(2)*0o044)
		m.both(fmt.Sprintf("chmod %o %s", mode, p), func(root string) (string, error) {
			if err := os.Chmod(filepath.Join(root, p), mode); err != nil {
				return "", err
			}
			st, err := os.Stat(filepath.Join(root, p))
			if err != nil {
				return "", err
			}
			return st.Mode().String(), nil
		})
	case 9: // setxattr, read back
		v := strconv.Itoa(i)
		m.both("setfattr "+p, func(root string) (string, error) {
			if err := syscall.Setxattr(filepath.Join(root, p), "user.model", []byte(v), 0); err != nil {
				return "", err
			}
			buf := make([]byte, 64)
			n, err := syscall.Getxattr(filepath.Join(root, p), "user.model", buf)
			if err != nil {
				return "", err
			}
			return string(buf[:n]), nil
		})
	case 10: // stat
		m.both("stat "+p, func(root string) (string, error) {
			st, err := os.Stat(filepath.Join(root, p))
			if err != nil {
				return "", err
			}
			if st.IsDir() {
				return "dir", nil
			}
			return fmt.Sprintf("%d %s", st.Size(), st.Mode()), nil
		})
	}
}

func tree(root string) []string {
	var out []string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			out = append(out, rel+"/")
			return nil
		}
		b, _ := os.ReadFile(path)
		out = append(out, fmt.Sprintf("%s %d %x", rel, len(b), hashOf(b)))
		return nil
	})
	return out
}

func hashOf(b []byte) uint64 {
	var h uint64 = 14695981039346656037
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}
