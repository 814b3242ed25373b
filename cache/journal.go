package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bucketfs/bucketfs/backend"
)

// The upload journal is the staging directory itself: every staged file
// "staged-NNN" has an entry "staged-NNN.entry" beside it that says what it
// is for. An entry is replaced atomically (written aside, then renamed),
// and made durable (data and entry fsynced) when its file becomes pending:
// from then on it survives a crash of the mount or of the machine.
//
// Under --cache-dir:
//
//	journal/ID/mount-XXXX/   one mount's staged files, locked by that mount
//	conflicts/ID/            local copies another client's version beat
//	lost+found/ID/           files being written when their mount died,
//	                         and entries that could not be read
//
// ID names the endpoint and bucket, so that only a mount of the same
// bucket replays a journal.

// Entry states.
const (
	// EntryOpen is a file being written: it was never closed with
	// success, so its data is no upload anyone asked for.
	EntryOpen = "open"
	// EntryPending is a file whose upload failed: it must reach S3.
	EntryPending = "pending"
	// EntryConflict is a local copy set aside because another client
	// changed the key first.
	EntryConflict = "conflict"
)

// Entry is what the journal records of one staged file.
type Entry struct {
	Bucket string `json:"bucket"`
	State  string `json:"state"`
	// Put is the upload: key, headers and conditions (If-None-Match for a
	// new key, If-Match on the version the content replaces).
	Put      backend.PutInput `json:"put"`
	Size     int64            `json:"size"`
	UploadID string           `json:"upload_id,omitempty"` // a multipart upload under way
	// UploadRequested is when that upload's start was requested: S3 may
	// hold an upload from then on whose ID never reached the journal.
	UploadRequested time.Time `json:"upload_requested,omitzero"`
	Since           time.Time `json:"since,omitzero"`   // pending since
	Reason          string    `json:"reason,omitempty"` // why the last upload failed
}

const entrySuffix = ".entry"

// Record replaces the file's journal entry. Durable also flushes the
// staged data and the entry to disk before returning, so both survive a
// power cut.
func (f *StagedFile) Record(e Entry, durable bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.removed {
		return fmt.Errorf("journal %s: staged file removed", f.path)
	}
	var synced chan error
	if durable && !f.closed {
		// The data's fsync and the new entry's overlap: the entry takes
		// the file's name only once both are on disk, so a crash never
		// leaves an entry whose data is not.
		synced = make(chan error, 1)
		go func() { synced <- f.file.Sync() }()
	}
	return writeEntryAfter(f.path+entrySuffix, e, durable, synced)
}

func writeEntry(path string, e Entry, durable bool) error {
	return writeEntryAfter(path, e, durable, nil)
}

// writeEntryAfter replaces the entry at path, atomically; when durable, it
// is fsync'd with its directory, and renamed into place only once dataSynced
// (if not nil) reports the data's fsync.
func writeEntryAfter(path string, e Entry, durable bool, dataSynced <-chan error) error {
	e.Put.Body = nil
	data, err := json.Marshal(e)
	if err != nil {
		drain(dataSynced)
		return fmt.Errorf("journal %s: %w", path, err)
	}
	tmp := path + ".tmp"
	w, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		drain(dataSynced)
		return fmt.Errorf("journal: %w", err)
	}
	_, err = w.Write(data)
	if err == nil && durable {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if serr := drain(dataSynced); err == nil {
		err = serr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil && durable {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// drain waits for the result on c, if any.
func drain(c <-chan error) error {
	if c == nil {
		return nil
	}
	return <-c
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func readEntry(path string) (Entry, error) {
	var e Entry
	data, err := os.ReadFile(path)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("damaged journal entry %s: %w", path, err)
	}
	if e.Put.Key == "" || (e.State != EntryOpen && e.State != EntryPending && e.State != EntryConflict) {
		return e, fmt.Errorf("damaged journal entry %s: no key or unknown state %q", path, e.State)
	}
	return e, nil
}

// SetAside moves the staged file and its entry into dir (conflicts or
// lost+found) under a name that tells the key, and returns the new path of
// the data. Descriptors open on it keep working.
func (f *StagedFile) SetAside(dir string, e Entry) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.removed {
		return "", fmt.Errorf("set aside %s: staged file removed", f.path)
	}
	path, err := moveAside(f.path, dir, e)
	if err != nil {
		return "", err
	}
	// The file is no longer ours to delete.
	f.removed = true
	f.path = path
	return path, nil
}

// moveAside moves data file src and its entry into dir, as e.
func moveAside(src, dir string, e Entry) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("set aside: %w", err)
	}
	base := filepath.Base(e.Put.Key)
	if base == "." || base == "/" || base == "" {
		base = "file"
	}
	if len(base) > 200 {
		base = base[:200]
	}
	dst := filepath.Join(dir, time.Now().UTC().Format("20060102T150405Z")+"-"+filepath.Base(src)+"-"+base)
	if err := os.Rename(src, dst); err != nil {
		return "", fmt.Errorf("set aside %s: %w", src, err)
	}
	os.Remove(src + entrySuffix)
	if err := writeEntry(dst+entrySuffix, e, true); err != nil {
		return dst, err
	}
	return dst, nil
}

