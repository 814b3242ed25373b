package cache

import (
	"bytes"
	"cmp"
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/bucketfs/bucketfs/backend"
)

// DataOptions shape a mount's data cache.
type DataOptions struct {
	// Keep is how many bytes of fetched data stay on disk after the last
	// reader of a version closes (--cache-size); 0 keeps nothing, so an
	// extent lives exactly as long as its readers.
	Keep int64
	// Whole is the largest object fetched whole in the background once it
	// is read at random (--fetch-whole); 0 never fetches whole.
	Whole  int64
	Logger *slog.Logger
}

// DataCache holds the extents of a mount: the local copies of the
// versions being read, and with Keep those read before, on disk under
// --cache-dir/data/ID. A copy is named by its bucket, key and ETag, so a
// changed object never serves the old bytes.
type DataCache struct {
	dir   string
	keep  int64
	whole int64
	log   *slog.Logger
	lock  *os.File // held while keep > 0: kept copies are this mount's alone

	// mu protects the fields below; it is taken before an Extent's mu.
	mu        sync.Mutex
	open      map[string]*Extent
	kept      *list.List               // of keptCopy, least recently used first
	keptByID  map[string]*list.Element // into kept
	keptBytes int64
	warned    bool
}

// keptCopy is a closed extent kept on disk.
type keptCopy struct {
	id   string
	held int64
}

const (
	dataSuffix = ".data"
	mapSuffix  = ".map"
	tmpSuffix  = ".tmp" // a map being written
	mapMagic   = "bucketfs extent 1\n"
)

// OpenDataCache opens the data cache of the bucket id under root. With
// Keep, it takes over the copies an earlier mount kept there; if another
// mount of the same bucket holds them, this one keeps nothing.
func OpenDataCache(root, id string, opts DataOptions) (*DataCache, error) {
	dc := &DataCache{dir: filepath.Join(root, "data", id), keep: opts.Keep, whole: opts.Whole, log: opts.Logger,
		open: map[string]*Extent{}, kept: list.New(), keptByID: map[string]*list.Element{}}
	if dc.log == nil {
		dc.log = slog.Default()
	}
	if err := os.MkdirAll(dc.dir, 0o700); err != nil {
		return nil, fmt.Errorf("data cache: %w", err)
	}
	if dc.keep <= 0 {
		return dc, nil
	}
	lock, err := lockDir(dc.dir)
	if err != nil {
		dc.log.Warn("data cache in use by another mount of the bucket; this one keeps nothing after close", "dir", dc.dir)
		dc.keep = 0
		return dc, nil
	}
	dc.lock = lock
	dc.load()
	return dc, nil
}

// load registers the copies kept by an earlier mount, oldest first, and
// removes what was left half-saved: a data file without its map.
func (dc *DataCache) load() {
	entries, err := os.ReadDir(dc.dir)
	if err != nil {
		dc.warn("data cache unreadable", err)
		return
	}
	type found struct {
		id   string
		held int64
		used int64
	}
	var copies []found
	maps := map[string]bool{}
	for _, de := range entries {
		id, ok := strings.CutSuffix(de.Name(), mapSuffix)
		if !ok {
			continue
		}
		_, have, err := dc.readMap(id)
		info, statErr := os.Stat(dc.path(id, dataSuffix))
		if err != nil || statErr != nil {
			dc.remove(id)
			continue
		}
		maps[id] = true
		copies = append(copies, found{id, popBytes(have, info.Size()), info.ModTime().UnixNano()})
	}
	for _, de := range entries {
		id, isData := strings.CutSuffix(de.Name(), dataSuffix)
		if (isData && !maps[id]) || strings.HasSuffix(de.Name(), tmpSuffix) {
			os.Remove(filepath.Join(dc.dir, de.Name()))
		}
	}
	slices.SortFunc(copies, func(a, b found) int { return cmp.Compare(a.used, b.used) })
	dc.mu.Lock()
	defer dc.mu.Unlock()
	for _, c := range copies {
		dc.keptByID[c.id] = dc.kept.PushBack(keptCopy{c.id, c.held})
		dc.keptBytes += c.held
	}
	dc.evictLocked()
}

