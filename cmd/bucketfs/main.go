// Command bucketfs mounts an S3 bucket as a directory.
package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/s3"
	"github.com/bucketfs/bucketfs/cache"
	"github.com/bucketfs/bucketfs/fs"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd, err := ParseArgs(args, os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bucketfs: %v (see bucketfs --help)\n", err)
		return 2
	}
	switch cmd.Kind {
	case KindVersion:
		fmt.Print(versionText())
		return 0
	case KindHelp:
		fmt.Print(Usage())
		return 0
	case KindPending:
		if err := pending(cmd.Pending, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintf(os.Stderr, "bucketfs pending: %v\n", err)
			return 1
		}
		return 0
	case KindInfo:
		if err := info(cmd.Info, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintf(os.Stderr, "bucketfs info: %v\n", err)
			return 1
		}
		return 0
	case KindPresign:
		if err := presign(cmd.Presign, os.Stdout, os.Stderr); err != nil {
			return 1
		}
		return 0
	}
	if err := mount(cmd.Mount); err != nil {
		fmt.Fprintf(os.Stderr, "bucketfs: %v\n", err)
		return 1
	}
	return 0
}

// mount checks everything it can before mounting, then mounts and serves
// until unmounted or signalled. Without --foreground it serves from a child
// process and returns once the child reports the mount ready.
func mount(opts Options) error {
	// One version listing per bucket would make every bucket's first look
	// a full listing of its history; refused until someone needs it.
	if !opts.AsOf.IsZero() && opts.AllBuckets {
		return errors.New("--as-of works on one bucket: it cannot be combined with --all-buckets")
	}
	for _, p := range []*string{&opts.Mountpoint, &opts.LogFile, &opts.CacheDir} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return err
			}
			*p = abs
		}
	}
	if err := checkMountpoint(opts.Mountpoint); err != nil {
		return err
	}
	if err := cache.PrepareCacheDir(opts.CacheDir, os.Getuid()); err != nil {
		return err
	}
	if err := checkLogFile(opts.LogFile); err != nil {
		return err
	}
	if !opts.Foreground && !isDaemonChild() {
		return startDaemon(opts)
	}
	ready := daemonReadyPipe()
	err := serve(opts, ready.f != nil, func() { ready.report(nil) })
	ready.report(err)
	return err
}

