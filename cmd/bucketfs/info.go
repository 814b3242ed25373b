package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
)

// infoXattrs are the S3 attributes `bucketfs info` asks for, those of
// objects and those of a bucket's root; a path has the ones that apply.
var infoXattrs = []string{
	"uri", "etag", "version_id", "storage_class", "sse", "sse_kms_key_id", "content_type", "acl",
	"presigned_url", "versions", "bucket", "region", "endpoint", "versioning", "policy",
}

// info prints every user.s3.* attribute of each path, then its user
// metadata. listxattr does not list the user.s3.* ones (so backups do not
// copy a presigned link), so this is how to see them all at once.
func info(paths []string, stdout, stderr io.Writer) error {
	failed := false
	for i, path := range paths {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "# file: %s\n", path)
		for _, name := range infoXattrs {
			value, err := getxattr(path, "user.s3."+name)
			if errors.Is(err, syscall.ENODATA) || errors.Is(err, syscall.ENOTSUP) {
				continue
			}
			if err != nil {
				fmt.Fprintf(stderr, "bucketfs info: %s: user.s3.%s: %v\n", path, name, err)
				failed = true
				continue
			}
			printAttr(stdout, "user.s3."+name, value)
		}
		names, err := listxattr(path)
		if err != nil {
			fmt.Fprintf(stderr, "bucketfs info: %s: %v\n", path, err)
			failed = true
			continue
		}
		for _, name := range names {
			if value, err := getxattr(path, name); err == nil {
				printAttr(stdout, name, value)
			}
		}
	}
	if failed {
		return errors.New("some attributes could not be read")
	}
	return nil
}

// printAttr prints "name: value", a value of several lines indented below
// its name.
func printAttr(w io.Writer, name, value string) {
	value = strings.TrimRight(value, "\n")
	if !strings.Contains(value, "\n") {
		fmt.Fprintf(w, "%s: %s\n", name, value)
		return
	}
	fmt.Fprintf(w, "%s:\n", name)
	for line := range strings.Lines(value) {
		fmt.Fprintf(w, "    %s", line)
	}
	fmt.Fprintln(w)
}

// listxattr returns the names of path's listed attributes.
func listxattr(path string) ([]string, error) {
	size, err := syscall.Listxattr(path, nil)
	if err != nil || size == 0 {
		return nil, err
	}
	buf := make([]byte, size+1024)
	n, err := syscall.Listxattr(path, buf)
	if err != nil {
		return nil, err
	}
	var names []string
	for name := range bytes.SplitSeq(buf[:n], []byte{0}) {
		if len(name) > 0 {
			names = append(names, string(name))
		}
	}
	return names, nil
}
