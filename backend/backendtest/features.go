package backendtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
)

// Storage settings, versions, ACLs, presigned URLs and the bucket-wide
// settings. A presigned URL that is not http(s) (the memory bucket's
// memory://) cannot be fetched; the HTTP checks are skipped for it.

func testSSE(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	key := prefix + "encrypted"
	data := "secret"
	obj, err := b.Put(ctx, backend.PutInput{Key: key, Body: strings.NewReader(data), Size: int64(len(data)), SSE: "AES256"})
	if err != nil {
		t.Fatalf("Put with SSE: %v", err)
	}
	if obj.SSE != "AES256" {
		t.Errorf("Put with SSE AES256 returned SSE %q", obj.SSE)
	}
	head, err := b.Head(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	checkObject(t, "Head", head, key, data)
	if head.SSE != "AES256" || head.SSEKMSKeyID != "" {
		t.Errorf("Head SSE, KMS key = %q, %q; want AES256 and none", head.SSE, head.SSEKMSKeyID)
	}
	got, gobj, err := get(t, b, backend.GetInput{Key: key, Length: -1})
	if err != nil || got != data || gobj.SSE != "AES256" {
		t.Errorf("Get = %q, SSE %q, %v; want %q, AES256", got, gobj.SSE, err, data)
	}

	put(t, b, prefix+"plain", "plain")
	if head, err := b.Head(ctx, prefix+"plain"); err != nil || head.SSE != "" {
		t.Errorf("Head of an object stored without SSE: SSE %q, %v; want none", head.SSE, err)
	}
}

func testStorageClass(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	key := prefix + "rrs"
	if _, err := b.Put(ctx, backend.PutInput{Key: key, Body: strings.NewReader("x"), Size: 1, StorageClass: "REDUCED_REDUNDANCY"}); err != nil {
		t.Fatalf("Put with a storage class: %v", err)
	}
	if head, err := b.Head(ctx, key); err != nil || head.StorageClass != "REDUCED_REDUNDANCY" {
		t.Errorf("Head StorageClass = %q, %v; want REDUCED_REDUNDANCY", head.StorageClass, err)
	}
	put(t, b, prefix+"standard", "x")
	if head, err := b.Head(ctx, prefix+"standard"); err != nil || head.StorageClass != "STANDARD" {
		t.Errorf("Head StorageClass of a default put = %q, %v; want STANDARD", head.StorageClass, err)
	}
}

// testCopySettings checks that a copy takes the storage settings it is
// given, and only those: S3 does not carry them over from the source.
func testCopySettings(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	src, data := prefix+"src", "settings"
	_, err := b.Put(ctx, backend.PutInput{Key: src, Body: strings.NewReader(data), Size: int64(len(data)),
		StorageClass: "REDUCED_REDUNDANCY", SSE: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		in         backend.CopyInput
		class, sse string
	}{
		{"defaults", backend.CopyInput{Src: src, Dst: prefix + "defaults"}, "STANDARD", ""},
		{"kept", backend.CopyInput{Src: src, Dst: prefix + "kept", SrcSize: int64(len(data)),
			StorageClass: "REDUCED_REDUNDANCY", SSE: "AES256"}, "REDUCED_REDUNDANCY", "AES256"},
		{"kept after a HEAD", backend.CopyInput{Src: src, Dst: prefix + "kept-head",
			StorageClass: "REDUCED_REDUNDANCY", SSE: "AES256"}, "REDUCED_REDUNDANCY", "AES256"},
		// In place, as setfattr user.s3.storage_class and user.s3.sse do.
		{"in place", backend.CopyInput{Src: src, Dst: src, SrcSize: int64(len(data)),
			StorageClass: "STANDARD"}, "STANDARD", ""},
		{"re-encrypted in place", backend.CopyInput{Src: src, Dst: src, SrcSize: int64(len(data)),
			StorageClass: "STANDARD", SSE: "AES256"}, "STANDARD", "AES256"},
	}
	for _, tt := range tests {
		obj, err := b.Copy(ctx, tt.in)
		if err != nil {
			t.Errorf("Copy %s: %v", tt.name, err)
			continue
		}
		if obj.SSE != tt.sse {
			t.Errorf("Copy %s returned SSE %q, want %q", tt.name, obj.SSE, tt.sse)
		}
		head, err := b.Head(ctx, tt.in.Dst)
		if err != nil {
			t.Errorf("Head after Copy %s: %v", tt.name, err)
			continue
		}
		checkObject(t, "Head after Copy "+tt.name, head, tt.in.Dst, data)
		if head.StorageClass != tt.class || head.SSE != tt.sse {
			t.Errorf("Copy %s: StorageClass, SSE = %q, %q; want %q, %q", tt.name, head.StorageClass, head.SSE, tt.class, tt.sse)
		}
	}
}

// testCopyVersion restores an older version on top, as user.s3.restore
// does: the newer versions stay.
func testCopyVersion(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	if err := b.SetVersioning(ctx, "Enabled"); err != nil {
		t.Fatalf("SetVersioning: %v", err)
	}
	key := prefix + "obj"
	v1 := put(t, b, key, "version one")
	v2 := put(t, b, key, "version two")
	if v1.VersionID == v2.VersionID || v1.VersionID == "null" {
		t.Fatalf("Put version IDs %q, %q; want two distinct real IDs", v1.VersionID, v2.VersionID)
	}

	// Without SrcSize the backend HEADs the version first.
	other := prefix + "other"
	if _, err := b.Copy(ctx, backend.CopyInput{Src: key, Dst: other, SrcVersionID: v1.VersionID}); err != nil {
		t.Fatalf("Copy of version 1 to another key: %v", err)
	}
	if got, _, err := get(t, b, backend.GetInput{Key: other, Length: -1}); err != nil || got != "version one" {
		t.Errorf("Get of the copied version = %q, %v; want \"version one\"", got, err)
	}

	restored, err := b.Copy(ctx, backend.CopyInput{Src: key, Dst: key, SrcVersionID: v1.VersionID, SrcSize: v1.Size})
	if err != nil {
		t.Fatalf("Copy of version 1 onto the key: %v", err)
	}
	got, obj, err := get(t, b, backend.GetInput{Key: key, Length: -1})
	if err != nil || got != "version one" {
		t.Errorf("Get after restoring version 1 = %q, %v; want \"version one\"", got, err)
	}
	if obj.VersionID != restored.VersionID || slices.Contains([]string{v1.VersionID, v2.VersionID}, obj.VersionID) {
		t.Errorf("restored version is %q, Copy said %q; want a new version", obj.VersionID, restored.VersionID)
	}
	versions, err := b.Versions(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if ids := versionIDs(versions); !slices.Equal(ids, []string{restored.VersionID, v2.VersionID, v1.VersionID}) {
		t.Errorf("Versions after the restore = %q, want %q", ids, []string{restored.VersionID, v2.VersionID, v1.VersionID})
	}

	_, err = b.Copy(ctx, backend.CopyInput{Src: key, Dst: prefix + "none", SrcVersionID: "no-such-version"})
	if err == nil {
		t.Errorf("Copy of a version that does not exist succeeded")
	}
}

func testVersions(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	key := prefix + "obj"
	first := put(t, b, key, "unversioned")
	// Neighbours under the same prefix are not versions of key.
	put(t, b, key+"2", "x")
	put(t, b, key+"/child", "x")
	versions, err := b.Versions(ctx, key)
	if err != nil {
		t.Fatalf("Versions: %v", err)
	}
	want := []backend.Version{{ID: "null", Size: first.Size, ETag: first.ETag, Latest: true}}
	checkVersions(t, "Versions of an unversioned key", versions, want)

	if err := b.SetVersioning(ctx, "Enabled"); err != nil {
		t.Fatalf("SetVersioning: %v", err)
	}
	v1 := put(t, b, key, "one")
	v2 := put(t, b, key, "two!")
	versions, err = b.Versions(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	want = []backend.Version{
		{ID: v2.VersionID, Size: 4, ETag: v2.ETag, Latest: true},
		{ID: v1.VersionID, Size: 3, ETag: v1.ETag},
		{ID: "null", Size: first.Size, ETag: first.ETag},
	}
	checkVersions(t, "Versions after two puts", versions, want)

	if err := b.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	versions, err = b.Versions(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 4 || !versions[0].DeleteMarker || !versions[0].Latest || versions[0].ID == "" {
		t.Fatalf("Versions after Delete = %+v; want a latest delete marker first, then 3 versions", versions)
	}
	want = append([]backend.Version{versions[0]}, want...)
	want[1].Latest = false
	checkVersions(t, "Versions after Delete", versions, want)

	if versions, err := b.Versions(ctx, prefix+"missing"); err != nil || len(versions) != 0 {
		t.Errorf("Versions of a missing key = %+v, %v; want none", versions, err)
	}
}

func testPresign(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	key := prefix + "shared file+1.txt"
	data := "presigned content"
	put(t, b, key, data)
	signed, err := b.Presign(ctx, key, "GET", time.Hour)
	if err != nil {
		t.Fatalf("Presign GET: %v", err)
	}
	u, err := url.Parse(signed)
	if err != nil {
		t.Fatalf("Presign GET = %q: %v", signed, err)
	}
	for _, tt := range []struct {
		method  string
		expires time.Duration
	}{
		{"GET", 7*24*time.Hour + time.Second},
		{"GET", 0},
		{"GET", -time.Minute},
		{"DELETE", time.Hour},
		{"get", time.Hour},
	} {
		if _, err := b.Presign(ctx, key, tt.method, tt.expires); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("Presign(%s, %v): %v, want ErrInvalid", tt.method, tt.expires, err)
		}
	}
	if _, err := b.Presign(ctx, key, "GET", 7*24*time.Hour); err != nil {
		t.Errorf("Presign for 7 days: %v", err)
	}
	if !fetchable(u) {
		t.Logf("not fetching %s URL", u.Scheme)
		return
	}

	if status, body := httpDo(t, "GET", signed, ""); status != http.StatusOK || body != data {
		t.Errorf("GET of the presigned URL = %d %q, want 200 %q", status, body, data)
	}
	sig := u.Query().Get("X-Amz-Signature")
	if sig == "" {
		t.Fatalf("presigned URL %q has no X-Amz-Signature", signed)
	}
	flipped := "0"
	if sig[0] == '0' {
		flipped = "1"
	}
	tampered := strings.Replace(signed, "X-Amz-Signature="+sig, "X-Amz-Signature="+flipped+sig[1:], 1)
	if status, _ := httpDo(t, "GET", tampered, ""); status != http.StatusForbidden {
		t.Errorf("GET with a tampered signature = %d, want 403", status)
	}

	putURL, err := b.Presign(ctx, prefix+"uploaded", "PUT", time.Minute)
	if err != nil {
		t.Fatalf("Presign PUT: %v", err)
	}
	if status, body := httpDo(t, "PUT", putURL, "uploaded content"); status != http.StatusOK {
		t.Errorf("PUT to the presigned URL = %d %q, want 200", status, body)
	}
	if got, _, err := get(t, b, backend.GetInput{Key: prefix + "uploaded", Length: -1}); err != nil || got != "uploaded content" {
		t.Errorf("Get after a presigned PUT = %q, %v", got, err)
	}
}

// testACL accepts servers without ACLs. MinIO's GetObjectAcl has the
// owner's FULL_CONTROL grant only, with the owner's ID left empty.
func testACL(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	key := prefix + "obj"
	put(t, b, key, "x")
	acl, err := b.GetACL(ctx, key)
	if err != nil {
		t.Fatalf("GetACL: %v", err)
	}
	if !slices.ContainsFunc(acl.Grants, func(g backend.Grant) bool {
		return g.Type == "CanonicalUser" && g.Grantee == acl.Owner && g.Permission == "FULL_CONTROL"
	}) {
		t.Errorf("GetACL = %+v, want the owner's FULL_CONTROL", acl)
	}
	err = b.PutACL(ctx, key, "public-read")
	switch {
	case errors.Is(err, backend.ErrNotImplemented):
		t.Logf("PutACL: %v", err)
	case err != nil:
		t.Errorf("PutACL: %v, want success or ErrNotImplemented", err)
	default:
		acl, err := b.GetACL(ctx, key)
		if err != nil {
			t.Fatalf("GetACL after PutACL: %v", err)
		}
		public := slices.ContainsFunc(acl.Grants, func(g backend.Grant) bool {
			return g.Type == "Group" && strings.HasSuffix(g.Grantee, "/AllUsers") && g.Permission == "READ"
		})
		if acl.Owner == "" || !public {
			t.Errorf("GetACL after PutACL public-read = %+v, want an owner and READ for AllUsers", acl)
		}
	}
	if _, err := b.GetACL(ctx, prefix+"missing"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("GetACL of a missing key: %v, want ErrNotFound", err)
	}
}

func testVersioning(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	if status, err := b.Versioning(ctx); err != nil || status != "Unversioned" {
		t.Errorf("Versioning of a new bucket = %q, %v; want Unversioned", status, err)
	}
	for _, status := range []string{"Enabled", "Suspended", "Enabled"} {
		if err := b.SetVersioning(ctx, status); err != nil {
			t.Fatalf("SetVersioning(%s): %v", status, err)
		}
		if got, err := b.Versioning(ctx); err != nil || got != status {
			t.Errorf("Versioning after SetVersioning(%s) = %q, %v", status, got, err)
		}
	}
	for _, status := range []string{"Unversioned", "enabled", ""} {
		if err := b.SetVersioning(ctx, status); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("SetVersioning(%q): %v, want ErrInvalid", status, err)
		}
	}
	if obj := put(t, b, prefix+"enabled", "x"); obj.VersionID == "null" || obj.VersionID == "" {
		t.Errorf("Put with versioning enabled: version %q, want a real ID", obj.VersionID)
	}
	if err := b.SetVersioning(ctx, "Suspended"); err != nil {
		t.Fatal(err)
	}
	if obj := put(t, b, prefix+"suspended", "x"); obj.VersionID != "null" {
		t.Errorf("Put with versioning suspended: version %q, want null", obj.VersionID)
	}
}

func testPolicy(t *testing.T, b backend.Bucket, prefix string) {
	ctx := t.Context()
	if _, err := b.Policy(ctx); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Policy of a new bucket: %v, want ErrNotFound", err)
	}
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},`+
		`"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/public/*"]}]}`, b.Name())
	if err := b.SetPolicy(ctx, policy); err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	got, err := b.Policy(ctx)
	if err != nil {
		t.Fatalf("Policy: %v", err)
	}
	var parsed map[string]any
	if err := json.Unmarshal([]byte(got), &parsed); err != nil || !strings.Contains(got, "public/") {
		t.Errorf("Policy = %q (%v); want JSON mentioning public/", got, err)
	}

	put(t, b, "public/"+prefix+"open", "anyone")
	put(t, b, "private/"+prefix+"closed", "owner only")
	for _, tt := range []struct {
		key    string
		status int
		body   string
	}{
		{"public/" + prefix + "open", http.StatusOK, "anyone"},
		{"private/" + prefix + "closed", http.StatusForbidden, ""},
	} {
		plain, ok := anonymousURL(t, b, tt.key)
		if !ok {
			break
		}
		status, body := httpDo(t, "GET", plain, "")
		if status != tt.status || (tt.body != "" && body != tt.body) {
			t.Errorf("anonymous GET of %q = %d %q, want %d %q", tt.key, status, body, tt.status, tt.body)
		}
	}

	if err := b.DeletePolicy(ctx); err != nil {
		t.Fatalf("DeletePolicy: %v", err)
	}
	if _, err := b.Policy(ctx); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Policy after DeletePolicy: %v, want ErrNotFound", err)
	}
	if plain, ok := anonymousURL(t, b, "public/"+prefix+"open"); ok {
		if status, _ := httpDo(t, "GET", plain, ""); status != http.StatusForbidden {
			t.Errorf("anonymous GET after DeletePolicy = %d, want 403", status)
		}
	}
}

// anonymousURL is the plain URL of key: a presigned one without its
// signature. It reports false for a bucket whose URLs cannot be fetched.
func anonymousURL(t *testing.T, b backend.Bucket, key string) (string, bool) {
	t.Helper()
	signed, err := b.Presign(t.Context(), key, "GET", time.Minute)
	if err != nil {
		t.Fatalf("Presign: %v", err)
	}
	u, err := url.Parse(signed)
	if err != nil {
		t.Fatalf("Presign = %q: %v", signed, err)
	}
	if !fetchable(u) {
		return "", false
	}
	u.RawQuery = ""
	return u.String(), true
}

func fetchable(u *url.URL) bool { return u.Scheme == "http" || u.Scheme == "https" }

// httpDo sends one plain HTTP request and returns the status and body.
func httpDo(t *testing.T, method, rawURL, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, rawURL, err)
	}
	return resp.StatusCode, string(data)
}

// checkVersions compares all but LastModified, which must be set and
// never increase down the list.
func checkVersions(t *testing.T, what string, got, want []backend.Version) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		g.LastModified, w.LastModified = time.Time{}, time.Time{}
		if g != w {
			t.Errorf("%s[%d] = %+v, want %+v", what, i, g, w)
		}
		if got[i].LastModified.IsZero() || (i > 0 && got[i].LastModified.After(got[i-1].LastModified)) {
			t.Errorf("%s[%d] LastModified = %v, after %v", what, i, got[i].LastModified, got[max(i-1, 0)].LastModified)
		}
	}
}

func versionIDs(versions []backend.Version) []string {
	ids := make([]string, len(versions))
	for i, v := range versions {
		ids[i] = v.ID
	}
	return ids
}