// Close lets go of the cache directory; kept copies stay for the next
// mount. Copies still open (a mount ends before the kernel's last
// releases reach it) are saved as they are, and a release under way is
// waited for, so what was read is kept either way.
func (dc *DataCache) Close() error {
	if dc == nil || dc.lock == nil {
		return nil
	}
	dc.mu.Lock()
	open := make([]*Extent, 0, len(dc.open))
	for _, e := range dc.open {
		open = append(open, e)
	}
	dc.mu.Unlock()
	for _, e := range open {
		dc.mu.Lock()
		closing := e.closing
		dc.mu.Unlock()
		if closing {
			<-e.done
			continue
		}
		e.cancel()
		e.fetching.Wait()
		if e.Held() > 0 {
			if err := dc.save(e); err != nil {
				dc.warn("data cache: a copy open at unmount was not kept", err)
			}
		}
	}
	return dc.lock.Close()
}

// KeptBytes is how many bytes the closed copies hold on disk.
func (dc *DataCache) KeptBytes() int64 {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return dc.keptBytes
}

func extentID(space string, obj backend.Object) string {
	sum := sha256.Sum256([]byte(space + "\x00" + obj.Key + "\x00" + obj.ETag))
	return hex.EncodeToString(sum[:20])
}

// Acquire returns the extent of the version obj of a key in space (the
// bucket, for a mount of all buckets), with one more reference; nil when
// the cache cannot hold it (the reader then reads without it). Objects
// without an ETag have no version to name a copy by.
func (dc *DataCache) Acquire(space string, obj backend.Object) *Extent {
	if dc == nil || obj.ETag == "" || obj.Size <= 0 {
		return nil
	}
	id := extentID(space, obj)
	for {
		dc.mu.Lock()
		e := dc.open[id]
		if e == nil {
			break
		}
		if !e.closing {
			e.refs++
			dc.mu.Unlock()
			return e
		}
		dc.mu.Unlock()
		<-e.done // being saved: take it up again once it is
	}
	defer dc.mu.Unlock()
	var have []uint64
	file, err := dc.reopenKeptLocked(id, obj, &have)
	if err != nil {
		dc.warnLocked("data cache file failed; reading without it", err)
		return nil
	}
	e := newExtent(dc, id, obj, file, have) // without a kept copy, its file comes with its first data
	dc.open[id] = e
	return e
}

