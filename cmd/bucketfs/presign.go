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

	"golang.org/x/sync/errgroup"
)

// presign prints "PATH<TAB>URL" for each path. The mount signs the URLs:
// it holds the credentials, so this needs none. It asks through an xattr
// that fs serves (see fs/xattr.go, presignXattr), a few at a time: each
// answer is a round trip through the kernel, and two cores sign faster
// than one.
func presign(p PresignOptions, stdout, stderr io.Writer) error {
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	s := &presigner{method: p.Method, seconds: int(p.Expires.Seconds()), out: out, stderr: stderr}
	for _, path := range p.Paths {
		s.path(path, p.Recursive)
	}
	s.flush()
	if s.failed {
		return errors.New("some paths were not presigned")
	}
	return nil
}

// presignBatch is how many URLs are asked for before they are printed, in
// order; presignWorkers ask at once.
const (
	presignBatch   = 1024
	presignWorkers = 4
)

type presigner struct {
	method  string
	seconds int
	out     *bufio.Writer
	stderr  io.Writer
	failed  bool
	batch   []request
}

// request is one URL to ask for: for path, the attribute attr of on.
type request struct {
	path, on, attr string
	url            string
	err            error
}

func (s *presigner) fail(err error) {
	s.flush()
	fmt.Fprintf(s.stderr, "bucketfs presign: %v\n", err)
	s.failed = true
}

func (s *presigner) file(path string) {
	s.add(request{path: path, on: path, attr: fmt.Sprintf("user.s3.presign:%s:%d", s.method, s.seconds)})
}

func (s *presigner) path(path string, recursive bool) {
	st, err := os.Lstat(path)
	switch {
	case err == nil && st.Mode().IsRegular():
		s.file(path)
	case err == nil && st.IsDir() && recursive:
		err := filepath.WalkDir(path, func(p string, d iofs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				s.file(p)
			}
			return nil
		})
		if err != nil {
			s.fail(err)
		}
	case err == nil && st.IsDir():
		s.fail(fmt.Errorf("%s is a directory (use -r)", path))
	case err == nil:
		s.fail(fmt.Errorf("%s is not a regular file", path))
	case errors.Is(err, iofs.ErrNotExist) && s.method == "PUT":
		// An upload URL for a file that does not exist yet: the directory
		// it would be in signs it.
		s.add(request{path: path, on: filepath.Dir(path), attr: fmt.Sprintf("user.s3.presign:PUT:%d:%s", s.seconds, filepath.Base(path))})
	default:
		s.fail(err)
	}
}

func (s *presigner) add(r request) {
	s.batch = append(s.batch, r)
	if len(s.batch) == presignBatch {
		s.flush()
	}
}

// flush asks for the batch's URLs and prints them in order.
func (s *presigner) flush() {
	var g errgroup.Group
	g.SetLimit(presignWorkers)
	for i := range s.batch {
		g.Go(func() error {
			s.batch[i].url, s.batch[i].err = ask(s.batch[i])
			return nil
		})
	}
	g.Wait()
	for _, r := range s.batch {
		if r.err != nil {
			s.out.Flush()
			fmt.Fprintf(s.stderr, "bucketfs presign: %v\n", r.err)
			s.failed = true
			continue
		}
		fmt.Fprintf(s.out, "%s\t%s\n", r.path, r.url)
	}
	s.batch = s.batch[:0]
}

// ask gets one URL from the mount.
func ask(r request) (string, error) {
	buf := make([]byte, 2048)
	for {
		n, err := syscall.Getxattr(r.on, r.attr, buf)
		switch {
		case errors.Is(err, syscall.ERANGE):
			buf = make([]byte, 2*len(buf))
			continue
		case errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.ENODATA):
			return "", fmt.Errorf("%s is not on a bucketfs mount", r.path)
		case err != nil:
			return "", fmt.Errorf("%s: %w", r.path, err)
		}
		return string(buf[:n]), nil
	}
}
