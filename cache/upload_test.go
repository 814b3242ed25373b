package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/backend"
	"github.com/bucketfs/bucketfs/backend/memory"
)

// testPart is the part size of most upload tests; the memory bucket is told
// to accept parts that small.
const testPart = 1 << 10

var errInjected = errors.New("injected fault")

func newUploadBucket(t *testing.T) *memory.Bucket {
	t.Helper()
	mem := memory.New("bucket")
	mem.MinPartSize = testPart
	return mem
}

// pattern returns n bytes that differ from part to part.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i/testPart)
	}
	return p
}

// failUploadRequest makes the nth "upload" request fail (StartUpload is the
// first, parts follow, then CompleteUpload) and calls hook, when not nil, on
// every "upload" request.
func failUploadRequest(mem *memory.Bucket, nth int64, hook func(n int64)) {
	var count atomic.Int64
	mem.SetFault(func(op, key string) error {
		if op != "upload" {
			return nil
		}
		n := count.Add(1)
		if hook != nil {
			hook(n)
		}
		if n == nth {
			return errInjected
		}
		return nil
	})
}

// checkStored checks the object's bytes and headers.
func checkStored(t *testing.T, mem *memory.Bucket, key string, want []byte, in backend.PutInput) backend.Object {
	t.Helper()
	rc, obj, err := mem.Get(context.Background(), backend.GetInput{Key: key, Length: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, want) {
		t.Errorf("stored %d bytes, want %d (equal: %v)", len(got), len(want), bytes.Equal(got, want))
	}
	if in.ContentType != "" && obj.ContentType != in.ContentType || obj.Metadata["mode"] != in.Metadata["mode"] {
		t.Errorf("headers %q %v, want %q %v", obj.ContentType, obj.Metadata, in.ContentType, in.Metadata)
	}
	if mem.Uploads() != 0 {
		t.Errorf("%d uploads left open", mem.Uploads())
	}
	return obj
}

func TestUpload(t *testing.T) {
	tests := []struct {
		name        string
		size        int
		partSize    int64
		wantPuts    int64
		wantUploads int64  // "upload" requests: start + parts + complete
		wantETag    string // suffix of the ETag
	}{
		{"empty", 0, testPart, 1, 0, ""},
		{"below one part", testPart - 1, testPart, 1, 0, ""},
		{"exactly one part", testPart, testPart, 0, 3, "-1"},
		{"short last part", 5*testPart + 100, testPart, 0, 8, "-6"},
		{"whole parts", 4 * testPart, testPart, 0, 6, "-4"},
		// 25,000 one-byte parts are too many: parts grow to 3 bytes.
		{"part size grown", 25000, 1, 0, 8336, "-8334"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := newUploadBucket(t)
			mem.MinPartSize = min(mem.MinPartSize, tt.partSize)
			data := pattern(tt.size)
			in := backend.PutInput{Key: "dir/file", ContentType: "text/plain", Metadata: map[string]string{"mode": "0644"},
				Body: strings.NewReader("ignored"), Size: 7}
			obj, err := Upload(context.Background(), mem, bytes.NewReader(data), int64(tt.size), in,
				UploadOptions{PartSize: tt.partSize, Concurrency: 4})
			if err != nil {
				t.Fatal(err)
			}
			stored := checkStored(t, mem, in.Key, data, in)
			if obj.ETag != stored.ETag || obj.Size != int64(tt.size) || !strings.HasSuffix(obj.ETag, tt.wantETag) ||
				tt.wantETag == "" && strings.Contains(obj.ETag, "-") {
				t.Errorf("returned ETag %s size %d, stored ETag %s; want suffix %q", obj.ETag, obj.Size, stored.ETag, tt.wantETag)
			}
			if got := mem.Requests("put"); got != tt.wantPuts {
				t.Errorf("put requests = %d, want %d", got, tt.wantPuts)
			}
			if got := mem.Requests("upload"); got != tt.wantUploads {
				t.Errorf("upload requests = %d, want %d", got, tt.wantUploads)
			}
		})
	}
}

