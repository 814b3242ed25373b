package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

// fileTimes are an object's x-amz-meta-atime, -mtime and -ctime, read
// with an independent client (0 when absent).
type fileTimes struct{ atime, mtime, ctime float64 }

func timesOf(t *testing.T, srv *miniotest.Server, bucket, key string) fileTimes {
	t.Helper()
	m := headRaw(t, srv, bucket, key).Metadata
	num := func(name string) float64 {
		v, _ := strconv.ParseFloat(m[name], 64)
		return v
	}
	return fileTimes{num("atime"), num("mtime"), num("ctime")}
}

// TestAtimeAndCtime: atime and ctime are read as s3fs writes them and
// written on every object the mount creates or changes. ctime moves at
// every change of data or headers and never back; chmod, chown and
// setfattr (and -x) move only it; touch -a and touch -m move their own
// time (and ctime); mv moves the file's ctime; a write or truncate moves
// mtime and ctime. Directories and symlinks carry them too.
// Without the headers, atime and ctime are the mtime (they were 0: 1970).
func TestAtimeAndCtime(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, map[string]object{
		"by-s3fs": {body: []byte("x"), meta: map[string]string{"mode": "33188", "mtime": "1600000000", "atime": "1600000100", "ctime": "1600000200"}},
		"plain":   {body: []byte("x")},
	})
	_, mnt, _ := mountForeground(t, srv, bucket)
	stat := func(name string) []string {
		t.Helper()
		return strings.Fields(sh(t, mnt, "stat -c '%X %Y %Z' "+name))
	}
	if got := stat("by-s3fs"); strings.Join(got, " ") != "1600000100 1600000000 1600000200" {
		t.Errorf("s3fs's times: atime mtime ctime = %v", got)
	}
	if got := stat("plain"); got[0] != got[1] || got[2] != got[1] || got[1] == "0" {
		t.Errorf("an object without time headers: atime mtime ctime = %v; want the mtime thrice", got)
	}

	sh(t, mnt, "printf data > f")
	prev := timesOf(t, srv, bucket, "f")
	if prev.atime == 0 || prev.atime > prev.mtime || prev.ctime != prev.mtime {
		t.Fatalf("a created file's headers: %+v; want all three, atime the creation's, mtime and ctime the write's", prev)
	}
	steps := []struct {
		command, key        string
		atime, mtime, ctime string // "same", "moved" or a value
	}{
		{"chmod 600 f", "f", "same", "same", "moved"},
		{"chown 12:34 f", "f", "same", "same", "moved"},
		{"setfattr -n user.color -v red f", "f", "same", "same", "moved"},
		{"setfattr -x user.color f", "f", "same", "same", "moved"},
		{"touch -a -d @1650000000 f", "f", "1650000000", "same", "moved"},
		{"touch -m -d @1660000000 f", "f", "same", "1660000000", "moved"},
		{"mv f g", "g", "same", "same", "moved"},
		{"printf more >> g", "g", "same", "moved", "moved"},
		{"truncate -s 2 g", "g", "same", "moved", "moved"},
	}
	for _, s := range steps {
		sh(t, mnt, s.command)
		now := timesOf(t, srv, bucket, s.key)
		check := func(what, rule string, before, after float64) {
			switch rule {
			case "same":
				if after != before {
					t.Errorf("%s: %s went from %f to %f; want it kept", s.command, what, before, after)
				}
			case "moved":
				if after <= before {
					t.Errorf("%s: %s went from %f to %f; want it later", s.command, what, before, after)
				}
			default:
				if want, _ := strconv.ParseFloat(rule, 64); after != want {
					t.Errorf("%s: %s is %f; want %s", s.command, what, after, rule)
				}
			}
		}
		check("atime", s.atime, prev.atime, now.atime)
		check("mtime", s.mtime, prev.mtime, now.mtime)
		check("ctime", s.ctime, prev.ctime, now.ctime)
		prev = now
	}
	// Directories (their markers) and symlinks carry all three too.
	sh(t, mnt, "mkdir dir && ln -s g link")
	for _, key := range []string{"dir/", "link"} {
		if tm := timesOf(t, srv, bucket, key); tm.atime == 0 || tm.mtime == 0 || tm.ctime == 0 {
			t.Errorf("%s: times %+v; want all three", key, tm)
		}
	}
}
