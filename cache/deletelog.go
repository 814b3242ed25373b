package cache

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The deletes that --write-back defers are journaled in deletes.log of the
// mount's journal directory, one JSON line per delete asked for and one per
// delete done. The log is fsync'd in batches, not at every unlink: a crash
// can forget the last of them, and those files then reappear; no data is
// ever lost that way.

const deleteLogName = "deletes.log"

// DeferredDelete is a delete asked for and not known to be done.
type DeferredDelete struct {
	Bucket string    `json:"bucket"`
	Key    string    `json:"key"`
	Since  time.Time `json:"since,omitzero"`
}

type deleteLine struct {
	DeferredDelete
	Done bool `json:"done,omitempty"`
}

// deleteLog is the open deletes.log of a journal.
type deleteLog struct {
	mu    sync.Mutex
	file  *os.File
	open  map[[2]string]bool // bucket and key of the deletes not done
	dirty bool
}

func (j *Journal) deletes() (*deleteLog, error) {
	j.deleteOnce.Do(func() {
		f, err := os.OpenFile(filepath.Join(j.Dir(), deleteLogName), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			j.deleteErr = fmt.Errorf("journal: %w", err)
			return
		}
		j.deleteLog = &deleteLog{file: f, open: map[[2]string]bool{}}
	})
	return j.deleteLog, j.deleteErr
}

// RecordDelete journals a delete of key that is left for later.
func (j *Journal) RecordDelete(d DeferredDelete) error {
	return j.appendDelete(deleteLine{DeferredDelete: d})
}

// DeleteDone journals that the delete of key is done.
func (j *Journal) DeleteDone(bucket, key string) error {
	return j.appendDelete(deleteLine{DeferredDelete: DeferredDelete{Bucket: bucket, Key: key}, Done: true})
}

func (j *Journal) appendDelete(line deleteLine) error {
	l, err := j.deletes()
	if err != nil {
		return err
	}
	data, err := json.Marshal(line)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.file.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	id := [2]string{line.Bucket, line.Key}
	if line.Done {
		delete(l.open, id)
	} else {
		l.open[id] = true
	}
	l.dirty = true
	return nil
}

// SyncDeletes flushes the deletes journaled so far to disk.
func (j *Journal) SyncDeletes() error {
	l, err := j.deletes()
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.dirty {
		return nil
	}
	l.dirty = false
	return l.file.Sync()
}

// deletesLeft tells whether deletes remain to be done, so the journal
// directory must stay for the next mount.
func (j *Journal) deletesLeft() bool {
	l := j.deleteLog
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.file.Sync()
	return len(l.open) > 0
}

// recoverDeletes reads the deletes a dead mount left undone in dir, in
// the order they were asked for.
func recoverDeletes(dir string) ([]DeferredDelete, error) {
	f, err := os.Open(filepath.Join(dir, deleteLogName))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var order []DeferredDelete
	open := map[[2]string]int{} // index in order, +1
	lines := bufio.NewScanner(f)
	lines.Buffer(make([]byte, 0, 4096), 1<<20)
	for lines.Scan() {
		var line deleteLine
		if json.Unmarshal(lines.Bytes(), &line) != nil || line.Key == "" {
			continue // a line cut by the crash
		}
		id := [2]string{line.Bucket, line.Key}
		if line.Done {
			if i := open[id]; i > 0 {
				order[i-1].Key = ""
			}
			delete(open, id)
			continue
		}
		if open[id] == 0 {
			order = append(order, line.DeferredDelete)
			open[id] = len(order)
		}
	}
	var out []DeferredDelete
	for _, d := range order {
		if d.Key != "" {
			out = append(out, d)
		}
	}
	return out, lines.Err()
}