// Journal is a mount's staging directory under --cache-dir, locked for the
// life of the mount so that no other mount replays it, together with the
// folders where it sets files aside.
type Journal struct {
	*Staging
	root, id string
	lock     *os.File

	deleteOnce sync.Once // opens deleteLog
	deleteLog  *deleteLog
	deleteErr  error
}

// OpenJournal creates and locks a new journal for the bucket that id
// names, under the cache directory root (which CheckCacheDir has vetted).
func OpenJournal(root, id string) (*Journal, error) {
	bucketDir := filepath.Join(root, "journal", id)
	if err := os.MkdirAll(bucketDir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	dir, err := os.MkdirTemp(bucketDir, "mount-*")
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		os.Remove(dir)
		return nil, err
	}
	staging, err := NewStaging(dir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &Journal{Staging: staging, root: root, id: id, lock: lock}, nil
}

const lockName = "lock"

// lockDir takes the lock of a journal directory without waiting; it fails
// while another process holds it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal %s is in use: %w", dir, err)
	}
	return f, nil
}

// ConflictDir is where local copies that lost to another client's version
// are kept; LostDir where unfinished writes and unreadable entries go.
func (j *Journal) ConflictDir() string { return filepath.Join(j.root, "conflicts", j.id) }
func (j *Journal) LostDir() string     { return filepath.Join(j.root, "lost+found", j.id) }

// Close releases the journal. Its directory goes only if nothing is left
// in it: pending files stay for the next mount.
func (j *Journal) Close() error {
	left, _ := filepath.Glob(filepath.Join(j.Dir(), "staged-*"))
	if j.deleteLog != nil {
		deletesLeft := j.deletesLeft()
		j.deleteLog.file.Close()
		if !deletesLeft {
			os.Remove(filepath.Join(j.Dir(), deleteLogName))
		}
	}
	if len(left) == 0 {
		os.Remove(filepath.Join(j.Dir(), lockName))
		os.Remove(j.Dir())
	}
	return j.lock.Close()
}

// Recovered is what an earlier mount of the bucket left in its journal.
type Recovered struct {
	// Pending are files that must still reach S3, now staged in this
	// journal.
	Pending []RecoveredFile
	// Unfinished are entries of files still being written when their
	// mount stopped, set aside in LostDir; an UploadID or UploadRequested
	// among them is a multipart upload to abort.
	Unfinished []Entry
	// Deletes are deletes that --write-back deferred and that are not
	// known to be done, journaled again in this journal.
	Deletes []DeferredDelete
	// Problems says, one line each, what could not be read or moved.
	Problems []string
}

// RecoveredFile is a pending file taken over from an earlier mount.
type RecoveredFile struct {
	File  *StagedFile
	Entry Entry
}

