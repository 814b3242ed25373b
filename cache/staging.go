package cache

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/bucketfs/bucketfs/backend"
)

// Staging is the directory under --cache-dir that holds the local copies of
// files open for writing. Staged data is written to disk, not memory, so that
// any write pattern works (random writes, seeks, truncates, mmap) and so that
// it survives a failed upload for the next flush.
type Staging struct {
	dir string
	// writeBehind is the offset beyond which a staged file's stored parts
	// leave the page cache; see StagedFile.Stored.
	writeBehind int64
}

// NewStaging uses dir (the mount's own subdirectory of --cache-dir) for
// staged files, creating it 0700: staged data is as private as the bucket.
// Files left there by an earlier run are not touched.
func NewStaging(dir string) (*Staging, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("staging: %w", err)
	}
	// MkdirAll keeps the mode of a directory that already exists.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("staging: %w", err)
	}
	return &Staging{dir: dir, writeBehind: backgroundDirtyBytes()}, nil
}

// backgroundDirtyBytes is how much dirty data the kernel lets accumulate
// before it starts writing it back (vm.dirty_background_bytes, or
// vm.dirty_background_ratio percent of available memory), 1 GiB when
// /proc does not say.
func backgroundDirtyBytes() int64 {
	read := func(path string) int64 {
		b, _ := os.ReadFile(path)
		n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return n
	}
	if n := read("/proc/sys/vm/dirty_background_bytes"); n > 0 {
		return n
	}
	ratio := read("/proc/sys/vm/dirty_background_ratio")
	meminfo, _ := os.ReadFile("/proc/meminfo")
	for line := range strings.Lines(string(meminfo)) {
		if kb, ok := strings.CutPrefix(line, "MemAvailable:"); ok && ratio > 0 {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
			if n > 0 {
				return (n << 10) * ratio / 100
			}
		}
	}
	return 1 << 30
}

// Dir is the staging directory.
func (s *Staging) Dir() string { return s.dir }

// Create returns a new, empty, clean staged file for key. Its name is random
// ("staged-NNN", created with O_EXCL), never derived from the key, so long
// or odd keys cannot break it; its journal entry "staged-NNN.entry" records
// the key, so that data kept after a crash can be matched to its object.
func (s *Staging) Create(key string) (*StagedFile, error) {
	file, err := os.CreateTemp(s.dir, "staged-*") // 0600, O_EXCL
	if err != nil {
		return nil, fmt.Errorf("staging %q: %w", key, err)
	}
	path := file.Name()
	if err := writeEntry(path+entrySuffix, Entry{State: EntryOpen, Put: backend.PutInput{Key: key}}, false); err != nil {
		file.Close()
		os.Remove(path)
		return nil, fmt.Errorf("staging %q: %w", key, err)
	}
	return &StagedFile{key: key, path: path, file: file, writeBehind: s.writeBehind}, nil
}

// StagedFile is the local copy of one file open for writing. It is safe for
// concurrent use: every file descriptor open on the file shares it.
//
// It also records whether it has been written purely sequentially from
// offset 0 (appends only, no overwrite, no truncate), so that the bytes
// written so far are final and a Stream may upload them while the writer
// goes on.
type StagedFile struct {
	key         string
	path        string
	file        *os.File // pread/pwrite only: the file offset is never used
	writeBehind int64    // see Stored

	// mu protects the fields below. Reads take it shared; writes take it
	// exclusively so that size always matches the file on disk.
	mu      sync.RWMutex
	size    int64
	dirty   bool
	version uint64 // counts changes, so an upload can tell if it saw the last one
	seqEnd  int64  // [0, seqEnd) was written by appends only; -1 once not sequential
	removed bool
	closed  bool
}

// Key is the object key the file stages.
func (f *StagedFile) Key() string { return f.key }

// Path is where the staged data is on disk, for logs such as "staged data
// kept at PATH".
func (f *StagedFile) Path() string { return f.path }

var _ io.WriterAt = (*StagedFile)(nil)