func TestUploadConditions(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		in      func(old backend.Object) backend.PutInput
		wantErr error
	}{
		{"if-none-match put", 10, func(backend.Object) backend.PutInput { return backend.PutInput{IfNoneMatch: true} }, backend.ErrPrecondition},
		{"if-none-match multipart", 3 * testPart, func(backend.Object) backend.PutInput { return backend.PutInput{IfNoneMatch: true} }, backend.ErrPrecondition},
		{"if-match stale multipart", 3 * testPart, func(backend.Object) backend.PutInput { return backend.PutInput{IfMatch: "stale"} }, backend.ErrPrecondition},
		{"if-match current multipart", 3 * testPart, func(old backend.Object) backend.PutInput { return backend.PutInput{IfMatch: old.ETag} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := newUploadBucket(t)
			old, err := mem.Put(context.Background(), backend.PutInput{Key: "k", Body: strings.NewReader("old"), Size: 3})
			if err != nil {
				t.Fatal(err)
			}
			in := tt.in(old)
			in.Key = "k"
			_, err = Upload(context.Background(), mem, bytes.NewReader(pattern(tt.size)), int64(tt.size), in, UploadOptions{PartSize: testPart})
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if mem.Uploads() != 0 {
				t.Errorf("%d uploads left open", mem.Uploads())
			}
		})
	}
}

func TestUploadFailureAborts(t *testing.T) {
	const parts = 6
	tests := []struct {
		name        string
		nth         int64 // failing "upload" request
		concurrency int
	}{
		{"start fails", 1, 4},
		{"3rd part fails", 4, 1},
		{"3rd part fails, parts in flight", 4, 8},
		{"complete fails", parts + 2, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := newUploadBucket(t)
			failUploadRequest(mem, tt.nth, nil)
			_, err := Upload(context.Background(), mem, bytes.NewReader(pattern(parts*testPart)), parts*testPart,
				backend.PutInput{Key: "k"}, UploadOptions{PartSize: testPart, Concurrency: tt.concurrency})
			if !errors.Is(err, errInjected) {
				t.Errorf("err = %v, want the injected fault", err)
			}
			if mem.Uploads() != 0 {
				t.Errorf("%d uploads left open", mem.Uploads())
			}
			if _, err := mem.Head(context.Background(), "k"); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("object exists after a failed upload: %v", err)
			}
		})
	}
}

