package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// presign prints "PATH<TAB>URL" for each path. The mount signs the URLs:
// it holds the credentials, so this needs none. It asks through an xattr
// that fs serves (see fs/xattr.go, presignXattr).
func presign(p PresignOptions, stdout, stderr io.Writer) error {
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	s := presigner{method: p.Method, seconds: int(p.Expires.Seconds()), out: out, buf: make([]byte, 2048)}
	failed := false
	for _, path := range p.Paths {
		if err := s.path(path, p.Recursive); err != nil {
			out.Flush()
			fmt.Fprintf(stderr, "bucketfs presign: %v\n", err)
			failed = true
		}
	}
	if failed {
		return errors.New("some paths were not presigned")
	}
	return nil
}

type presigner struct {
	method  string
	seconds int
	out     *bufio.Writer
	buf     []byte
}

func (s *presigner) path(path string, recursive bool) error {
	st, err := os.Lstat(path)
	switch {
	case err == nil && st.Mode().IsRegular():
		return s.one(path, path, fmt.Sprintf("user.s3.presign:%s:%d", s.method, s.seconds))
	case err == nil && st.IsDir() && recursive:
		return filepath.WalkDir(path, func(p string, d iofs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				return s.one(p, p, fmt.Sprintf("user.s3.presign:%s:%d", s.method, s.seconds))
			}
			return nil
		})
	case err == nil && st.IsDir():
		return fmt.Errorf("%s is a directory (use -r)", path)
	case err == nil:
		return fmt.Errorf("%s is not a regular file", path)
	case errors.Is(err, iofs.ErrNotExist) && s.method == "PUT":
		// An upload URL for a file that does not exist yet: the directory
		// it would be in signs it.
		return s.one(path, filepath.Dir(path), fmt.Sprintf("user.s3.presign:PUT:%d:%s", s.seconds, filepath.Base(path)))
	default:
		return err
	}
}

// one asks the mount at on for a URL and prints it for path.
func (s *presigner) one(path, on, attr string) error {
	for {
		n, err := syscall.Getxattr(on, attr, s.buf)
		switch {
		case errors.Is(err, syscall.ERANGE):
			s.buf = make([]byte, 2*len(s.buf))
			continue
		case errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.ENODATA):
			return fmt.Errorf("%s is not on a bucketfs mount", path)
		case err != nil:
			return fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintf(s.out, "%s\t%s\n", path, s.buf[:n])
		return nil
	}
}
