package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// PrepareCacheDir makes sure dir can hold staged data and the journal
// without another local user reading it, replacing it, or pointing it
// elsewhere: it is created 0700 when missing; an existing one must be a
// real directory (not a symlink), owned by uid, and writable by nobody
// else. What bucketfs keeps in it goes into folders it creates 0700.
func PrepareCacheDir(dir string, uid int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cache dir: %w", err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("cache dir: %w", err)
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("cache dir %s is a symlink; give its target instead", dir)
	case !st.IsDir():
		return fmt.Errorf("cache dir %s is not a directory", dir)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return errors.New("cache dir: no owner information")
	}
	if int(sys.Uid) != uid {
		return fmt.Errorf("cache dir %s belongs to uid %d, not to the mounting user (%d)", dir, sys.Uid, uid)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("cache dir %s is writable by other users (mode %04o); chmod 700 it", dir, st.Mode().Perm())
	}
	return nil
}
