package fs

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/backend"
)

// FuzzDirEntries: any keys a bucket lists map to valid, unique names in
// their directory, each of which leads back to a listed key (or prefix);
// the rest are hidden. Never a panic. Keys are the input split at "\n".
func FuzzDirEntries(f *testing.F) {
	for _, seed := range []string{
		"p/a\np/b/c\np/b_$folder$", "p/a\np/a/x", "p//x\np/./y\np/../z\np/" + strings.Repeat("n", 300),
		"p/\x00\np/é\np/\xff\xfe\np/a\tb", "p/d/\np/d", "p/.__file__\np/x.__file__\np/x/",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		const prefix = "p/"
		var page backend.ListPage
		keys := map[string]bool{}
		for key := range strings.SplitSeq(input, "\n") {
			if !strings.HasPrefix(key, prefix) || keys[key] {
				continue
			}
			keys[key] = true
			if rest := key[len(prefix):]; strings.Contains(rest, "/") {
				p := prefix + rest[:strings.Index(rest, "/")+1]
				if !slices.Contains(page.Prefixes, p) {
					page.Prefixes = append(page.Prefixes, p)
				}
				continue
			}
			page.Objects = append(page.Objects, backend.Object{Key: key})
		}
		seen := map[string]bool{}
		for _, e := range dirEntries(prefix, page) {
			if !validName(e.Name) || seen[e.Name] {
				t.Fatalf("entry %q: invalid or repeated", e.Name)
			}
			seen[e.Name] = true
			name := e.Name
			if base, ok := unshadow(name); ok && e.Mode != syscall.S_IFDIR && !keys[prefix+name] {
				name = base
			}
			back := prefix + name
			if !keys[back] && !slices.Contains(page.Prefixes, back+"/") && !keys[back+legacyDirSuffix] {
				t.Fatalf("entry %q leads to no listed key", e.Name)
			}
		}
	})
}

// FuzzPOSIXHeaders: headers written by any other tool never crash the
// mount nor give an absurd mode: the type is the one decided, the rest
// permission bits.
func FuzzPOSIXHeaders(f *testing.F) {
	f.Add("33188", "1000", "1000", "1700000000.123456789", "text/plain")
	f.Add("0755", "-1", "4294967296", "1e9", "application/x-directory")
	f.Add("0x41ed", " 7 ", "", "-5.-3", "")
	f.Add("99999999999999999999", "0", "0", "1700000000.999999999999", "")
	f.Add("16877", "x", "y", ".5", "")
	o := owner{uid: 1, gid: 2, fileMode: 0o644, dirMode: 0o755, mountTime: time.Unix(1, 0)}
	f.Fuzz(func(t *testing.T, mode, uid, gid, mtime, contentType string) {
		obj := backend.Object{Key: "k", Size: 5, ContentType: contentType,
			Metadata: map[string]string{"mode": mode, "uid": uid, "gid": gid, "mtime": mtime}}
		k := objectKind(obj)
		var a fuse.Attr
		o.attrOf(k, obj, &a)
		if a.Mode&syscall.S_IFMT != uint32(k) || a.Mode&^(syscall.S_IFMT|07777) != 0 {
			t.Fatalf("mode %q gives %o for kind %o", mode, a.Mode, k)
		}
		h := (&filesystem{owner: o}).headersOf(k, obj)
		if h.mode != a.Mode {
			t.Fatalf("headers %o, attributes %o", h.mode, a.Mode)
		}
	})
}

// FuzzHeaderValue: any xattr value survives the trip through an HTTP
// header exactly, and what goes on the wire is printable ASCII.
func FuzzHeaderValue(f *testing.F) {
	for _, seed := range []string{"", "plain", " lead", "trail ", "\x00\xff\x13", "é", "=?UTF-8?B?AP8=?=", "=?x", strings.Repeat("é", 1000)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		enc := encodeHeaderValue(v)
		for i := 0; i < len(enc); i++ {
			if enc[i] < 0x20 || enc[i] > 0x7e {
				t.Fatalf("%q encodes to %q, not printable", v, enc)
			}
		}
		if got := decodeHeaderValue(enc); got != v {
			t.Fatalf("%q: encoded %q, decoded %q", v, enc, got)
		}
	})
}

// FuzzXattrNames: any name setfattr may send is accepted as metadata or
// refused with an errno, never a panic, and accepted names are lower-case
// metadata names outside the POSIX and user.s3 ones.
func FuzzXattrNames(f *testing.F) {
	for _, seed := range []string{"user.color", "user.s3.etag", "user.", "user.Mode", "security.selinux", "user.a\x00b", "user.ÄÖ"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, attr string) {
		name, errno := userXattr(attr)
		if errno != 0 {
			return
		}
		if name == "" || posixHeaders[name] || strings.HasPrefix(name, "s3.") || name != strings.ToLower(name) {
			t.Fatalf("%q accepted as metadata %q", attr, name)
		}
	})
}