// Recover takes over the journals of the bucket's mounts that are no
// longer running (their lock is free): pending files move into this
// journal, the rest is set aside. A journal whose mount still runs is left
// alone.
func (j *Journal) Recover() Recovered {
	var out Recovered
	dirs, _ := filepath.Glob(filepath.Join(j.root, "journal", j.id, "mount-*"))
	for _, dir := range dirs {
		if dir == j.Dir() {
			continue
		}
		lock, err := lockDir(dir)
		if err != nil {
			continue // its mount is alive
		}
		j.recoverDir(dir, &out)
		os.Remove(filepath.Join(dir, lockName))
		lock.Close()
		os.Remove(dir)
	}
	return out
}

func (j *Journal) recoverDir(dir string, out *Recovered) {
	deletes, err := recoverDeletes(dir)
	if err != nil {
		out.Problems = append(out.Problems, fmt.Sprintf("%s: %v", deleteLogName, err))
	}
	for _, d := range deletes {
		if err := j.RecordDelete(d); err != nil {
			out.Problems = append(out.Problems, err.Error())
			continue
		}
		out.Deletes = append(out.Deletes, d)
	}
	if len(deletes) > 0 {
		if err := j.SyncDeletes(); err != nil {
			out.Problems = append(out.Problems, err.Error())
		}
	}
	os.Remove(filepath.Join(dir, deleteLogName))
	names, err := os.ReadDir(dir)
	if err != nil {
		out.Problems = append(out.Problems, err.Error())
		return
	}
	for _, de := range names {
		name := de.Name()
		if !strings.HasPrefix(name, "staged-") || strings.Contains(name, ".") || !de.Type().IsRegular() {
			if strings.HasSuffix(name, entrySuffix+".tmp") {
				os.Remove(filepath.Join(dir, name)) // a replacement that never landed
			}
			continue
		}
		src := filepath.Join(dir, name)
		e, err := readEntry(src + entrySuffix)
		if err != nil {
			dst, moveErr := moveAside(src, j.LostDir(), Entry{Put: backend.PutInput{Key: name}, State: EntryOpen})
			out.Problems = append(out.Problems, fmt.Sprintf("%v; data kept at %s %v", err, dst, errOrEmpty(moveErr)))
			continue
		}
		if e.State != EntryPending {
			if _, err := moveAside(src, j.LostDir(), e); err != nil {
				out.Problems = append(out.Problems, err.Error())
			}
			out.Unfinished = append(out.Unfinished, e)
			continue
		}
		f, err := j.adopt(src, e)
		if err != nil {
			out.Problems = append(out.Problems, err.Error())
			continue
		}
		out.Pending = append(out.Pending, RecoveredFile{File: f, Entry: e})
	}
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return "(" + err.Error() + ")"
}

// adopt moves staged file src and its entry into this journal.
func (j *Journal) adopt(src string, e Entry) (*StagedFile, error) {
	dst, err := os.CreateTemp(j.Dir(), "staged-*")
	if err != nil {
		return nil, fmt.Errorf("recover %s: %w", src, err)
	}
	dst.Close()
	if err := os.Rename(src, dst.Name()); err != nil {
		os.Remove(dst.Name())
		return nil, fmt.Errorf("recover %s: %w", src, err)
	}
	if err := os.Rename(src+entrySuffix, dst.Name()+entrySuffix); err != nil {
		return nil, fmt.Errorf("recover %s: %w", src, err)
	}
	file, err := os.OpenFile(dst.Name(), os.O_RDWR|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("recover %s: %w", src, err)
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("recover %s: %w", src, err)
	}
	if st.Size() != e.Size {
		file.Close()
		return nil, fmt.Errorf("recover %s: %d bytes staged, the entry says %d; kept at %s", src, st.Size(), e.Size, dst.Name())
	}
	return &StagedFile{key: e.Put.Key, path: dst.Name(), file: file, writeBehind: j.writeBehind,
		size: st.Size(), dirty: true, seqEnd: -1}, nil
}

// Aside lists the entries set aside in ConflictDir, with the path of each
// one's data.
func (j *Journal) Aside() (map[string]Entry, error) {
	out := map[string]Entry{}
	err := filepath.WalkDir(j.ConflictDir(), func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if de.Type().IsRegular() && strings.HasSuffix(path, entrySuffix) {
			if e, err := readEntry(path); err == nil {
				out[strings.TrimSuffix(path, entrySuffix)] = e
			}
		}
		return nil
	})
	return out, err
}