// WriteAt writes p at off, growing the file as needed (a hole reads as
// zeros), and marks the file dirty. A full disk fails with an error wrapping
// syscall.ENOSPC; n then says how much of p did reach the disk.
func (f *StagedFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("write %s at %d: negative offset", f.path, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.file.WriteAt(p, off) // an *os.PathError keeps the errno for errors.Is
	if n > 0 {
		f.dirty = true
		f.version++
		f.size = max(f.size, off+int64(n))
		if f.seqEnd >= 0 && off == f.seqEnd {
			f.seqEnd += int64(n)
		} else {
			f.seqEnd = -1
		}
	}
	return n, err
}

var _ io.ReaderAt = (*StagedFile)(nil)

// ReadAt reads with io.ReaderAt semantics: fewer than len(p) bytes only at
// the end of the file, with io.EOF.
//
// It takes no lock: pread is safe beside pwrite and Close (os.File keeps
// the descriptor until its calls return), and a lock would queue every
// small read of a streaming upload behind the writer's next write, which
// stalled uploads for as long as a fast writer kept writing.
func (f *StagedFile) ReadAt(p []byte, off int64) (int, error) {
	return f.file.ReadAt(p, off)
}

// Truncate sets the size (growing adds zeros) and marks the file dirty, even
// at the same size: open(O_TRUNC) of an empty copy must still be stored.
// Only a truncate that changes nothing keeps the file sequential.
func (f *StagedFile) Truncate(size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.file.Truncate(size); err != nil {
		return err
	}
	if size != f.size {
		f.seqEnd = -1
	}
	f.size = size
	f.dirty = true
	f.version++
	return nil
}

// ErrRefused wraps the errors of a change that the local filesystem
// refused before changing anything (an unknown fallocate mode).
var ErrRefused = errors.New("refused by the local filesystem")

// Allocate applies fallocate(2) with mode to [off, off+n): a preallocation
// that grows the file (holes read as zeros), KEEP_SIZE, or a punched or
// zeroed range.
func (f *StagedFile) Allocate(mode uint32, off, n int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := unix.Fallocate(int(f.file.Fd()), mode, off, n); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("fallocate %s: %w: %w", f.path, ErrRefused, err)
		}
		return fmt.Errorf("fallocate %s: %w", f.path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.file.Fd()), &st); err != nil {
		return fmt.Errorf("fallocate %s: %w", f.path, err)
	}
	f.size, f.seqEnd = st.Size, -1
	f.dirty = true
	f.version++
	return nil
}

// Size is the staged file's size.
func (f *StagedFile) Size() int64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.size
}

// Dirty reports whether the file has changes not yet stored in the bucket.
func (f *StagedFile) Dirty() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.dirty
}

// Version changes with every write or truncate. Take it before uploading and
// pass it to MarkClean afterwards.
func (f *StagedFile) Version() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.version
}

// MarkClean records that the bucket holds version v of the file. It clears
// Dirty and returns true only if nothing changed since v was taken, so a
// write racing with an upload is never forgotten.
func (f *StagedFile) MarkClean(v uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.version != v {
		return false
	}
	f.dirty = false
	return true
}

// Sequential reports whether the file has only been appended to from offset
// 0 (bytes loaded by Fill count as appended) and, if so, up to where.
func (f *StagedFile) Sequential() (end int64, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.seqEnd, f.seqEnd >= 0
}

// Fill loads the bytes of the existing object from r before local edits.
// The file is clean afterwards, and sequential up to its size: appending to
// an existing object can still stream. Fill refuses to overwrite local
// changes; when r fails, the file is left empty.
func (f *StagedFile) Fill(r io.Reader) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dirty {
		return fmt.Errorf("fill %s: staged file has local changes", f.path)
	}
	f.version++
	f.size, f.seqEnd = 0, 0
	if err := f.file.Truncate(0); err != nil {
		return err
	}
	n, err := io.Copy(io.NewOffsetWriter(f.file, 0), r)
	if err != nil {
		// A half-loaded copy must never pass for the object.
		return errors.Join(fmt.Errorf("fill %s: %w", f.path, err), f.file.Truncate(0))
	}
	f.size, f.seqEnd = n, n
	return nil
}

// Stored tells the file that bytes [off, off+n) are in the bucket. Of a
// file larger than the kernel lets stay dirty in memory, their pages are
// then written to disk and dropped from the page cache: the kernel would
// write them back anyway, and a long sequential write keeps reusing a few
// pages instead of filling the page cache with the whole file, whose fresh
// pages also cost more to fault in than the copy itself. Smaller files are
// left alone: they are usually uploaded and deleted before any writeback,
// and writing them early would only take disk bandwidth from the server.
// The data stays staged on disk either way (a failed completion still
// finds it). Errors are ignored: the pages then just stay cached.
func (f *StagedFile) Stored(off, n int64) {
	if end := off + n; end <= f.writeBehind {
		return
	} else if off < f.writeBehind {
		off, n = f.writeBehind, end-f.writeBehind
	}
	conn, err := f.file.SyscallConn()
	if err != nil {
		return
	}
	// Control keeps the descriptor open while it runs, even if the file is
	// closed meanwhile; no lock is taken, so writers go on.
	conn.Control(func(fd uintptr) {
		const writeAndWait = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
		if unix.SyncFileRange(int(fd), off, n, writeAndWait) == nil {
			// Pages rewritten since are dirty again and stay.
			unix.Fadvise(int(fd), off, n, unix.FADV_DONTNEED)
		}
	})
}

// Close releases the file descriptor but keeps the data on disk, for a file
// abandoned with changes that could not be stored. Only Remove may follow.
func (f *StagedFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	return f.file.Close()
}

// Remove deletes the staged file and its sidecar. Calling it again does
// nothing.
func (f *StagedFile) Remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.removed {
		return nil
	}
	f.removed = true
	var errs []error
	if !f.closed {
		f.closed = true
		errs = append(errs, f.file.Close())
	}
	for _, p := range []string{f.path, f.path + entrySuffix} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
