package fs

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend/memory"
)

// putDir stores n small files dir/f00000... in mem.
func putDir(t *testing.T, mem *memory.Bucket, dir string, n int) {
	t.Helper()
	for i := range n {
		put(t, mem, fmt.Sprintf("%s/f%05d", dir, i), []byte("x"), nil, "")
	}
}

// TestDirectoryEntriesGoOutWhileListed: a directory of several pages that
// the cache can hold was listed whole before the kernel got any entry, so
// `ls -l` of 10,000 files waited for ten LISTs one after the other and
// only then did its work per entry (about a quarter of its time on
// versitygw, traced). The first page's entries now go out while the rest
// is listed, and the next page is asked for before the kernel has read
// the one before; the listing is still cached whole at the end.
func TestDirectoryEntriesGoOutWhileListed(t *testing.T) {
	for _, c := range []struct {
		policy      string
		listHeaders bool
		// The lookup's small first page with headers (MinIO, under auto)
		// makes one LIST more before the pages of a thousand.
		prefetched int32
	}{{"auto", false, 2}, {"auto", true, 3}, {"always", true, 2}} {
		t.Run(fmt.Sprintf("%s,listHeaders=%v", c.policy, c.listHeaders), func(t *testing.T) {
			mem := memory.New("b")
			mem.ListHeaders = c.listHeaders
			putDir(t, mem, "dir", 3000)
			mnt := mountMemory(t, mem, func(cfg *Config) { cfg.PosixMetadata = c.policy })
			release := make(chan struct{})
			var lists atomic.Int32
			asked := make(chan int32, 10)
			mem.SetFault(func(op, key string) error {
				if op != "list" || key != "dir/" {
					return nil
				}
				n := lists.Add(1)
				asked <- n
				if n > c.prefetched {
					select { // the last page waits until the test has entries
					case <-release:
					case <-time.After(5 * time.Second):
					}
				}
				return nil
			})
			defer mem.SetFault(nil)
			f, err := os.Open(filepath.Join(mnt, "dir"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got := make(chan error, 1)
			go func() {
				_, err := f.ReadDir(10)
				got <- err
			}()
			select {
			case err := <-got:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(2 * time.Second):
				close(release)
				<-got // before the deferred Close
				t.Fatalf("no entry of a 3,000-file directory came before its last page was listed")
			}
			// The second page was asked for before its entries were wanted.
			deadline := time.After(2 * time.Second)
			for seen := false; !seen; {
				select {
				case n := <-asked:
					seen = n >= c.prefetched
				case <-deadline:
					close(release)
					t.Fatalf("the next page was not asked for while the one before was read")
				}
			}
			close(release)
			names, err := f.ReadDir(-1)
			if err != nil || len(names) != 2990 {
				t.Fatalf("the rest of the directory: %d entries, %v; want 2,990", len(names), err)
			}
			before := mem.Requests("list") + mem.Requests("head")
			entries, err := os.ReadDir(filepath.Join(mnt, "dir"))
			if err != nil || len(entries) != 3000 {
				t.Fatalf("second listing: %d entries, %v", len(entries), err)
			}
			if after := mem.Requests("list") + mem.Requests("head"); after != before {
				t.Errorf("a second readdir sent %d requests; the listing should be cached whole", after-before)
			}
		})
	}
}
