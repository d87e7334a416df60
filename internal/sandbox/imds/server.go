package imds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server bounds.
const (
	// readHeaderTimeout bounds how long a client may take to send headers.
	readHeaderTimeout = 5 * time.Second
	// shutdownTimeout bounds how long Close waits for in-flight requests
	// before cutting connections.
	shutdownTimeout = 2 * time.Second
)

// Server is a running per-instance IMDS listener. Create it with Start; it
// serves until Close.
type Server struct {
	srv      *http.Server
	endpoint string
	done     chan struct{} // closed when the serving goroutine returns
	serveErr error         // Serve's result, read after done

	closeOnce sync.Once
	closeErr  error
}

// Start listens on addr (for example "127.0.0.1:0") and serves h on it in a
// goroutine the Server owns until Close.
func Start(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for IMDS on %s: %w", addr, err)
	}
	s := &Server{
		srv:      &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout},
		endpoint: "http://" + ln.Addr().String(),
		done:     make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = err
		}
	}()
	return s, nil
}

// Endpoint returns the server's base URL, "http://127.0.0.1:PORT": the
// value for AWS_EC2_METADATA_SERVICE_ENDPOINT.
func (s *Server) Endpoint() string { return s.endpoint }

// Close stops listening, lets in-flight requests finish for at most a short
// bound, then closes every connection, and returns once the serving
// goroutine has. It reports an error the server stopped with; later calls
// return the same result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close() // the bound passed: cut the remaining connections
		}
		<-s.done
		if s.serveErr != nil {
			s.closeErr = fmt.Errorf("serve IMDS on %s: %w", s.endpoint, s.serveErr)
		}
	})
	return s.closeErr
}
