package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TestContentTypeFollowsRename: rsync, editors and downloaders write a
// temporary name and rename it; the object kept the temporary name's
// guess (application/octet-stream) forever, which breaks buckets that
// serve a website. A type that was the guess for the old name becomes
// the guess for the new one; one set on purpose stays. Checked with an
// independent client.
func TestContentTypeFollowsRename(t *testing.T) {
	srv := server(t)
	bucket := newBucket(t, srv, nil)
	_, mnt, _ := mountForeground(t, srv, bucket, "--part-size", "5MiB")
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "page.html"), []byte("<p>hi</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, mnt, "rsync '"+src+"/page.html' . && printf jpeg > .photo.jpg.Xy12Ab && mv .photo.jpg.Xy12Ab photo.jpg")
	// 20 MiB in 5 MiB parts: a multipart object.
	sh(t, mnt, "head -c 20971520 /dev/zero > big-file.txt && mv big-file.txt big-file.txt-copy")
	sh(t, mnt, "printf x > custom.dat && setfattr -n user.s3.content_type -v text/x-custom custom.dat && mv custom.dat custom.html")
	for key, want := range map[string]string{
		"page.html":         "text/html",
		"photo.jpg":         "image/jpeg",
		"big-file.txt-copy": "application/octet-stream",
		"custom.html":       "text/x-custom",
	} {
		if got := aws.ToString(headRaw(t, srv, bucket, key).ContentType); got != want {
			t.Errorf("%s: Content-Type %q, want %q", key, got, want)
		}
		if got := getx(t, filepath.Join(mnt, key), "user.s3.content_type"); got != want {
			t.Errorf("%s: the mount shows Content-Type %q, want %q", key, got, want)
		}
	}
}