// reopenKeptLocked opens a kept copy of id, if there is one of obj's size;
// a copy that cannot be used is removed. Called with dc.mu held.
func (dc *DataCache) reopenKeptLocked(id string, obj backend.Object, have *[]uint64) (*os.File, error) {
	el := dc.keptByID[id]
	if el == nil {
		return nil, nil
	}
	dc.forgetLocked(el)
	size, bitmap, err := dc.readMap(id)
	if err == nil && size != obj.Size {
		err = fmt.Errorf("kept copy of %d bytes for an object of %d", size, obj.Size)
	}
	var file *os.File
	if err == nil {
		file, err = os.OpenFile(dc.path(id, dataSuffix), os.O_RDWR|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		dc.remove(id)
		return nil, nil
	}
	*have = bitmap
	return file, nil
}

// create makes a sparse file of size for id: named when copies are kept,
// else unlinked at once, so nothing is left behind by a crash.
func (dc *DataCache) create(id string, size int64) (*os.File, error) {
	var file *os.File
	var err error
	if dc.keep > 0 {
		file, err = os.OpenFile(dc.path(id, dataSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
	} else if file, err = os.CreateTemp(dc.dir, "open-*"); err == nil {
		err = os.Remove(file.Name())
	}
	if err == nil {
		err = file.Truncate(size)
	}
	if err != nil {
		if file != nil {
			file.Close()
		}
		return nil, fmt.Errorf("data cache: %w", err)
	}
	return file, nil
}

func (dc *DataCache) release(e *Extent) {
	dc.mu.Lock()
	if e.refs--; e.refs > 0 {
		dc.mu.Unlock()
		return
	}
	e.closing = true
	dc.mu.Unlock()

	e.cancel()
	e.fetching.Wait()
	held := e.Held()
	keep := dc.keep > 0 && held > 0 && dc.save(e) == nil
	e.closeFile()

	dc.mu.Lock()
	defer dc.mu.Unlock()
	delete(dc.open, e.id)
	close(e.done)
	if !keep {
		if dc.keep > 0 {
			dc.remove(e.id)
		}
		return
	}
	dc.keptByID[e.id] = dc.kept.PushBack(keptCopy{e.id, held})
	dc.keptBytes += held
	dc.evictLocked()
}

// save writes e's map once its data is on disk: a map never claims a
// block that a crash could lose.
func (dc *DataCache) save(e *Extent) error {
	if err := e.file.Sync(); err != nil {
		return err
	}
	e.mu.Lock()
	var buf bytes.Buffer
	buf.WriteString(mapMagic)
	binary.Write(&buf, binary.LittleEndian, e.obj.Size)
	buf.Write(encodeBitmap(e.have))
	e.mu.Unlock()
	tmp, err := os.CreateTemp(dc.dir, e.id+".*"+tmpSuffix)
	if err != nil {
		return err
	}
	_, err = tmp.Write(buf.Bytes())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dc.path(e.id, mapSuffix))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

func (dc *DataCache) readMap(id string) (int64, []uint64, error) {
	b, err := os.ReadFile(dc.path(id, mapSuffix))
	if err != nil {
		return 0, nil, err
	}
	rest, ok := bytes.CutPrefix(b, []byte(mapMagic))
	if !ok || len(rest) < 8 {
		return 0, nil, fmt.Errorf("data cache map %s: not one", id)
	}
	size := int64(binary.LittleEndian.Uint64(rest))
	if size <= 0 {
		return 0, nil, fmt.Errorf("data cache map %s: size %d", id, size)
	}
	have, err := decodeBitmap(rest[8:], (size+BlockSize-1)/BlockSize)
	return size, have, err
}

// evictLocked removes the least recently used kept copies until they fit
// in Keep. Called with dc.mu held.
func (dc *DataCache) evictLocked() {
	for dc.keptBytes > dc.keep && dc.kept.Len() > 0 {
		el := dc.kept.Front()
		dc.forgetLocked(el)
		dc.remove(el.Value.(keptCopy).id)
	}
}

func (dc *DataCache) forgetLocked(el *list.Element) {
	c := dc.kept.Remove(el).(keptCopy)
	delete(dc.keptByID, c.id)
	dc.keptBytes -= c.held
}

// remove deletes a copy's map before its data, so a crash between the two
// leaves a data file without a map, which load removes.
func (dc *DataCache) remove(id string) {
	os.Remove(dc.path(id, mapSuffix))
	os.Remove(dc.path(id, dataSuffix))
}

func (dc *DataCache) path(id, suffix string) string { return filepath.Join(dc.dir, id+suffix) }

// room tells whether the disk under the cache can take n more bytes and
// still keep a twentieth of itself (at least 64 MiB) free.
func (dc *DataCache) room(n int64) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dc.dir, &st); err != nil {
		return false
	}
	free := int64(st.Bavail) * st.Bsize
	reserve := max(int64(st.Blocks)*st.Bsize/20, 64<<20)
	return free-n >= reserve
}

func (dc *DataCache) warn(msg string, err error) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	dc.warnLocked(msg, err)
}

// warnLocked logs the first failure of the cache only: a full disk would
// otherwise log every read.
func (dc *DataCache) warnLocked(msg string, err error) {
	if !dc.warned {
		dc.warned = true
		dc.log.Warn(msg, "dir", dc.dir, "err", err)
	}
}
