package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bucketfs/bucketfs/backend/s3"
	"github.com/bucketfs/bucketfs/fs"
)

// mountMetrics are the figures of a mount: the Prometheus metrics served
// at --metrics-addr and, from the same registry, the JSON of the root's
// user.s3.stats.
type mountMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // operation, status
	duration *prometheus.HistogramVec // operation
	retries  *prometheus.CounterVec   // operation
	cost     *prometheus.CounterVec   // operation
	written  prometheus.Counter
	prices   requestPrices
	started  time.Time
	log      *slog.Logger

	// The sources that exist once the buckets do, and the mount.
	buckets sources
	mounted atomic.Pointer[fs.Mounted]
}

// Metric names, shared by /metrics and user.s3.stats.
const (
	metricRequests     = "bucketfs_s3_requests_total"
	metricDuration     = "bucketfs_s3_request_duration_seconds"
	metricRetries      = "bucketfs_s3_retries_total"
	metricCost         = "bucketfs_s3_estimated_cost_dollars_total"
	metricRead         = "bucketfs_s3_read_bytes_total"
	metricWritten      = "bucketfs_s3_written_bytes_total"
	metricCacheHits    = "bucketfs_metadata_cache_hits_total"
	metricCacheMisses  = "bucketfs_metadata_cache_misses_total"
	metricOpenFiles    = "bucketfs_open_files"
	metricStagedBytes  = "bucketfs_staged_bytes"
	metricUploading    = "bucketfs_uploads_in_flight"
	metricPending      = "bucketfs_uploads_pending"
	metricConflictCopy = "bucketfs_conflict_copies"
)

func newMountMetrics(prices requestPrices, log *slog.Logger) *mountMetrics {
	m := &mountMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRequests,
			Help: "S3 requests by API operation and outcome (HTTP status class of the last attempt; error: no reply)."},
			[]string{"operation", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricDuration,
			Help:    "Time of S3 requests, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"operation"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRetries,
			Help: "S3 request attempts beyond the first."}, []string{"operation"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricCost,
			Help: "Estimated cost of the requests S3 answered, in dollars, at --request-price (default: " + defaultPricesNote + ")."},
			[]string{"operation"}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: metricWritten,
			Help: "Object bytes uploaded (PUT and multipart parts that succeeded)."}),
		prices:  prices,
		started: time.Now(),
		log:     log,
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(m.requests, m.duration, m.retries, m.cost, m.written,
		counter(metricRead, "Object bytes read from S3.", func() float64 { return float64(m.buckets.bytesRead()) }),
		counter(metricCacheHits, "Lookups and listings the metadata cache answered.", func() float64 { h, _ := m.buckets.cacheStats(); return float64(h) }),
		counter(metricCacheMisses, "Lookups and listings the metadata cache asked S3 for.", func() float64 { _, n := m.buckets.cacheStats(); return float64(n) }),
		mountState{&m.mounted},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// mountState collects the gauges of the mount's state from one look at
// it: fs.Mounted.Stats walks the local files and reads the conflicts
// folder, once a scrape rather than once a gauge.
type mountState struct{ mounted *atomic.Pointer[fs.Mounted] }

var stateGauges = []struct {
	desc  *prometheus.Desc
	value func(fs.Stats) int64
}{
	{prometheus.NewDesc(metricOpenFiles, "Open files (file descriptions).", nil, nil), func(s fs.Stats) int64 { return s.OpenFiles }},
	{prometheus.NewDesc(metricStagedBytes, "Bytes of files staged on local disk.", nil, nil), func(s fs.Stats) int64 { return s.StagedBytes }},
	{prometheus.NewDesc(metricUploading, "Uploads under way.", nil, nil), func(s fs.Stats) int64 { return s.UploadsInFlight }},
	{prometheus.NewDesc(metricPending, "Files S3 does not have yet, kept in the journal.", nil, nil), func(s fs.Stats) int64 { return s.PendingUploads }},
	{prometheus.NewDesc(metricConflictCopy, "Conflict copies set aside.", nil, nil), func(s fs.Stats) int64 { return s.ConflictCopies }},
}

func (c mountState) Describe(ch chan<- *prometheus.Desc) {
	for _, g := range stateGauges {
		ch <- g.desc
	}
}

func (c mountState) Collect(ch chan<- prometheus.Metric) {
	var s fs.Stats
	if mnt := c.mounted.Load(); mnt != nil {
		s = mnt.Stats()
	}
	for _, g := range stateGauges {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(g.value(s)))
	}
}

