package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestAsOf mounts a versioned and an unversioned bucket as they were
// between two rounds of writes. S3 keeps Last-Modified to the second on
// HEAD, so the rounds are a second apart on either side of the time.
func TestAsOf(t *testing.T) {
	srv := server(t)
	// versitygw v1.8.0 dates a replaced version by its replacement and a
	// delete marker by the deleted version.
	needs(t, srv, "true Last-Modified times of old versions and delete markers")
	ctx := context.Background()
	versioned := newBucket(t, srv, nil)
	_, err := srv.Client().PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(versioned),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
	if err != nil {
		t.Fatal(err)
	}
	plain := newBucket(t, srv, nil)
	putObject(t, srv, versioned, "a.txt", object{body: []byte("a, version one")})
	putObject(t, srv, versioned, "b.txt", object{body: []byte("b, version one")})
	putObject(t, srv, plain, "x.txt", object{body: []byte("x")})

	time.Sleep(1100 * time.Millisecond)
	at := time.Now().UTC().Truncate(time.Second)
	time.Sleep(1100 * time.Millisecond)

	putObject(t, srv, versioned, "a.txt", object{body: []byte("a, version two")})
	if err := deleteObject(srv, versioned, "b.txt"); err != nil {
		t.Fatal(err)
	}
	putObject(t, srv, versioned, "c.txt", object{body: []byte("c")})
	putObject(t, srv, versioned, "later/d.txt", object{body: []byte("d")})
	putObject(t, srv, plain, "y.txt", object{body: []byte("y")})

	mnt := mountBackground(t, srv, versioned, "--as-of", at.Format(time.RFC3339))
	if got := sh(t, mnt, "ls -A"); got != "a.txt\nb.txt\n" {
		t.Errorf("ls = %q, want a.txt and b.txt only", got)
	}
	for name, want := range map[string]string{"a.txt": "a, version one", "b.txt": "b, version one"} {
		if got, err := os.ReadFile(filepath.Join(mnt, name)); err != nil || string(got) != want {
			t.Errorf("read %s = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"c.txt", "later"} {
		if _, err := os.Stat(filepath.Join(mnt, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat %s = %v, want it absent", name, err)
		}
	}
	if got := sh(t, mnt, "stat -c %s a.txt"); strings.TrimSpace(got) != "14" {
		t.Errorf("size of a.txt = %s, want 14", got)
	}
	if err := os.WriteFile(filepath.Join(mnt, "new.txt"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write = %v, want EROFS", err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "a.txt"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("overwrite = %v, want EROFS", err)
	}

	// Unversioned: every object is version "null", the view the objects
	// written by then.
	mnt = mountBackground(t, srv, plain, "--as-of", at.Format(time.RFC3339))
	if got := sh(t, mnt, "ls -A"); got != "x.txt\n" {
		t.Errorf("ls of the unversioned bucket = %q, want x.txt only", got)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "x.txt")); err != nil || string(got) != "x" {
		t.Errorf("read x.txt = %q, %v; want \"x\"", got, err)
	}
}