func checkMountpoint(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("mountpoint %s: %w", dir, errors.Unwrap(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("mountpoint %s is not a directory", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mountpoint %s: %w", dir, errors.Unwrap(err))
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err != io.EOF {
		if err == nil {
			return fmt.Errorf("mountpoint %s is not empty", dir)
		}
		return fmt.Errorf("mountpoint %s: %w", dir, err)
	}
	return nil
}

// serve connects, mounts, calls ready, and blocks until the mount is gone.
func serve(opts Options, background bool, ready func()) error {
	log, closeLog, err := newLogger(opts, background)
	if err != nil {
		return err
	}
	defer closeLog.Close()
	slog.SetDefault(log)
	procs := newProcs()
	// Read-ahead buffers are the heap's bulk; a soft limit makes the GC
	// return them before RSS grows past what the budget intends (with 48
	// MiB beside the budget, 4 readers peaked at 153 MiB; with 36, at 143).
	debug.SetMemoryLimit(max(readBudget(opts), 64<<20) + 36<<20)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s3cfg := s3.Config{
		Bucket:         opts.Bucket,
		Endpoint:       opts.EndpointURL,
		Region:         opts.Region,
		Profile:        opts.Profile,
		PathStyle:      opts.PathStyle,
		ListingHeaders: opts.ListingHeaders,
		Logger:         log,
	}
	metrics := newMountMetrics(opts.prices(), log)
	s3cfg.Observe = metrics.observe
	withCache := func(b backend.Bucket, client interface{ BytesRead() int64 }) backend.Bucket {
		meta := cache.NewMeta(b, fs.WithPosixMetadata(opts.posixMetadata(), cache.MetaOptions{
			TTL:         opts.StatTTL,
			NegativeTTL: opts.NegativeTTL,
			Entries:     opts.CacheEntries,
			// Servers without listing metadata need a HEAD per listed
			// file; this many run at once after a listing.
			HeaderPrefetch: 16,
		}))
		metrics.buckets.add(source{bucket: client, cache: meta})
		return meta
	}
	var (
		account          *s3.Account
		bucket           *s3.Bucket
		endpoint, region string
	)
	if opts.AllBuckets {
		if account, err = s3.NewAccount(ctx, s3cfg); err != nil {
			return err
		}
		if err := account.CheckAccess(ctx); err != nil {
			return err
		}
		endpoint, region = account.Endpoint(), account.Region()
	} else {
		if bucket, err = s3.New(ctx, s3cfg); err != nil {
			return err
		}
		if err := bucket.CheckBucket(ctx); err != nil {
			return err
		}
		endpoint, region = bucket.Endpoint(), bucket.Region()
	}
	// Each mount stages in its own journal, locked while it runs; what an
	// earlier mount of the bucket left there is taken over once mounted.
	journal, err := cache.OpenJournal(opts.CacheDir, journalID(endpoint, cmp.Or(opts.Bucket, "all-buckets")))
	if err != nil {
		return fmt.Errorf("cache dir: %w", err)
	}
	defer journal.Close()
	data, err := cache.OpenDataCache(opts.CacheDir, journalID(endpoint, cmp.Or(opts.Bucket, "all-buckets")),
		cache.DataOptions{Keep: opts.CacheSize, Whole: opts.FetchWhole, Logger: log})
	if err != nil {
		return fmt.Errorf("cache dir: %w", err)
	}
	defer data.Close()
	if opts.MetricsAddr != "" {
		stop, err := metrics.serve(opts.MetricsAddr)
		if err != nil {
			return err
		}
		defer stop()
	}
	cfg := fs.Config{
		Prefix:        opts.Prefix,
		UID:           opts.UID,
		GID:           opts.GID,
		FileMode:      opts.FileMode,
		DirMode:       opts.DirMode,
		StatTTL:       opts.StatTTL,
		NegativeTTL:   opts.NegativeTTL,
		ReadOnly:      opts.ReadOnly || !opts.AsOf.IsZero(),
		AllowOther:    opts.AllowOther,
		WriteBack:     opts.WriteBack,
		Passthrough:   canPassThrough(),
		ReadAhead:     opts.ReadAhead,
		PosixMetadata: opts.posixMetadata(),
		ReadBudget:    procs.follow(cache.NewBudget(readBudget(opts))),
		DataCache:     data,
		Staging:       journal.Staging,
		Journal:       journal,
		Defaults: fs.UploadDefaults{
			StorageClass: opts.StorageClass, SSE: opts.SSE, SSEKMSKeyID: opts.SSEKMSKeyID, ACL: opts.ACL,
		},
		PresignExpiry: opts.PresignExpiry,
		Endpoint:      endpoint,
		Region:        region,
		Upload: cache.UploadOptions{
			PartSize:    opts.PartSize,
			Concurrency: opts.UploadConcurrency,
			Logger:      log,
		},
		StatsReport: metrics.report,
		Logger:      log,
		Debug:       opts.Debug,
	}
	var server *fs.Mounted
	if account != nil {
		server, err = fs.MountAccount(opts.Mountpoint, account, func(b backend.Bucket) backend.Bucket {
			return withCache(b, b.(*s3.Bucket))
		}, cfg)
	} else {
		var b backend.Bucket = bucket
		if !opts.AsOf.IsZero() {
			b = backend.AsOf(bucket, opts.AsOf)
		}
		cfg.Bucket = withCache(b, bucket)
		// Before the mount shows: lookups that came while it ran would
		// list the same directories again.
		warm(ctx, cfg.Bucket.(*cache.Meta), opts.Prefix, log)
		server, err = fs.Mount(opts.Mountpoint, cfg)
	}
	if err != nil {
		return fmt.Errorf("mount %s: %w", opts.Mountpoint, err)
	}
	metrics.mounted.Store(server)
	log.Info("mounted", "bucket", opts.Bucket, "prefix", opts.Prefix, "mountpoint", opts.Mountpoint)
	ready()
	notifySystemd(log, daemon.SdNotifyReady)
	if !cfg.ReadOnly {
		recovered := journal.Recover()
		for _, p := range recovered.Problems {
			log.Error("journal", "problem", p)
		}
		server.Resume(recovered)
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	stopped := make(chan struct{})
	go func() {
		sig := <-signals
		notifySystemd(log, daemon.SdNotifyStopping)
		log.Info("finishing uploads, then unmounting", "signal", sig.String())
		server.Drain()
		unmount(server, opts.Mountpoint, log)
		close(stopped)
	}()
	waited := make(chan struct{})
	go func() { server.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-stopped:
		// A busy mount was detached: files still open keep it alive, but
		// everything that can be saved is, and the rest is staged.
		select {
		case <-waited:
		case <-time.After(2 * time.Second):
		}
	}
	notifySystemd(log, daemon.SdNotifyStopping)
	server.Drain() // after umount: say what stays pending for the next mount
	server.Close() // readers the kernel never released: their data is kept
	log.Info("unmounted", "mountpoint", opts.Mountpoint)
	return nil
}

// warmTimeout bounds how long a mount waits for its first listings.
const warmTimeout = 5 * time.Second

// warm lists the mount's root and its first directories, so that the
// first `ls` or `cat dir/file` of a fresh mount costs no LIST. A failure
// only leaves them to the first lookups.
func warm(ctx context.Context, meta *cache.Meta, prefix string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, warmTimeout)
	defer cancel()
	if err := meta.Warm(ctx, prefix); err != nil {
		log.Debug("first listings left to the first lookups", "err", err)
	}
}

// journalID names a bucket's journals under --cache-dir: only a mount of
// the same bucket on the same endpoint replays them.
func journalID(endpoint, bucket string) string {
	sum := sha256.Sum256([]byte(endpoint + "\x00" + bucket))
	return fmt.Sprintf("%s-%x", bucket, sum[:4])
}

// unmount detaches the mount; a busy mount is detached lazily so that a
// signal always ends the process.
func unmount(server interface{ Unmount() error }, mountpoint string, log *slog.Logger) {
	if err := server.Unmount(); err != nil {
		log.Warn("unmount failed, detaching lazily", "err", err)
		if err := syscall.Unmount(mountpoint, syscall.MNT_DETACH); err != nil {
			log.Error("lazy unmount failed", "err", err)
		}
	}
}

// canPassThrough tells whether this process may register backing files
// for FUSE passthrough, which the kernel allows with CAP_SYS_ADMIN only.
func canPassThrough() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Effective&(1<<unix.CAP_SYS_ADMIN) != 0
}

// readBudget bounds the read-ahead buffers of the mount: one file reading
// ahead at full speed (a window and a chunk) with room to spare, shared
// equally by the files reading ahead at once, so RSS stays under 150 MiB
// with four parallel readers (it reached 194 MiB with twice the window).
func readBudget(opts Options) int64 { return opts.ReadAhead * 3 / 2 }
