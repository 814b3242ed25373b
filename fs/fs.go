// Package fs is the go-fuse node tree of bucketfs: key prefixes are
// directories, keys are files. It talks to storage only through
// backend.Bucket (usually wrapped in cache.Meta) and turns backend errors
// into errno values in one place (errno.go).
//
// Locking: go-fuse owns the tree locks; nodes lock only their own state, and
// never hold a lock across a request to the bucket. Order: a local file's
// flushMu or loadMu, then a node's mu, then a handle's mu, then a local
// file's mu, then the filesystem's mu, which is a leaf.
package fs

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/cache"
)

// Config is what a mount needs.
type Config struct {
	Bucket backend.Bucket
	Prefix string // "" or "dir/sub/": the key prefix shown as the root

	UID, GID          uint32
	FileMode, DirMode uint32 // permission bits for objects without headers
	StatTTL           time.Duration
	NegativeTTL       time.Duration
	ReadOnly          bool
	// Passthrough lets the kernel read whole local copies itself (FUSE
	// passthrough; needs CAP_SYS_ADMIN).
	Passthrough bool
	// WriteBack lets close(2) return once the journal holds the file
	// (--write-back); uploads follow in the background.
	WriteBack  bool
	AllowOther bool
	ReadAhead  int64         // largest read-ahead window of one file
	ReadBudget *cache.Budget // bounds read-ahead memory of the mount
	// DataCache, when set, keeps what readers fetched on local disk
	// (cache.Extent); DataSpace names the bucket in it, for a mount of
	// all buckets.
	DataCache *cache.DataCache
	DataSpace string
	Staging   *cache.Staging // where files being written are staged
	// Journal, when set, is the locked journal that Staging belongs to;
	// conflict copies go beside it. Without one they go beside Staging.
	Journal          *cache.Journal
	RetryDelay       func(attempt int) time.Duration // before a pending file's next upload; nil: 1s doubling to 30s
	Upload           cache.UploadOptions             // part size and parallelism of uploads
	Defaults         UploadDefaults                  // S3 settings of new objects
	PresignExpiry    time.Duration                   // lifetime of user.s3.presigned_url
	Endpoint, Region string                          // shown on the root
	// PosixMetadata decides which objects that a listing returned without
	// headers get a HEAD before they are shown (--posix-metadata):
	// "always" (also ""), "auto" (those of directories where a sample of
	// three carries POSIX headers) or "never".
	PosixMetadata string
	// StatsReport, when set, answers the root's user.s3.stats: the
	// mount's figures (requests, bytes, cost, state) as JSON.
	StatsReport func() []byte
	Logger      *slog.Logger
	Debug       bool // log every FUSE request
}

// filesystem is the state every node shares.
type filesystem struct {
	bucket  backend.Bucket
	staging *cache.Staging
	owner   owner
	cfg     Config
	log     *slog.Logger

	// aclSeen is set once the mount has seen an ACL (see noACL).
	aclSeen  atomic.Bool
	counters counters

	// flushes counts uploads in progress, so shutdown can wait for them.
	flushes sync.WaitGroup
	// The retrier of pending files: started with the first, woken by
	// retryWake, stopped by closing done.
	retrierOnce sync.Once
	retryWake   chan struct{}
	// The sender of deferred deletes: started with the first.
	deleterOnce sync.Once
	deleteWake  chan struct{}
	done        chan struct{}

	// mu protects the fields below. It is a leaf: nothing is locked
	// while holding it.
	mu sync.Mutex
	// local holds the files this mount has a local copy of, by key.
	local map[string]*localFile
	// closing is set at shutdown: no new upload starts after it.
	closing bool
	// lastWriteBack is when a file was last closed, or a name removed,
	// with write-back.
	lastWriteBack time.Time
	// tombs are the deletes write-back deferred, by key; gone the
	// directories removed meanwhile, which S3 may still list.
	tombs map[string]*tombstone
	gone  map[string]bool
	// readers are the open read-only handles, which follow what this
	// mount stores (follow.go).
	readers map[*fileHandle]struct{}
	// rootMarker holds what chmod, chown and touch set on a bucket's root,
	// which has no marker object: for the mount's lifetime.
	rootMarker backend.Object
}

