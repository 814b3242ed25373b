package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync"
	"time"
)

// requestCounter is implemented by the backends.
type requestCounter interface {
	Requests(op string) int64
}

var metricOps = []string{"head", "list", "get", "put", "delete", "copy", "upload"}

// serveMetrics exports request counters and memory use in Prometheus text
// format at http://addr/metrics.
func serveMetrics(addr string, counter requestCounter, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintln(w, "# HELP bucketfs_s3_requests_total S3 requests sent, by operation.")
		fmt.Fprintln(w, "# TYPE bucketfs_s3_requests_total counter")
		for _, op := range metricOps {
			fmt.Fprintf(w, "bucketfs_s3_requests_total{op=%q} %d\n", op, counter.Requests(op))
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintln(w, "# HELP bucketfs_heap_bytes Bytes of allocated heap objects.")
		fmt.Fprintln(w, "# TYPE bucketfs_heap_bytes gauge")
		fmt.Fprintf(w, "bucketfs_heap_bytes %d\n", ms.HeapAlloc)
	})
	// Profiles of a live mount, on the same operator-chosen address.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// requestCounters sums the counters of every bucket a mount serves.
type requestCounters struct {
	// mu protects the field below.
	mu       sync.Mutex
	counters []requestCounter
}

func (c *requestCounters) add(r requestCounter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counters = append(c.counters, r)
}

func (c *requestCounters) Requests(op string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, r := range c.counters {
		n += r.Requests(op)
	}
	return n
}
