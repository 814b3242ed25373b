package fs

import (
	"sync/atomic"
)

// Stats is the state of a mount that its metrics show.
type Stats struct {
	OpenFiles       int64 // open file descriptions (handles)
	StagedBytes     int64 // bytes of the local copies on disk
	UploadsInFlight int64 // uploads being sent now
	PendingUploads  int64 // files S3 does not have yet (in the journal)
	ConflictCopies  int64 // copies set aside in a conflict
}

// statsXattr, on a bucket's root, is the mount's figures as JSON (what
// Config.StatsReport gives): requests, bytes, cost and state. Not listed.
const statsXattr = "user.s3.stats"

// counters are the figures of Stats that are counted as they change.
type counters struct {
	openFiles, uploading atomic.Int64
}

// opened counts h among the open handles (Release uncounts it).
func (f *filesystem) opened(h *fileHandle) *fileHandle {
	f.counters.openFiles.Add(1)
	return h
}

// Stats sums the figures of every bucket the mount serves.
func (m *Mounted) Stats() Stats {
	var s Stats
	for _, f := range m.filesystems() {
		s.OpenFiles += f.counters.openFiles.Load()
		s.UploadsInFlight += f.counters.uploading.Load()
		for _, l := range f.localsUnder("") {
			l.mu.Lock()
			if !l.remote && l.staged != nil {
				s.StagedBytes += l.staged.Size()
			}
			if l.state == statePending || l.state == stateBroken {
				s.PendingUploads++
			}
			l.mu.Unlock()
		}
		if j := f.cfg.Journal; j != nil {
			aside, _ := j.Aside()
			s.ConflictCopies += int64(len(aside))
		}
	}
	return s
}
