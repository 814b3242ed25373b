package s3_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/backendtest"
	"github.com/bucketfs/bucketfs/backend/miniotest"
	"github.com/bucketfs/bucketfs/backend/s3"
)

var bucketSeq atomic.Int64

// setAWSEnv points the standard credential chain at env only: no profile
// files, no instance metadata, no endpoint from the environment.
func setAWSEnv(t *testing.T, env ...string) {
	none := filepath.Join(t.TempDir(), "none")
	for _, kv := range append([]string{
		"AWS_PROFILE=", "AWS_SESSION_TOKEN=", "AWS_ENDPOINT_URL=", "AWS_ENDPOINT_URL_S3=",
		"AWS_DEFAULT_REGION=", "AWS_CONFIG_FILE=" + none, "AWS_SHARED_CREDENTIALS_FILE=" + none,
		"AWS_EC2_METADATA_DISABLED=true",
	}, env...) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// newBucket creates a fresh bucket on srv and returns a backend for it.
func newBucket(t *testing.T, srv *miniotest.Server, cfg s3.Config) *s3.Bucket {
	t.Helper()
	cfg.Bucket = fmt.Sprintf("test-%d", bucketSeq.Add(1))
	if err := srv.CreateBucket(t.Context(), cfg.Bucket); err != nil {
		t.Fatal(err)
	}
	return newS3(t, srv.Endpoint, cfg)
}

func newS3(t *testing.T, endpoint string, cfg s3.Config) *s3.Bucket {
	t.Helper()
	cfg.Endpoint, cfg.PathStyle = endpoint, true
	s, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("s3.New: %v", err)
	}
	return s
}

func startMinIO(t *testing.T) *miniotest.Server {
	if testing.Short() {
		t.Skip("needs MinIO")
	}
	srv := miniotest.Start(t)
	setAWSEnv(t, srv.Env()...)
	return srv
}

func TestS3(t *testing.T) {
	srv := startMinIO(t)
	backendtest.Run(t, func(t *testing.T) backend.Bucket {
		return newBucket(t, srv, s3.Config{})
	})
}

// TestS3OnVersity runs the conformance suite against versitygw, a second
// real S3 server that, like AWS, lists without headers.
func TestS3OnVersity(t *testing.T) {
	if testing.Short() {
		t.Skip("needs versitygw")
	}
	srv := miniotest.StartVersity(t)
	setAWSEnv(t, srv.Env()...)
	backendtest.RunSkipping(t, func(t *testing.T) backend.Bucket {
		return newBucket(t, srv, s3.Config{})
	}, versitySkips)
}

// versitySkips are the conformance tests versitygw (posix backend) cannot
// pass, and why.
var versitySkips = map[string]string{
	"SSE":          "versitygw ignores server-side encryption",
	"StorageClass": "versitygw ignores storage classes",
	"CopySettings": "versitygw ignores storage classes and server-side encryption",
	"ACL":          "versitygw has no object ACLs without its IAM service (NotImplemented)",
	"ListDelimiter": "versitygw's posix backend cannot store data in a directory marker (DirectoryObjectContainsData); " +
		"bucketfs writes markers empty",
	"Versions": "versitygw's posix backend cannot hold a key that is both a file and a prefix (ObjectParentIsFile)",
	"ListVersions": "versitygw v1.8.0 repeats a version at a page boundary of ListObjectVersions " +
		"(bucketfs sends both markers; --as-of keeps the newest per key, so a repeat is harmless)",
}

