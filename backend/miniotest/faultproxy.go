package miniotest

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// FaultProxy stands between a client and a test server on 127.0.0.1 and
// injects faults into chosen requests: error answers, connections reset
// before or after the server did the work, bodies cut or stalled, slow
// replies, and the whole server gone. Requests pass through untouched
// otherwise, Host header included, so SigV4 signatures still verify.
type FaultProxy struct {
	Endpoint string // http://127.0.0.1:PORT, for the client

	target   *url.URL
	server   *http.Server
	listener net.Listener
	proxy    *httputil.ReverseProxy

	// mu protects the fields below.
	mu       sync.Mutex
	rules    []*Rule
	down     bool
	seen     map[string]int // requests by op
	injected map[string]int // faults by kind
}

// Fault is what a rule does to a request.
type Fault string

const (
	Status500    Fault = "500 InternalError"
	SlowDown503  Fault = "503 SlowDown"
	NotFound404  Fault = "404 NoSuchKey"
	ResetBefore  Fault = "reset before forwarding"
	ResetAfter   Fault = "reset after the server answered" // the server did it; the reply is lost
	CutBody      Fault = "body cut halfway"
	StallBody    Fault = "body stalled halfway"
	DelayReply   Fault = "reply delayed"
	ServerIsDown Fault = "server down"
)

// Rule injects Fault into requests of Op ("" for any): the Every-th
// matching request (1: each), at most Times times (0: without end).
type Rule struct {
	Op    string // see opOf: HEAD, GET, LIST, PUT, COPY, DELETE, START, PART, COMPLETE, ABORT
	Every int
	Times int
	Fault Fault
	Delay time.Duration // for DelayReply and StallBody

	matched, done int
}

// StartFaultProxy proxies to target (a server's Endpoint) and stops with
// the test.
func StartFaultProxy(t interface {
	Helper()
	Fatalf(string, ...any)
	Cleanup(func())
}, target string) *FaultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("fault proxy: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fault proxy: %v", err)
	}
	p := &FaultProxy{Endpoint: "http://" + l.Addr().String(), target: u, listener: l,
		seen: map[string]int{}, injected: map[string]int{}}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // the host the client signed
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.server = &http.Server{Handler: p, ErrorLog: log.New(io.Discard, "", 0)}
	go p.server.Serve(l)
	t.Cleanup(func() { p.server.Close() })
	return p
}

// Set replaces the rules.
func (p *FaultProxy) Set(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = p.rules[:0]
	for i := range rules {
		r := rules[i]
		if r.Every <= 0 {
			r.Every = 1
		}
		p.rules = append(p.rules, &r)
	}
}

// Down makes every request fail as if nothing listened (the connection is
// reset), until Down(false).
func (p *FaultProxy) Down(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// Injected returns how many faults of each kind were injected, and Seen
// how many requests of each op passed.
func (p *FaultProxy) Injected() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[Fault]int{}
	for k, v := range p.injected {
		out[Fault(k)] = v
	}
	return out
}

func (p *FaultProxy) Seen() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.seen {
		out[k] = v
	}
	return out
}

// opOf names an S3 request by what it does.
func opOf(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodHead:
		return "HEAD"
	case r.Method == http.MethodGet && (q.Has("list-type") || strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 0):
		return "LIST"
	case r.Method == http.MethodGet:
		return "GET"
	case r.Method == http.MethodPost && q.Has("uploads"):
		return "START"
	case r.Method == http.MethodPost && q.Has("uploadId"):
		return "COMPLETE"
	case r.Method == http.MethodPut && q.Has("partNumber"):
		return "PART"
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		return "COPY"
	case r.Method == http.MethodPut:
		return "PUT"
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		return "ABORT"
	case r.Method == http.MethodDelete:
		return "DELETE"
	}
	return r.Method
}

// fault picks the fault for r, if any, and counts it.
func (p *FaultProxy) fault(r *http.Request) (Fault, time.Duration) {
	op := opOf(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[op]++
	if p.down {
		p.injected[string(ServerIsDown)]++
		return ServerIsDown, 0
	}
	for _, rule := range p.rules {
		if rule.Op != "" && rule.Op != op {
			continue
		}
		rule.matched++
		if rule.matched%rule.Every != 0 || (rule.Times > 0 && rule.done >= rule.Times) {
			continue
		}
		rule.done++
		p.injected[string(rule.Fault)]++
		return rule.Fault, rule.Delay
	}
	return "", 0
}

func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, delay := p.fault(r)
	switch f {
	case "":
		p.proxy.ServeHTTP(w, r)
	case Status500:
		s3Fault(w, http.StatusInternalServerError, "InternalError")
	case SlowDown503:
		s3Fault(w, http.StatusServiceUnavailable, "SlowDown")
	case NotFound404:
		s3Fault(w, http.StatusNotFound, "NoSuchKey")
	case ResetBefore, ServerIsDown:
		io.Copy(io.Discard, r.Body)
		reset(w)
	case DelayReply:
		time.Sleep(delay)
		p.proxy.ServeHTTP(w, r)
	case ResetAfter, CutBody, StallBody:
		rec := &halfWriter{ResponseWriter: w, fault: f, delay: delay, ctx: r.Context().Done()}
		p.proxy.ServeHTTP(rec, r)
		if f == ResetAfter || f == CutBody {
			reset(w)
		}
	}
}

func s3Fault(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by the fault proxy</Message></Error>`, code)
}

// reset closes the client's connection without an answer (or mid-answer).
func reset(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tcp, ok := conn.(*net.TCPConn); ok {
				tcp.SetLinger(0) // RST, not FIN
			}
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// halfWriter passes the server's answer to the client only in part:
// nothing of it (ResetAfter: the server did the work, the reply is lost),
// its headers and half its body, then a cut (CutBody) or a stall
// (StallBody).
type halfWriter struct {
	http.ResponseWriter
	fault   Fault
	delay   time.Duration
	ctx     <-chan struct{}
	written int
	limit   int
	header  bool
}

func (h *halfWriter) WriteHeader(status int) {
	if h.fault == ResetAfter {
		return
	}
	if n := h.Header().Get("Content-Length"); n != "" {
		fmt.Sscan(n, &h.limit)
		h.limit /= 2
	}
	h.header = true
	h.ResponseWriter.WriteHeader(status)
}

func (h *halfWriter) Write(b []byte) (int, error) {
	if h.fault == ResetAfter {
		return len(b), nil
	}
	if !h.header {
		h.WriteHeader(http.StatusOK)
	}
	if room := h.limit - h.written; room < len(b) {
		h.ResponseWriter.Write(b[:max(room, 0)])
		h.written += max(room, 0)
		if f, ok := h.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		if h.fault == StallBody {
			select {
			case <-time.After(h.delay):
			case <-h.ctx:
			}
		}
		return 0, io.ErrShortWrite // the proxy stops copying
	}
	h.written += len(b)
	return h.ResponseWriter.Write(b)
}