// headerFetcher is implemented by caches (cache.Meta) whose Head may answer
// from a listing without headers.
type headerFetcher interface {
	Fresh(ctx context.Context, key string) (backend.Object, error)
}

// NewRoot returns the root node of a mount.
func NewRoot(cfg Config) gofs.InodeEmbedder {
	return &dirNode{fs: newFilesystem(cfg)}
}

func newFilesystem(cfg Config) *filesystem {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	f := &filesystem{
		local:      map[string]*localFile{},
		readers:    map[*fileHandle]struct{}{},
		tombs:      map[string]*tombstone{},
		gone:       map[string]bool{},
		deleteWake: make(chan struct{}, 1),
		retryWake:  make(chan struct{}, 1),
		done:       make(chan struct{}),
		staging:    cfg.Staging,
		cfg:        cfg,
		log:        cfg.Logger,
		owner: owner{
			uid: cfg.UID, gid: cfg.GID,
			fileMode: cfg.FileMode, dirMode: cfg.DirMode,
			mountTime: time.Now(),
		},
	}
	if cfg.Bucket != nil {
		f.bucket = watchedBucket{Bucket: cfg.Bucket, stored: f.stored, settle: f.settle}
	}
	return f
}

// Mounted is a running mount.
type Mounted struct {
	*fuse.Server
	// filesystems are the mount's buckets' (one, or those of an account
	// that have been looked at); filesystemOf is the one of a bucket.
	filesystems  func() []*filesystem
	filesystemOf func(bucket string) *filesystem
}

// Mount mounts cfg at mountpoint and returns the running server; the caller
// waits on it (Wait), and unmounts it (Unmount) after Drain.
func Mount(mountpoint string, cfg Config) (*Mounted, error) {
	root := NewRoot(cfg)
	server, err := mount(mountpoint, root, cfg)
	if err != nil {
		return nil, err
	}
	f := root.(*dirNode).fs
	return &Mounted{Server: server, filesystems: func() []*filesystem { return []*filesystem{f} },
		filesystemOf: func(string) *filesystem { return f }}, nil
}

// Resume takes over what an earlier mount of the same bucket and cache
// dir left in its journal: pending files are shown and uploaded in the
// background, multipart uploads of unfinished files are aborted.
func (m *Mounted) Resume(r cache.Recovered) {
	deletes := map[string][]cache.DeferredDelete{}
	for _, d := range r.Deletes {
		deletes[d.Bucket] = append(deletes[d.Bucket], d)
	}
	for bucket, ds := range deletes {
		m.filesystemOf(bucket).resumeDeletes(ds) // before the uploads they precede
	}
	byBucket := map[string][]cache.RecoveredFile{}
	for _, p := range r.Pending {
		byBucket[p.Entry.Bucket] = append(byBucket[p.Entry.Bucket], p)
	}
	unfinished := map[string][]cache.Entry{}
	for _, e := range r.Unfinished {
		unfinished[e.Bucket] = append(unfinished[e.Bucket], e)
	}
	for bucket, files := range byBucket {
		m.filesystemOf(bucket).resume(files, unfinished[bucket])
		delete(unfinished, bucket)
	}
	for bucket, entries := range unfinished {
		m.filesystemOf(bucket).resume(nil, entries)
	}
}