func TestS3CheckBucket(t *testing.T) {
	srv := startMinIO(t)
	b := newBucket(t, srv, s3.Config{})
	if err := b.CheckBucket(t.Context()); err != nil {
		t.Errorf("CheckBucket of an existing bucket: %v", err)
	}

	missing := newS3(t, srv.Endpoint, s3.Config{Bucket: "no-such-bucket"})
	if err := missing.CheckBucket(t.Context()); !errors.Is(err, backend.ErrNoSuchBucket) {
		t.Errorf("CheckBucket of a missing bucket: %v, want ErrNoSuchBucket", err)
	}

	closed := closedPort(t)
	unreachable := newS3(t, closed, s3.Config{Bucket: b.Name()})
	start := time.Now()
	err := unreachable.CheckBucket(t.Context())
	if !errors.Is(err, backend.ErrUnavailable) || time.Since(start) > 15*time.Second {
		t.Errorf("CheckBucket of %s: %v after %v, want ErrUnavailable within 15s", closed, err, time.Since(start))
	}
	t.Logf("unreachable: %v", err)

	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-"+srv.SecretKey)
	wrong := newS3(t, srv.Endpoint, s3.Config{Bucket: b.Name()})
	err = wrong.CheckBucket(t.Context())
	if !errors.Is(err, backend.ErrAccessDenied) {
		t.Errorf("CheckBucket with a wrong secret: %v, want ErrAccessDenied", err)
	}
	if err != nil && strings.Contains(err.Error(), srv.SecretKey) {
		t.Errorf("CheckBucket's error shows the secret: %v", err)
	}
	t.Logf("wrong secret: %v", err)
	if _, err := wrong.Head(t.Context(), "key"); !errors.Is(err, backend.ErrAccessDenied) {
		t.Errorf("Head with a wrong secret: %v, want ErrAccessDenied", err)
	}
}

