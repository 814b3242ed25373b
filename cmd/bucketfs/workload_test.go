package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// makeTree writes a small tree of files, a symlink and an empty directory.
func makeTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []struct{ path, body string }{
		{"a.txt", "alpha\n"}, {"sub/b.md", "# beta\n"}, {"sub/deep/c.bin", strings.Repeat("c", 70000)},
		{"sp ace/Zürich.txt", "unicode\n"},
	} {
		p := filepath.Join(dir, f.path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(f.body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "empty"), 0o700)
	os.Symlink("a.txt", filepath.Join(dir, "link"))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(filepath.Join(dir, "a.txt"), old, old)
	return dir
}

// sameTree compares two trees with diff and the attributes cp -a keeps.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	if out, err := exec.Command("diff", "-r", "--no-dereference", a, b).CombinedOutput(); err != nil {
		t.Errorf("trees differ: %v\n%s", err, out)
	}
	attrs := func(dir string) string {
		return sh(t, dir, "find . -printf '%p %y %m %TY-%Tm-%Td %l\\n' | LC_ALL=C sort")
	}
	if x, y := attrs(a), attrs(b); x != y {
		t.Errorf("attributes differ:\n%s\nvs\n%s", x, y)
	}
}

func TestWorkloads(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	mnt := mountBackground(t, srv, bucket)
	src := makeTree(t)

	t.Run("cp -a into the mount", func(t *testing.T) {
		sh(t, mnt, "cp -a '"+src+"' cpa")
		sameTree(t, src, filepath.Join(mnt, "cpa"))
		if got := mustGet(t, srv, bucket, "cpa/sub/deep/c.bin"); len(got.body) != 70000 {
			t.Errorf("c.bin: %d bytes", len(got.body))
		}
	})
	t.Run("tar xf into the mount, tar cf out of it", func(t *testing.T) {
		archive := filepath.Join(t.TempDir(), "t.tar")
		sh(t, src, "tar cf '"+archive+"' .")
		sh(t, mnt, "mkdir tarx && tar xf '"+archive+"' -C tarx")
		sameTree(t, src, filepath.Join(mnt, "tarx"))
		out := t.TempDir()
		sh(t, mnt, "tar cf - -C tarx . | tar xf - -C '"+out+"'")
		sameTree(t, src, out)
	})
	t.Run("rsync -a into the mount", func(t *testing.T) {
		sh(t, mnt, "rsync -a '"+src+"/' rs/")
		sameTree(t, src, filepath.Join(mnt, "rs"))
		// A second run finds nothing to send; a change is sent again.
		os.WriteFile(filepath.Join(src, "a.txt"), []byte("changed\n"), 0o640)
		if out := sh(t, mnt, "rsync -ai '"+src+"/' rs/"); !strings.Contains(out, "a.txt") || strings.Contains(out, "b.md") {
			t.Errorf("second rsync: %q", out)
		}
		if got := mustGet(t, srv, bucket, "rs/a.txt"); string(got.body) != "changed\n" {
			t.Errorf("rs/a.txt: %q", got.body)
		}
	})
	t.Run("editor save", func(t *testing.T) {
		// Write a temporary file, fsync it, rename it over the original.
		sh(t, mnt, "echo original > doc.txt")
		tmp := filepath.Join(mnt, ".doc.txt.swp")
		f, err := os.Create(tmp)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("edited\n")
		if err := f.Sync(); err != nil {
			t.Fatalf("fsync: %v", err)
		}
		if err := os.Rename(tmp, filepath.Join(mnt, "doc.txt")); err != nil {
			t.Fatalf("rename over: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Fatalf("close after rename: %v", err)
		}
		if got := mustGet(t, srv, bucket, "doc.txt"); string(got.body) != "edited\n" {
			t.Errorf("doc.txt: %q", got.body)
		}
		if _, ok := getObject(t, srv, bucket, ".doc.txt.swp"); ok {
			t.Error("the temporary file is still there")
		}
	})
	t.Run("git", func(t *testing.T) {
		sh(t, mnt, "mkdir repo && cd repo && git init -q && git config user.email t@e && git config user.name t && "+
			"echo one > f && git add f && git commit -qm first && echo two >> f && git commit -qam second")
		if got := sh(t, filepath.Join(mnt, "repo"), "git log --oneline | wc -l; git status --porcelain; git fsck --no-progress 2>&1 | grep -v dangling || true"); got != "2\n" {
			t.Errorf("git: %q", got)
		}
	})
	t.Run("sqlite3", func(t *testing.T) {
		out := sh(t, mnt, "sqlite3 db.sqlite 'create table t(x); insert into t values (1),(2),(3); select sum(x) from t;'")
		if strings.TrimSpace(out) != "6" {
			t.Errorf("sqlite3: %q", out)
		}
		if got := sh(t, mnt, "sqlite3 db.sqlite 'pragma integrity_check; select count(*) from t;'"); got != "ok\n3\n" {
			t.Errorf("sqlite3 reopen: %q", got)
		}
		if db := mustGet(t, srv, bucket, "db.sqlite"); !bytes.HasPrefix(db.body, []byte("SQLite format 3")) {
			t.Error("db.sqlite in S3 is not a database")
		}
	})
}

// TestFailedUploadKeepsData stops the server under a file being written:
// close fails, the staged data stays, and the next flush stores it.
func TestFailedUploadKeepsData(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	srv := startPrivateServer(t)
	bucket := newBucket(t, srv, nil)
	cacheDir := t.TempDir()
	mnt := mountBackground(t, srv, bucket, "--cache-dir", cacheDir)
	f, err := os.Create(filepath.Join(mnt, "precious.txt"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("do not lose me")
	srv.Stop()
	if err := f.Close(); !errors.Is(err, syscall.EIO) {
		t.Errorf("close with the server down: %v, want EIO", err)
	}
	staged := sh(t, cacheDir, "grep -rl 'do not lose me' . || true")
	if staged == "" {
		t.Fatal("the staged data is gone from --cache-dir")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The next flush (an fsync of a new descriptor) stores it.
	g, err := os.OpenFile(filepath.Join(mnt, "precious.txt"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Sync(); err != nil {
		t.Errorf("fsync after the server came back: %v", err)
	}
	g.Close()
	if got := mustGet(t, srv, bucket, "precious.txt"); string(got.body) != "do not lose me" {
		t.Errorf("stored %q", got.body)
	}
}

// TestFullCacheDir gives the mount a 2 MiB --cache-dir: writing more fails
// with ENOSPC, and nothing truncated reaches S3.
func TestFullCacheDir(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	cacheDir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", cacheDir).CombinedOutput(); err != nil {
		t.Fatalf("tmpfs for the cache dir: %v %s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(cacheDir, syscall.MNT_DETACH) })
	mnt := mountBackground(t, srv, bucket, "--cache-dir", cacheDir)
	err := os.WriteFile(filepath.Join(mnt, "huge"), make([]byte, 4<<20), 0o644)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("writing past a full cache dir: %v, want ENOSPC", err)
	}
	if obj, ok := getObject(t, srv, bucket, "huge"); ok {
		t.Errorf("a %d-byte object reached S3", len(obj.body))
	}
}