// mount serves root at mountpoint with cfg's options.
func mount(mountpoint string, root gofs.InodeEmbedder, cfg Config) (*fuse.Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	statTTL, negTTL := cfg.StatTTL, cfg.NegativeTTL
	opts := &gofs.Options{
		MountOptions: fuse.MountOptions{
			FsName:      fsName(cfg),
			Name:        "bucketfs",
			AllowOther:  cfg.AllowOther,
			DirectMount: true,
			// 1 MiB requests: fewer round trips through the kernel.
			MaxWrite:     maxRequest,
			MaxReadAhead: maxRequest,
			// Kernel read-ahead and async reads keep several requests of one
			// file in flight; our own read-ahead handles the rest.
			MaxBackground: 64,
			// Replies come from memory, never from a file descriptor: the
			// splice attempt would only cost a pipe resize per read.
			DisableSplice: true,
			Debug:         cfg.Debug,
		},
		EntryTimeout:    &statTTL,
		AttrTimeout:     &statTTL,
		NegativeTimeout: &negTTL,
		UID:             cfg.UID,
		GID:             cfg.GID,
	}
	if cfg.ReadOnly {
		opts.MountOptions.Options = append(opts.MountOptions.Options, "ro")
	}
	if cfg.AllowOther {
		// Permission checks by the kernel, against the modes we show and
		// the POSIX ACLs (which turn those checks on by themselves, so
		// they are asked for only here).
		opts.MountOptions.Options = append(opts.MountOptions.Options, "default_permissions")
		opts.MountOptions.EnableAcl = true
	}
	// gofs.Mount, with interrupts ignored (see ignoreInterrupts).
	server, err := fuse.NewServer(ignoreInterrupts{gofs.NewNodeFS(root, opts)}, mountpoint, &opts.MountOptions)
	if err != nil {
		return nil, err
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		return nil, err // as gofs.Mount: the serve loop ends with the failed mount
	}
	if err := setKernelReadAhead(mountpoint, maxRequest>>10); err != nil {
		cfg.Logger.Debug("kernel read-ahead stays at its default", "err", err)
	}
	return server, nil
}

// Drain prepares a shutdown: it stops new uploads, aborts the streams of
// files still open (no multipart upload is left behind), waits for the
// uploads that close and fsync started, and logs where the files still
// open for writing, or pending, keep their staged data: the former are
// not uploaded half-written, the latter stay in the journal for the next
// mount.
func (m *Mounted) Drain() {
	for _, f := range m.filesystems() {
		f.drain()
	}
}

// writeBackDrain bounds how long unmounting waits for write-back uploads;
// what is left stays pending in the journal for the next mount.
const writeBackDrain = 5 * time.Minute

func (f *filesystem) drain() {
	if !f.isClosing() && (f.cfg.WriteBack || f.pendingDeletes() > 0) {
		deadline := time.Now().Add(writeBackDrain)
		f.deleteBeforeUnmount(deadline)
		if f.cfg.WriteBack {
			f.uploadBeforeUnmount(deadline)
		}
	}
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		return
	}
	f.closing = true
	close(f.done)
	f.mu.Unlock()
	for _, l := range f.localsUnder("") {
		l.mu.Lock()
		var s *cache.Stream
		if l.handles > 0 {
			s = l.stopStream()
		}
		l.mu.Unlock()
		abortStream(s)
	}
	f.flushes.Wait()
	for _, l := range f.localsUnder("") {
		l.mu.Lock()
		switch {
		case l.state == statePending:
			f.log.Warn("pending at unmount: kept in the journal for the next mount", "key", l.key, "staged", l.staged.Path())
		case l.handles > 0 && l.needsUpload():
			f.log.Warn("still open for writing at shutdown: not uploaded; staged data kept", "key", l.key, "staged", l.staged.Path())
		}
		l.mu.Unlock()
	}
}

// beginFlush registers an upload; it fails once shutdown has begun.
func (f *filesystem) beginFlush() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return false
	}
	f.flushes.Add(1)
	f.counters.uploading.Add(1)
	return true
}

// endFlush ends what beginFlush registered.
func (f *filesystem) endFlush() {
	f.counters.uploading.Add(-1)
	f.flushes.Done()
}

// maxRequest is the largest read or write the kernel sends in one request.
const maxRequest = 1 << 20

// headers returns key's object with its headers, asking the bucket when the
// cache only has what a listing said.
func (f *filesystem) headers(ctx context.Context, key string) (backend.Object, error) {
	obj, err := f.bucket.Head(ctx, key)
	if err == nil && !obj.HasHeaders {
		if hf, ok := f.cfg.Bucket.(headerFetcher); ok {
			return hf.Fresh(ctx, key)
		}
	}
	return obj, err
}