// TestS3DeadServer stops the server under a bucket: requests fail fast as
// unavailable, and work again once the server is back.
func TestS3DeadServer(t *testing.T) {
	srv := startMinIO(t)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := newBucket(t, srv, s3.Config{Logger: log})
	if _, err := b.Put(t.Context(), backend.PutInput{Key: "k", Body: strings.NewReader("data"), Size: 4}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := b.Head(t.Context(), "k")
	if !errors.Is(err, backend.ErrUnavailable) || time.Since(start) > 60*time.Second {
		t.Errorf("Head on a stopped server: %v after %v, want ErrUnavailable within 60s", err, time.Since(start))
	}
	t.Logf("stopped server: %v (after %v)", err, time.Since(start))
	if _, _, err := b.Get(t.Context(), backend.GetInput{Key: "k", Length: -1}); !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("Get on a stopped server: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(logs.String(), "aws-sdk") {
		t.Errorf("no SDK retry lines reached the logger; got:\n%s", logs.String())
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if obj, err := b.Head(t.Context(), "k"); err != nil || obj.Size != 4 {
		t.Errorf("Head after Restart = %+v, %v; want the object", obj, err)
	}
}

// TestS3HungServer talks to a server that accepts connections and never
// answers: every call returns within its timeout.
func TestS3HungServer(t *testing.T) {
	setAWSEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret", "AWS_REGION=us-east-1")
	endpoint := hungServer(t)
	b := newS3(t, endpoint, s3.Config{Bucket: "hung", RequestTimeout: time.Second})
	calls := map[string]func() error{
		"Head": func() error { _, err := b.Head(t.Context(), "k"); return err },
		"List": func() error { _, err := b.List(t.Context(), backend.ListInput{}); return err },
		"Get":  func() error { _, _, err := b.Get(t.Context(), backend.GetInput{Key: "k", Length: -1}); return err },
		"Put": func() error {
			_, err := b.Put(t.Context(), backend.PutInput{Key: "k", Body: strings.NewReader("x"), Size: 1})
			return err
		},
		"Delete": func() error { return b.Delete(t.Context(), "k") },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if !errors.Is(err, backend.ErrUnavailable) || time.Since(start) > 5*time.Second {
			t.Errorf("%s on a hung server: %v after %v, want ErrUnavailable after about 1s", name, err, time.Since(start))
		}
	}
}

// TestS3StalledBody reads a body whose server stops sending: the read fails
// after the stall timeout. A reader that pauses longer than that between
// reads of a healthy body is not cut off.
func TestS3StalledBody(t *testing.T) {
	setAWSEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret", "AWS_REGION=us-east-1")
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Header().Set("ETag", `"abc"`)
		w.Write(make([]byte, 10))
		w.(http.Flusher).Flush()
		if strings.HasSuffix(r.URL.Path, "/healthy") {
			w.Write(make([]byte, 990))
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	b := newS3(t, srv.URL, s3.Config{Bucket: "stall", StallTimeout: 500 * time.Millisecond})

	body, obj, err := b.Get(t.Context(), backend.GetInput{Key: "stalled", Length: -1})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if obj.Size != 1000 || obj.ETag != "abc" {
		t.Errorf("Get = %+v, want size 1000, etag abc", obj)
	}
	start := time.Now()
	n, err := io.Copy(io.Discard, body)
	body.Close()
	if n != 10 || !errors.Is(err, backend.ErrUnavailable) || time.Since(start) > 5*time.Second {
		t.Errorf("reading a stalled body: %d bytes, %v after %v; want 10 bytes, ErrUnavailable after about 0.5s", n, err, time.Since(start))
	}

	body, _, err = b.Get(t.Context(), backend.GetInput{Key: "healthy", Length: -1})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer body.Close()
	time.Sleep(time.Second) // a slow reader, not a stalled server
	if n, err := io.Copy(io.Discard, body); n != 1000 || err != nil {
		t.Errorf("reading slowly: %d bytes, %v; want 1000 bytes", n, err)
	}
}

func TestS3Requests(t *testing.T) {
	srv := startMinIO(t)
	b := newBucket(t, srv, s3.Config{})
	ctx := t.Context()
	b.Put(ctx, backend.PutInput{Key: "k", Body: strings.NewReader("abc"), Size: 3})
	b.Head(ctx, "k")
	b.Head(ctx, "k")
	if body, _, err := b.Get(ctx, backend.GetInput{Key: "k", Length: -1}); err == nil {
		body.Close()
	}
	b.List(ctx, backend.ListInput{})
	b.HasPrefix(ctx, "k")
	b.Delete(ctx, "k")
	for op, want := range map[string]int64{"head": 2, "get": 1, "put": 1, "list": 2, "delete": 1, "bogus": 0} {
		if got := b.Requests(op); got != want {
			t.Errorf("Requests(%q) = %d, want %d", op, got, want)
		}
	}
}

func TestS3Region(t *testing.T) {
	srv := startMinIO(t)
	t.Setenv("AWS_REGION", "")
	b := newBucket(t, srv, s3.Config{})
	if b.Region() != "us-east-1" {
		t.Errorf("discovered region %q, want us-east-1 (MinIO does not say)", b.Region())
	}
	if err := b.CheckBucket(t.Context()); err != nil {
		t.Errorf("CheckBucket with a discovered region: %v", err)
	}
	b = newS3(t, srv.Endpoint, s3.Config{Bucket: b.Name(), Region: "eu-west-3"})
	if b.Region() != "eu-west-3" || b.Endpoint() != srv.Endpoint {
		t.Errorf("Region, Endpoint = %q, %q; want eu-west-3, %s", b.Region(), b.Endpoint(), srv.Endpoint)
	}
}

// closedPort returns the URL of a port on 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// hungServer accepts connections and never answers.
func hungServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// MinIO's listing extension gives every listed object its headers, so a
// directory listing answers mode and type without a HEAD per file.
func TestS3ListingCarriesHeaders(t *testing.T) {
	srv := startMinIO(t)
	s := newBucket(t, srv, s3.Config{})
	ctx := t.Context()
	for key, meta := range map[string]map[string]string{
		"d/script": {"mode": "33261", "uid": "7"},
		"d/plain":  nil,
		"d/a b+c":  {"color": "red"},
	} {
		if _, err := s.Put(ctx, backend.PutInput{Key: key, Body: strings.NewReader("x"), Size: 1, ContentType: "text/x-sh", Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	heads := s.Requests("head")
	page, err := s.List(ctx, backend.ListInput{Prefix: "d/", Delimiter: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 3 {
		t.Fatalf("listed %d objects", len(page.Objects))
	}
	want := map[string]map[string]string{"d/script": {"mode": "33261", "uid": "7"}, "d/plain": {}, "d/a b+c": {"color": "red"}}
	for _, o := range page.Objects {
		if !o.HasHeaders || o.ContentType != "text/x-sh" || !maps.Equal(o.Metadata, want[o.Key]) {
			t.Errorf("listed %q: headers %v %q %v; want %v", o.Key, o.HasHeaders, o.ContentType, o.Metadata, want[o.Key])
		}
	}
	if s.Requests("head") != heads {
		t.Error("listing sent HEAD requests")
	}
}

// TestS3UnsignedPayloadOnLoopback checks the payload hash that uploads
// sign: UNSIGNED-PAYLOAD to a server on this host, the body's SHA-256 to
// another host over plain HTTP.
func TestS3UnsignedPayloadOnLoopback(t *testing.T) {
	setAWSEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret", "AWS_REGION=us-east-1")
	var mu sync.Mutex
	var hashes []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPut {
			mu.Lock()
			hashes = append(hashes, r.Header.Get("X-Amz-Content-Sha256"))
			mu.Unlock()
		}
		w.Header().Set("ETag", `"abc"`)
	}))
	ln, err := net.Listen("tcp", ":0") // every interface, to be reached by a non-loopback address too
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	body := []byte("payload")
	upload := func(endpoint string) []string {
		t.Helper()
		b := newS3(t, endpoint, s3.Config{Bucket: "b"})
		mu.Lock()
		hashes = nil
		mu.Unlock()
		if _, err := b.Put(t.Context(), backend.PutInput{Key: "k", Body: bytes.NewReader(body), Size: int64(len(body))}); err != nil {
			t.Fatalf("Put to %s: %v", endpoint, err)
		}
		if _, err := b.UploadPart(t.Context(), backend.PartInput{Key: "k", UploadID: "u", Number: 1,
			Body: bytes.NewReader(body), Size: int64(len(body))}); err != nil {
			t.Fatalf("UploadPart to %s: %v", endpoint, err)
		}
		mu.Lock()
		defer mu.Unlock()
		return hashes
	}
	unsigned := []string{"UNSIGNED-PAYLOAD", "UNSIGNED-PAYLOAD"}
	for _, host := range []string{"127.0.0.1", "localhost", "[::1]"} {
		if host == "[::1]" {
			if c, err := net.Dial("tcp", "[::1]:"+port); err != nil {
				continue // no IPv6 loopback here
			} else {
				c.Close()
			}
		}
		if got := upload("http://" + host + ":" + port); !slices.Equal(got, unsigned) {
			t.Errorf("payload hashes sent to %s: %q, want UNSIGNED-PAYLOAD", host, got)
		}
	}
	other := nonLoopbackIP(t)
	if other == "" {
		t.Skip("no non-loopback IPv4 address to check the signed case")
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(body))
	if got := upload("http://" + other + ":" + port); !slices.Equal(got, []string{sum, sum}) {
		t.Errorf("payload hashes sent to %s: %q, want the body's SHA-256", other, got)
	}
}

// nonLoopbackIP is an IPv4 address of this host other than loopback, or "".
func nonLoopbackIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && !ipnet.IP.IsLoopback() && ipnet.IP.To4() != nil {
			return ipnet.IP.String()
		}
	}
	return ""
}

// TestS3CompleteUploadDescribesWithoutHead completes an upload: the object
// it returns carries the size and headers the upload was given, and no
// HEAD is sent to learn them.
func TestS3CompleteUploadDescribesWithoutHead(t *testing.T) {
	srv := startMinIO(t)
	b := newBucket(t, srv, s3.Config{})
	ctx := t.Context()
	in := backend.PutInput{Key: "big.bin", ContentType: "application/x-test", Metadata: map[string]string{"mode": "33188"},
		StorageClass: "REDUCED_REDUNDANCY"}
	id, err := b.StartUpload(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 5<<20+1)
	etag, err := b.UploadPart(ctx, backend.PartInput{Key: in.Key, UploadID: id, Number: 1, Body: bytes.NewReader(body), Size: int64(len(body))})
	if err != nil {
		t.Fatal(err)
	}
	heads := b.Requests("head")
	obj, err := b.CompleteUpload(ctx, backend.CompleteInput{Key: in.Key, UploadID: id, Parts: []backend.Part{{Number: 1, ETag: etag}},
		Size: int64(len(body)), Headers: in})
	if err != nil {
		t.Fatal(err)
	}
	if n := b.Requests("head") - heads; n != 0 {
		t.Errorf("CompleteUpload sent %d HEAD", n)
	}
	head, err := b.Head(ctx, in.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !obj.HasHeaders || obj.Size != head.Size || obj.ETag != head.ETag || obj.ContentType != head.ContentType ||
		!maps.Equal(obj.Metadata, head.Metadata) || obj.StorageClass != head.StorageClass || obj.VersionID != head.VersionID {
		t.Errorf("CompleteUpload = %+v\nHead says       %+v", obj, head)
	}
}
