package fs

import (
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
)

func TestParseMode(t *testing.T) {
	tests := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"33188", 0o100644, true}, // s3fs writes decimal
		{"0644", 0o644, true},     // a leading 0 means octal, like strtol(s, 0)
		{"0x1ed", 0o755, true},
		{" 16877 ", 0o40755, true},
		{"", 0, false},
		{"rwx", 0, false},
		{"-1", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseMode(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseMode(%q) = %o, %v; want %o, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseMtime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1700000000", time.Unix(1700000000, 0), true},
		{"1700000000.5", time.Unix(1700000000, 500000000), true},
		{"1700000000.123456789", time.Unix(1700000000, 123456789), true},
		{"1700000000.1234567891234", time.Unix(1700000000, 123456789), true},
		{"1700000000.000001", time.Unix(1700000000, 1000), true},
		{"abc", time.Time{}, false},
		{"1.x", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := parseMtime(tt.in)
		if ok != tt.ok || (ok && !got.Equal(tt.want)) {
			t.Errorf("parseMtime(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestObjectKind(t *testing.T) {
	tests := []struct {
		name string
		obj  backend.Object
		want kind
	}{
		{"plain", backend.Object{Key: "a"}, kindFile},
		{"marker", backend.Object{Key: "a/"}, kindDir},
		{"s3fs slashless dir", backend.Object{Key: "a", ContentType: "application/x-directory"}, kindDir},
		{"dir mode", backend.Object{Key: "a", Metadata: map[string]string{"mode": "16877"}}, kindDir},
		{"symlink", backend.Object{Key: "a", Metadata: map[string]string{"mode": "41471"}}, kindSymlink},
		{"fifo", backend.Object{Key: "a", Metadata: map[string]string{"mode": "4516"}}, kindFIFO},
		{"mode without type", backend.Object{Key: "a", Metadata: map[string]string{"mode": "493"}}, kindFile},
	}
	for _, tt := range tests {
		if got := objectKind(tt.obj); got != tt.want {
			t.Errorf("%s: objectKind = %o, want %o", tt.name, got, tt.want)
		}
	}
}

func TestAttrOf(t *testing.T) {
	o := owner{uid: 1000, gid: 100, fileMode: 0o644, dirMode: 0o755, mountTime: time.Unix(5, 0)}
	lm := time.Unix(1600000000, 0)
	var a fuse.Attr
	o.attrOf(kindFile, backend.Object{Key: "f", Size: 1000, LastModified: lm}, &a)
	if a.Mode != syscall.S_IFREG|0o644 || a.Uid != 1000 || a.Gid != 100 || a.Size != 1000 || a.Mtime != uint64(lm.Unix()) || a.Blocks != 2 {
		t.Errorf("defaults: %+v", a)
	}
	o.attrOf(kindFile, backend.Object{Key: "f", LastModified: lm, Metadata: map[string]string{
		"mode": "33261", "uid": "7", "gid": "8", "mtime": "1700000000.250000000",
	}}, &a)
	if a.Mode != syscall.S_IFREG|0o755 || a.Uid != 7 || a.Gid != 8 || a.Mtime != 1700000000 || a.Mtimensec != 250000000 {
		t.Errorf("headers: %+v", a)
	}
	o.attrOf(kindDir, backend.Object{}, &a)
	if a.Mode != syscall.S_IFDIR|0o755 || a.Mtime != 5 {
		t.Errorf("implicit dir: %+v", a)
	}
}

func TestDirEntries(t *testing.T) {
	page := backend.ListPage{
		Prefixes: []string{"p/a/", "p/dup/", "p//", "p/../", "p/implicit/"},
		Objects: []backend.Object{
			{Key: "p/"},                // the directory's own marker
			{Key: "p/dup"},             // file shadowed by dir p/dup/
			{Key: "p/file.txt"},        //
			{Key: "p/legacy_$folder$"}, // s3fs legacy marker
			{Key: "p/."},
		},
	}
	var got []string
	for _, e := range dirEntries("p/", page) {
		kind := "f"
		if e.Mode == syscall.S_IFDIR {
			kind = "d"
		}
		got = append(got, kind+":"+e.Name)
	}
	slices.Sort(got)
	want := []string{"d:a", "d:dup", "d:implicit", "d:legacy", "f:dup.__file__", "f:file.txt"}
	if !slices.Equal(got, want) {
		t.Errorf("entries = %v, want %v", got, want)
	}
}

func TestValidName(t *testing.T) {
	long := string(make([]byte, 256))
	for name, want := range map[string]bool{"a": true, "": false, ".": false, "..": false, "a b ü": true, long: false} {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v", name, got)
		}
	}
	if base, ok := unshadow("x.__file__"); !ok || base != "x" {
		t.Errorf("unshadow = %q, %v", base, ok)
	}
}

func TestRenamedContentType(t *testing.T) {
	for _, c := range []struct {
		current, from, to, want string
		changes                 bool
	}{
		{"application/octet-stream", "d/.photo.jpg.Xy12Ab", "d/photo.jpg", "image/jpeg", true},
		{"text/plain", "big-file.txt", "big-file.txt-copy", "application/octet-stream", true},
		{"", "a", "a.html", "text/html", true},
		{"binary/octet-stream", "a", "a.png", "image/png", true},
		{"text/x-custom", "custom.dat", "custom.html", "text/x-custom", false},
		{"text/html", "a.html", "b.htm", "text/html", false},
	} {
		got, changes := renamedContentType(c.current, c.from, c.to)
		if got != c.want || changes != c.changes {
			t.Errorf("renamedContentType(%q, %q, %q) = %q, %v; want %q, %v", c.current, c.from, c.to, got, changes, c.want, c.changes)
		}
	}
}
