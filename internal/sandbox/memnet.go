package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// memDomain is the domain of the in-memory sandbox's hosts. ".invalid"
// (RFC 2606) never resolves, so a client that bypasses the in-memory
// transport fails at once instead of reaching something else.
const memDomain = "sandbox.invalid"

// memNet is the in-memory network of a sandbox with Config.InMemory: an
// http.RoundTripper that serves each request by calling the handler of the
// URL's host in the caller's goroutine tree, so that everything stays
// inside a testing/synctest bubble (no socket, no goroutine blocked on the
// network). Safe for concurrent use.
type memNet struct {
	mu    sync.Mutex
	hosts map[string]http.Handler
}

func (n *memNet) handle(host string, h http.Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.hosts == nil {
		n.hosts = map[string]http.Handler{}
	}
	n.hosts[host] = h
}

func (n *memNet) remove(host string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.hosts, host)
}

// RoundTrip serves req. The response's body streams what the handler
// writes (a long poll or a followed event log works as over a socket); the
// handler sees the request's context, so cancelling the request ends it,
// as does closing the response body.
func (n *memNet) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("sandbox in memory: read request body: %w", err)
		}
		body = b
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	h := n.hosts[req.URL.Host]
	n.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("sandbox in memory: no such host %q (the sandbox's endpoint, or a running instance's API or IMDS)", req.URL.Host)
	}
	// The server's view of the request.
	hctx, cancel := context.WithCancel(ctx)
	sreq := req.Clone(hctx)
	sreq.Body = io.NopCloser(bytes.NewReader(body))
	sreq.ContentLength = int64(len(body))
	sreq.Host = req.URL.Host
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "192.0.2.10:40000"

	pr, pw := io.Pipe()
	w := &memResponse{header: http.Header{}, body: pw, ready: make(chan struct{})}
	go func() {
		defer cancel()
		h.ServeHTTP(w, sreq)
		w.WriteHeader(http.StatusOK) // a handler that wrote nothing
		_ = pw.Close()
	}()
	select {
	case <-w.ready:
	case <-ctx.Done():
		_ = pr.CloseWithError(ctx.Err())
		return nil, ctx.Err()
	}
	return &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          &memBody{PipeReader: pr, cancel: cancel},
		ContentLength: contentLength(w.sent),
		Request:       req,
	}, nil
}

func contentLength(h http.Header) int64 {
	if v, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil {
		return v
	}
	return -1
}

// memResponse is the handler's http.ResponseWriter: the header is handed
// to the client on the first WriteHeader or Write, the body through a pipe.
type memResponse struct {
	header http.Header // the handler's
	sent   http.Header // the client's copy, taken at WriteHeader
	body   *io.PipeWriter
	once   sync.Once
	status int
	ready  chan struct{}
}

func (w *memResponse) Header() http.Header { return w.header }

func (w *memResponse) WriteHeader(status int) {
	w.once.Do(func() {
		// Changes the handler makes afterwards are not sent, as over a
		// socket.
		w.sent = w.header.Clone()
		w.status = status
		close(w.ready)
	})
}

func (w *memResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

// Flush does nothing: each Write reaches the client as it is made.
func (w *memResponse) Flush() {}

// memBody is a response body; closing it ends the handler's request.
type memBody struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (b *memBody) Close() error {
	b.cancel()
	return b.PipeReader.Close()
}
