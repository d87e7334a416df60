// Package lbproxy is the sandbox's load balancer data plane: every
// listener of every load balancer listens on a loopback port of its own
// and proxies HTTP to the target the balancers owner picks (round robin
// over the healthy ones). A request that finds no healthy target is
// answered 503 as an application load balancer (or a classic ELB) does; a
// target that fails is answered 502.
//
// The Proxy is owned by the sandbox's Server: it implements
// balancers.DataPlane (Open and Close are called under the owner's lock,
// and take only the proxy's own), and it calls the owner's Route and
// Pick.Done without holding its own lock. Close stops every listener and
// waits for their goroutines.
package lbproxy

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/balancers"
)

// albUnavailable is the body an application load balancer sends with 503
// when no target can take the request.
const albUnavailable = "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n"

// statusClientClosed is the status an application load balancer logs for
// a request whose client closed the connection first.
const statusClientClosed = 460

// albBadGateway is its body for a target that failed.
const albBadGateway = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"

// Proxy is the data plane.
type Proxy struct {
	owner *balancers.Balancers
	host  string // the address every listener binds, 127.0.0.1
	rp    *httputil.ReverseProxy
	tr    *http.Transport

	mu      sync.Mutex
	closed  bool
	servers map[string]*server
	wg      sync.WaitGroup
}

type server struct {
	srv *http.Server
	ln  net.Listener
}

type pickKey struct{}

// New returns a proxy for owner's load balancers; its listeners bind
// host (127.0.0.1 when empty) on a free port each.
func New(owner *balancers.Balancers, host string) *Proxy {
	if host == "" {
		host = "127.0.0.1"
	}
	p := &Proxy{owner: owner, host: host, servers: map[string]*server{}}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	p.tr = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
		DialContext: func(ctx context.Context, network, host string) (net.Conn, error) {
			addr, err := targetAddr(host)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, addr)
		}}
	p.rp = &httputil.ReverseProxy{
		Transport: p.tr,
		Rewrite: func(r *httputil.ProxyRequest) {
			pick := r.In.Context().Value(pickKey{}).(*balancers.Pick)
			r.SetURL(&url.URL{Scheme: "http", Host: poolHost(pick)})
			r.Out.Host = r.In.Host
			if r.Out.Host == "" {
				r.Out.Host = pick.Addr
			}
			r.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			pick := r.Context().Value(pickKey{}).(*balancers.Pick)
			if r.Context().Err() != nil {
				// The client went away: no one reads the answer, and it is
				// no target's failure. ALB logs these as 460.
				w.WriteHeader(statusClientClosed)
				return
			}
			status := http.StatusBadGateway
			if errors.Is(err, context.DeadlineExceeded) {
				status = http.StatusGatewayTimeout
			}
			pick.Error = err.Error()
			writeBody(w, status, badGateway(pick.Classic, status))
		},
	}
	return p
}

// poolHost is the host the transport sees for a pick: the target's
// registration and address. The transport pools connections by host, so a
// request never travels over a connection opened for another registration,
// even one at the same address: a private IP handed out again to a new
// instance, whose predecessor's connections may not have noticed their
// end yet. targetAddr turns it back into the address to dial.
func poolHost(pick *balancers.Pick) string {
	return fmt.Sprintf("r%d-%s.target:80", pick.Registration, hex.EncodeToString([]byte(pick.Addr)))
}

// targetAddr is the address a poolHost stands for.
func targetAddr(host string) (string, error) {
	name, _, err := net.SplitHostPort(host)
	if err == nil {
		_, encoded, ok := strings.Cut(strings.TrimSuffix(name, ".target"), "-")
		var b []byte
		if b, err = hex.DecodeString(encoded); err == nil && ok {
			return string(b), nil
		}
	}
	return "", fmt.Errorf("data plane: %q names no target", host)
}

func badGateway(classic bool, status int) string {
	if classic {
		return ""
	}
	if status == http.StatusGatewayTimeout {
		return "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n"
	}
	return albBadGateway
}

func writeBody(w http.ResponseWriter, status int, body string) {
	if body != "" {
		w.Header().Set("Content-Type", "text/html")
	}
	w.Header().Set("Server", "awselb/2.0")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// Open starts a listener's loopback port and returns its address.
func (p *Proxy) Open(key string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return "", errors.New("the data plane is closed")
	}
	if s, ok := p.servers[key]; ok {
		return s.ln.Addr().String(), nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(p.host, "0"))
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", p.host, err)
	}
	s := &server{ln: ln, srv: &http.Server{Handler: p.handler(key), ReadHeaderTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second}}
	p.servers[key] = s
	p.wg.Go(func() { _ = s.srv.Serve(ln) })
	return ln.Addr().String(), nil
}

// Close stops a listener's port at once: requests in flight on it are
// cut, as when a load balancer's listener is deleted.
func (p *Proxy) Close(key string) {
	p.mu.Lock()
	s, ok := p.servers[key]
	delete(p.servers, key)
	p.mu.Unlock()
	if ok {
		_ = s.srv.Close()
	}
}

// Handler serves one listener's requests (exported for in-memory use and
// tests; Open serves it on a port).
func (p *Proxy) Handler(key string) http.Handler { return p.handler(key) }

func (p *Proxy) handler(key string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pick, ok := p.owner.Route(key)
		if !ok {
			writeBody(w, http.StatusServiceUnavailable, albUnavailable)
			return
		}
		if pick.Addr == "" {
			body := albUnavailable
			if pick.Classic {
				body = ""
			}
			writeBody(w, http.StatusServiceUnavailable, body)
			pick.Done(http.StatusServiceUnavailable)
			return
		}
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() { pick.Done(rec.status) }()
		p.rp.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), pickKey{}, &pick)))
	})
}

// statusWriter remembers the status sent.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote && code >= 200 {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Shutdown stops every listener: new connections are refused at once,
// requests in flight get until ctx ends to finish. Open fails afterwards.
func (p *Proxy) Shutdown(ctx context.Context) {
	p.mu.Lock()
	p.closed = true
	servers := p.servers
	p.servers = map[string]*server{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			if err := s.srv.Shutdown(ctx); err != nil {
				_ = s.srv.Close()
			}
		})
	}
	wg.Wait()
	p.wg.Wait()
	p.tr.CloseIdleConnections()
}