func TestUploadCancelAborts(t *testing.T) {
	mem := newUploadBucket(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	failUploadRequest(mem, 0, func(n int64) {
		if n == 3 { // while the second part is on its way
			cancel()
		}
	})
	_, err := Upload(ctx, mem, bytes.NewReader(pattern(8*testPart)), 8*testPart, backend.PutInput{Key: "k"},
		UploadOptions{PartSize: testPart, Concurrency: 2})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if mem.Uploads() != 0 {
		t.Errorf("%d uploads left open", mem.Uploads())
	}
}

func TestUploadShortSource(t *testing.T) {
	mem := newUploadBucket(t)
	_, err := Upload(context.Background(), mem, bytes.NewReader(pattern(2*testPart)), 3*testPart, backend.PutInput{Key: "k"},
		UploadOptions{PartSize: testPart})
	if err == nil || mem.Uploads() != 0 {
		t.Errorf("err = %v, open uploads %d; want an error and none open", err, mem.Uploads())
	}
}

// inFlight is a bucket that records the most parts uploading at once.
type inFlight struct {
	*memory.Bucket
	now, most atomic.Int64
}

func (b *inFlight) UploadPart(ctx context.Context, in backend.PartInput) (string, error) {
	n := b.now.Add(1)
	defer b.now.Add(-1)
	for m := b.most.Load(); n > m && !b.most.CompareAndSwap(m, n); m = b.most.Load() {
	}
	return b.Bucket.UploadPart(ctx, in)
}

func TestUploadConcurrencyBound(t *testing.T) {
	b := &inFlight{Bucket: newUploadBucket(t)}
	data := pattern(40 * testPart)
	if _, err := Upload(context.Background(), b, bytes.NewReader(data), int64(len(data)), backend.PutInput{Key: "k"},
		UploadOptions{PartSize: testPart, Concurrency: 3}); err != nil {
		t.Fatal(err)
	}
	if m := b.most.Load(); m > 3 {
		t.Errorf("%d parts in flight, want at most 3", m)
	}
	checkStored(t, b.Bucket, "k", data, backend.PutInput{})
}

// waitUploads waits until the bucket has served n "upload" requests (or
// fails after a generous deadline: the requests need no time, only
// scheduling).
func waitUploads(t *testing.T, mem *memory.Bucket, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for mem.Requests("upload") < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d upload requests, want %d", mem.Requests("upload"), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStream(t *testing.T) {
	tests := []struct {
		name        string
		written     []int64 // successive Written calls
		wantEarly   int64   // "upload" requests before Finish (start + full parts)
		size        int64
		wantPuts    int64
		wantUploads int64 // "upload" requests in all
	}{
		{"small file via put", []int64{10, 100}, 0, 100, 1, 0},
		{"parts before finish, tail at finish", []int64{testPart / 2, 2*testPart + 5, 3 * testPart}, 4, 3*testPart + 100, 0, 6},
		{"whole parts, nothing left", []int64{2 * testPart}, 3, 2 * testPart, 0, 4},
		{"exactly one part", []int64{testPart}, 2, testPart, 0, 3},
		{"finish without written", nil, 0, 3*testPart + 1, 0, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := newUploadBucket(t)
			data := pattern(int(tt.size))
			in := backend.PutInput{Key: "k", ContentType: "text/plain", Metadata: map[string]string{"mode": "0600"}}
			s := StartStream(mem, bytes.NewReader(data), in, UploadOptions{PartSize: testPart, Concurrency: 2})
			for _, n := range tt.written {
				s.Written(n)
			}
			waitUploads(t, mem, tt.wantEarly)
			obj, err := s.Finish(context.Background(), tt.size)
			if err != nil {
				t.Fatal(err)
			}
			checkStored(t, mem, "k", data, in)
			if obj.Size != tt.size {
				t.Errorf("Size = %d, want %d", obj.Size, tt.size)
			}
			if got := mem.Requests("put"); got != tt.wantPuts {
				t.Errorf("put requests = %d, want %d", got, tt.wantPuts)
			}
			if got := mem.Requests("upload"); got != tt.wantUploads {
				t.Errorf("upload requests = %d, want %d (no part sent twice)", got, tt.wantUploads)
			}
		})
	}
}

// TestStreamOutgrowsParts streams one-byte parts past the 10,000 part limit:
// Finish starts over with grown parts.
func TestStreamOutgrowsParts(t *testing.T) {
	mem := newUploadBucket(t)
	mem.MinPartSize = 1
	data := pattern(maxParts + 1)
	s := StartStream(mem, bytes.NewReader(data), backend.PutInput{Key: "k"}, UploadOptions{PartSize: 1})
	s.Written(100)
	s.Written(int64(len(data)))
	obj, err := s.Finish(context.Background(), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, mem, "k", data, backend.PutInput{})
	if !strings.HasSuffix(obj.ETag, fmt.Sprintf("-%d", (maxParts+2)/2)) {
		t.Errorf("ETag %s, want %d parts of 2 bytes", obj.ETag, (maxParts+2)/2)
	}
}

