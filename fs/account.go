package fs

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
)

// accountNode is the root of an --all-buckets mount: every bucket of the
// account is a directory; mkdir makes a bucket, rmdir deletes an empty one.
type accountNode struct {
	gofs.Inode
	account backend.Account
	cfg     Config // each bucket's, but for the bucket itself
	// wrap puts a bucket behind its metadata cache.
	wrap  func(backend.Bucket) backend.Bucket
	owner owner

	// mu protects the fields below.
	mu       sync.Mutex
	buckets  map[string]*filesystem // made on first lookup
	names    []string               // the bucket list, as of listedAt
	listedAt time.Time
}

// MountAccount mounts every bucket of account at mountpoint. cfg applies
// to each bucket (its Bucket and Prefix are not used); wrap gives each
// bucket its metadata cache.
func MountAccount(mountpoint string, account backend.Account, wrap func(backend.Bucket) backend.Bucket, cfg Config) (*Mounted, error) {
	root := &accountNode{account: account, cfg: cfg, wrap: wrap, buckets: map[string]*filesystem{},
		owner: newFilesystem(cfg).owner}
	server, err := mount(mountpoint, root, cfg)
	if err != nil {
		return nil, err
	}
	return &Mounted{Server: server, filesystems: root.filesystems, filesystemOf: root.bucketFS}, nil
}

func (a *accountNode) filesystems() []*filesystem {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*filesystem
	for _, f := range a.buckets {
		out = append(out, f)
	}
	return out
}

// bucketNames returns the account's buckets, listed at most once a TTL.
func (a *accountNode) bucketNames(ctx context.Context, fresh bool) ([]string, error) {
	a.mu.Lock()
	if !fresh && time.Since(a.listedAt) < a.cfg.StatTTL {
		defer a.mu.Unlock()
		return a.names, nil
	}
	a.mu.Unlock()
	names, err := a.account.Buckets(ctx)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.names, a.listedAt = names, time.Now()
	a.mu.Unlock()
	return names, nil
}

// bucketFS is name's filesystem, made once.
func (a *accountNode) bucketFS(name string) *filesystem {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f, ok := a.buckets[name]; ok {
		return f
	}
	cfg := a.cfg
	cfg.Bucket, cfg.Prefix, cfg.DataSpace = a.wrap(a.account.Bucket(name)), "", name
	f := newFilesystem(cfg)
	a.buckets[name] = f
	return f
}

func (a *accountNode) bucketChild(ctx context.Context, name string, out *fuse.EntryOut) *gofs.Inode {
	a.owner.attrOf(kindDir, backend.Object{}, &out.Attr)
	node := &dirNode{fs: a.bucketFS(name), bucketRoot: true}
	return a.NewInode(ctx, node, childAttr(a.EmbeddedInode(), name, kindDir))
}

var _ = (gofs.NodeLookuper)((*accountNode)(nil))

func (a *accountNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	names, err := a.bucketNames(ctx, false)
	if err == nil && !slices.Contains(names, name) {
		names, err = a.bucketNames(ctx, true) // made by someone else meanwhile?
	}
	if err != nil {
		return nil, toErrno(a.cfg.Logger, "lookup", name, err)
	}
	if !slices.Contains(names, name) {
		return nil, syscall.ENOENT
	}
	return a.bucketChild(ctx, name, out), 0
}

var _ = (gofs.NodeReaddirer)((*accountNode)(nil))

func (a *accountNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	names, err := a.bucketNames(ctx, true)
	if err != nil {
		return nil, toErrno(a.cfg.Logger, "readdir", "", err)
	}
	entries := make([]fuse.DirEntry, 0, len(names)+2)
	entries = append(entries, fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR}, fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR})
	for _, n := range names {
		entries = append(entries, fuse.DirEntry{Name: n, Mode: syscall.S_IFDIR})
	}
	return gofs.NewListDirStream(entries), 0
}

var _ = (gofs.NodeMkdirer)((*accountNode)(nil))

// Mkdir creates a bucket, in the account's region.
func (a *accountNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if !validBucketName(name) {
		return nil, syscall.EINVAL
	}
	err := a.account.CreateBucket(ctx, name)
	switch {
	case errors.Is(err, backend.ErrPrecondition):
		return nil, toErrno(a.cfg.Logger, "mkdir", name, nameTaken(err))
	case err != nil:
		return nil, toErrno(a.cfg.Logger, "mkdir", name, err)
	}
	a.bucketNames(ctx, true)
	return a.bucketChild(ctx, name, out), 0
}

var _ = (gofs.NodeRmdirer)((*accountNode)(nil))

// Rmdir deletes an empty bucket.
func (a *accountNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	err := a.account.DeleteBucket(ctx, name)
	if err != nil {
		return toErrno(a.cfg.Logger, "rmdir", name, err)
	}
	a.mu.Lock()
	delete(a.buckets, name)
	a.listedAt = time.Time{}
	a.mu.Unlock()
	return 0
}

var _ = (gofs.NodeGetattrer)((*accountNode)(nil))

func (a *accountNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a.owner.attrOf(kindDir, backend.Object{}, &out.Attr)
	return 0
}

var _ = (gofs.NodeStatfser)((*accountNode)(nil))

func (a *accountNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	statfs(out)
	return 0
}

// validBucketName applies S3's naming rules: 3 to 63 lower-case letters,
// digits, dots and hyphens, starting and ending with a letter or digit.
func validBucketName(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '.' && c != '-' || (i == 0 || i == len(name)-1) && !alnum {
			return false
		}
	}
	return !strings.Contains(name, "..")
}