// WithPosixMetadata sets the options of the metadata cache that follow a
// --posix-metadata policy. Which listings ask for headers: always (or
// ""), every one; auto, none until a sample finds POSIX headers (a listing
// with headers costs MinIO a metadata read per object, about as much as
// the listing itself); never, none. Under auto, a walk listed without
// headers samples a few of its directories, and shows their files by name
// only if none has POSIX headers (dirHandle.Lookup).
func WithPosixMetadata(policy string, opts cache.MetaOptions) cache.MetaOptions {
	opts.PlainListings = policy == "auto" || policy == "never"
	if policy == "auto" {
		opts.POSIXHeaders = hasPOSIXHeaders
	}
	return opts
}

// headerSampler is implemented by caches (cache.Meta) that can sample a
// listing's objects for their headers and prefetch the rest.
type headerSampler interface {
	HeaderSample(ctx context.Context, prefix string) ([]backend.Object, bool)
	PrefetchHeaders(prefix string)
	ListHeaders(ctx context.Context, prefix string) bool
	NamesOnly(key string) bool
	WalkHeaders(ctx context.Context, dir string) bool
	KeepSample(prefix string, sample []backend.Object)
}

// namesOnly tells whether READDIRPLUS gives key, a file of a walked
// directory, to the kernel by name and type only (cache.Meta.NamesOnly,
// which WithPosixMetadata turns on for auto alone).
func (f *filesystem) namesOnly(key string) bool {
	sampler, ok := f.cfg.Bucket.(headerSampler)
	return ok && f.localAt(key) == nil && !f.isDeleted(key) && sampler.NamesOnly(key)
}

// shownHeaders returns key's object as lookups, stat and open show it:
// with its headers, unless --posix-metadata says that what a listing said
// will do. Code that rewrites an object, or reads its user metadata, asks
// headers instead.
func (f *filesystem) shownHeaders(ctx context.Context, key string) (backend.Object, error) {
	obj, err := f.bucket.Head(ctx, key)
	if err != nil || obj.HasHeaders {
		return obj, err
	}
	sampler, ok := f.cfg.Bucket.(headerSampler)
	dir := parentPrefix(key)
	switch f.cfg.PosixMetadata {
	case "never":
		return obj, nil
	case "auto":
		if ok && sampler.WalkHeaders(ctx, dir) {
			// The walk's listings now carry every object's headers.
			if relisted, err := f.bucket.Head(ctx, key); err != nil || relisted.HasHeaders {
				return relisted, err
			}
		}
		if ok {
			sample, listed := sampler.HeaderSample(ctx, dir)
			f.noteACLs(sample)
			if listed && !slices.ContainsFunc(sample, hasPOSIXHeaders) {
				return obj, nil
			}
			if listed && sampler.ListHeaders(ctx, dir) {
				// The directory's listing now carries every object's headers.
				if relisted, err := f.bucket.Head(ctx, key); err != nil || relisted.HasHeaders {
					return relisted, err
				}
			}
		}
	}
	if ok {
		sampler.PrefetchHeaders(dir)
	}
	return f.headers(ctx, key)
}

// parentPrefix is backend.ParentPrefix.
var parentPrefix = backend.ParentPrefix

// errno maps err through the table, logging unknown causes once.
func (f *filesystem) errno(op, key string, err error) syscall.Errno {
	return toErrno(f.log, op, key, err)
}

func isNotFound(err error) bool { return errors.Is(err, backend.ErrNotFound) }

// fsName is what df and /proc/mounts show: the bucket, or the account.
func fsName(cfg Config) string {
	if cfg.Bucket == nil {
		return "bucketfs:all-buckets"
	}
	return "bucketfs:" + cfg.Bucket.Name()
}

// Close ends the readers the kernel never released (an unmount does not
// wait for the last releases), so that what they fetched is in the data
// cache before it closes. Call it once the mount is gone.
func (m *Mounted) Close() {
	for _, f := range m.filesystems() {
		for _, h := range f.openReaders() {
			h.closeReaders()
		}
	}
}