func TestStreamAbort(t *testing.T) {
	mem := newUploadBucket(t)
	s := StartStream(mem, bytes.NewReader(pattern(4*testPart)), backend.PutInput{Key: "k"}, UploadOptions{PartSize: testPart})
	s.Written(4 * testPart)
	waitUploads(t, mem, 2) // started, a part on its way
	s.Abort()
	s.Abort()
	if mem.Uploads() != 0 {
		t.Errorf("%d uploads left open", mem.Uploads())
	}
	s.Written(5 * testPart) // ignored
	if _, err := s.Finish(context.Background(), 5*testPart); !errors.Is(err, errStreamClosed) {
		t.Errorf("Finish after Abort: %v", err)
	}
	if _, err := mem.Head(context.Background(), "k"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("object exists after Abort: %v", err)
	}

	// Aborting a stream that never started sends nothing.
	idle := newUploadBucket(t)
	StartStream(idle, bytes.NewReader(nil), backend.PutInput{Key: "k"}, UploadOptions{}).Abort()
	if n := idle.Requests("upload"); n != 0 {
		t.Errorf("%d upload requests for an idle stream", n)
	}
}

func TestStreamPartFails(t *testing.T) {
	mem := newUploadBucket(t)
	failUploadRequest(mem, 3, nil) // the second part
	s := StartStream(mem, bytes.NewReader(pattern(5*testPart)), backend.PutInput{Key: "k"}, UploadOptions{PartSize: testPart})
	s.Written(3 * testPart)
	if _, err := s.Finish(context.Background(), 5*testPart); !errors.Is(err, errInjected) {
		t.Errorf("err = %v, want the injected fault", err)
	}
	if mem.Uploads() != 0 {
		t.Errorf("%d uploads left open", mem.Uploads())
	}
}

// TestStreamFromStagedFile streams a staged file while a writer appends to
// it, as a sequential writer does through the mount.
func TestStreamFromStagedFile(t *testing.T) {
	mem := newUploadBucket(t)
	_, f := newTestStaged(t, "k")
	s := StartStream(mem, f, backend.PutInput{Key: "k"}, UploadOptions{PartSize: testPart})
	data := pattern(10*testPart + 123)
	var wg sync.WaitGroup
	wg.Go(func() {
		for off := 0; off < len(data); off += 300 {
			end := min(off+300, len(data))
			f.WriteAt(data[off:end], int64(off))
			if n, ok := f.Sequential(); ok {
				s.Written(n)
			}
		}
	})
	wg.Wait()
	if _, err := s.Finish(context.Background(), f.Size()); err != nil {
		t.Fatal(err)
	}
	checkStored(t, mem, "k", data, backend.PutInput{})
}

func TestStreamSetHeaders(t *testing.T) {
	mem := memory.New("b")
	data := bytes.Repeat([]byte("x"), 100)
	s := StartStream(mem, bytes.NewReader(data), backend.PutInput{Key: "k", ContentType: "a/b"}, UploadOptions{PartSize: 5 << 20})
	if !s.SetHeaders(backend.PutInput{Key: "k", ContentType: "c/d", Metadata: map[string]string{"mtime": "2"}}) {
		t.Fatal("SetHeaders before any part: false")
	}
	obj, err := s.Finish(t.Context(), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := mem.Head(t.Context(), "k")
	if obj.Size != 100 || got.ContentType != "c/d" || got.Metadata["mtime"] != "2" {
		t.Errorf("stored %+v", got)
	}
}

// TestStreamConditionsAfterStart changes the condition of a stream whose
// multipart upload has begun, as a close in the middle of a write does once
// it has stored the file: completion must use the new one.
func TestStreamConditionsAfterStart(t *testing.T) {
	mem := newUploadBucket(t)
	data := pattern(3 * testPart)
	s := StartStream(mem, bytes.NewReader(data), backend.PutInput{Key: "k", IfNoneMatch: true}, UploadOptions{PartSize: testPart})
	s.Written(2 * testPart)
	waitUploads(t, mem, 2) // the start and a part
	mid, err := mem.Put(t.Context(), backend.PutInput{Key: "k", Body: bytes.NewReader(data[:10]), Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	if s.SetHeaders(backend.PutInput{Key: "k", IfMatch: mid.ETag}) {
		t.Error("SetHeaders after the upload started: true")
	}
	if _, err := s.Finish(t.Context(), int64(len(data))); err != nil {
		t.Fatalf("Finish with the new condition: %v", err)
	}
	checkStored(t, mem, "k", data, backend.PutInput{})
}