// observe records one S3 request, and traces it with --debug.
func (m *mountMetrics) observe(r s3.Request) {
	status := "error"
	if r.Status > 0 {
		status = strconv.Itoa(r.Status/100) + "xx"
	}
	m.requests.WithLabelValues(r.Operation, status).Inc()
	m.duration.WithLabelValues(r.Operation).Observe(r.Duration.Seconds())
	if r.Attempts > 1 {
		m.retries.WithLabelValues(r.Operation).Add(float64(r.Attempts - 1))
	}
	if r.Status > 0 {
		m.cost.WithLabelValues(r.Operation).Add(float64(r.Attempts) * m.prices.of(r.Operation) / 1000)
	}
	m.written.Add(float64(r.Sent))
	if m.log.Enabled(context.Background(), slog.LevelDebug) {
		attrs := []any{"op", r.Operation, "key", r.Key, "status", r.Status,
			"latency", r.Duration.Round(time.Microsecond), "retries", r.Attempts - 1}
		if r.Err != nil {
			attrs = append(attrs, "err", r.Err)
		}
		m.log.Debug("s3 request", attrs...)
	}
}

// serve serves /metrics (and profiles) at addr; an address in use fails
// here, before anything is mounted.
func (m *mountMetrics) serve(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			err = errno // "address already in use", without the Go wrapping
		}
		return nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	// Profiles of a live mount, on the same operator-chosen address.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("metrics server", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// stats is user.s3.stats: the figures of /metrics that answer "what has
// this mount done, and what has it cost me", as JSON.
type stats struct {
	Since            time.Time                   `json:"since"`
	EstimatedCostUSD float64                     `json:"estimated_cost_usd"`
	Requests         map[string]map[string]int64 `json:"requests"` // operation -> status -> count
	Retries          int64                       `json:"retries"`
	BytesRead        int64                       `json:"bytes_read"`
	BytesWritten     int64                       `json:"bytes_written"`
	CacheHits        int64                       `json:"metadata_cache_hits"`
	CacheMisses      int64                       `json:"metadata_cache_misses"`
	OpenFiles        int64                       `json:"open_files"`
	StagedBytes      int64                       `json:"staged_bytes"`
	UploadsInFlight  int64                       `json:"uploads_in_flight"`
	UploadsPending   int64                       `json:"uploads_pending"`
	ConflictCopies   int64                       `json:"conflict_copies"`
	Prices           requestPrices               `json:"prices_usd_per_1000_requests"`
}

// report is the JSON of user.s3.stats, read from the registry.
func (m *mountMetrics) report() []byte {
	families, err := m.reg.Gather()
	if err != nil {
		m.log.Warn("gather metrics", "err", err)
	}
	s := stats{Since: m.started.UTC().Truncate(time.Second), Requests: map[string]map[string]int64{}, Prices: m.prices}
	fields := s.fields()
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range metric.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			v := metric.GetCounter().GetValue() + metric.GetGauge().GetValue()
			switch f.GetName() {
			case metricRequests:
				op := labels["operation"]
				if s.Requests[op] == nil {
					s.Requests[op] = map[string]int64{}
				}
				s.Requests[op][labels["status"]] = int64(v)
			case metricCost:
				s.EstimatedCostUSD += v
			default:
				if field := fields[f.GetName()]; field != nil {
					*field += int64(v)
				}
			}
		}
	}
	out, _ := json.MarshalIndent(s, "", "  ")
	return append(out, '\n')
}

// fields are the numbers of stats that metrics fill, by metric.
func (s *stats) fields() map[string]*int64 {
	return map[string]*int64{
		metricRetries: &s.Retries, metricRead: &s.BytesRead, metricWritten: &s.BytesWritten,
		metricCacheHits: &s.CacheHits, metricCacheMisses: &s.CacheMisses,
		metricOpenFiles: &s.OpenFiles, metricStagedBytes: &s.StagedBytes,
		metricUploading: &s.UploadsInFlight, metricPending: &s.UploadsPending,
		metricConflictCopy: &s.ConflictCopies,
	}
}

// source is what the metrics read of each bucket a mount serves: its
// client's count of bytes read, and its metadata cache.
type source struct {
	bucket interface{ BytesRead() int64 }
	cache  interface{ CacheStats() (hits, misses int64) }
}

// sources are the buckets of a mount (one, or those of --all-buckets as
// they are opened).
type sources struct {
	// mu protects list.
	mu   sync.Mutex
	list []source
}

func (s *sources) add(src source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, src)
}

func (s *sources) snapshot() []source {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]source(nil), s.list...)
}

func (s *sources) bytesRead() (n int64) {
	for _, src := range s.snapshot() {
		n += src.bucket.BytesRead()
	}
	return n
}

func (s *sources) cacheStats() (hits, misses int64) {
	for _, src := range s.snapshot() {
		h, m := src.cache.CacheStats()
		hits, misses = hits+h, misses+m
	}
	return hits, misses
}
