package loadgen_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/loadgen"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLoadCountsServedAndFailed runs a load against a server that fails
// every third request, and checks that every request is accounted for,
// once, on the right side.
func TestLoadCountsServedAndFailed(t *testing.T) {
	var n atomic.Int64
	enough := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		if i == 30 {
			close(enough)
		}
		if i%3 == 0 {
			http.Error(w, "no", http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	start := time.Now()
	l := loadgen.Start(srv.URL+"/", 200)
	<-enough // wait on requests, not on time
	l.Stop()
	l.Stop() // again: nothing
	end := time.Now()

	served, failed := l.Counts()
	got := int(n.Load())
	if served+failed != got {
		t.Errorf("served %d + failed %d != %d requests the server saw", served, failed, got)
	}
	if want := got / 3; failed != want {
		t.Errorf("failed = %d, want %d (every third)", failed, want)
	}
	sent, lost := l.Between(start, end)
	if sent != got || lost != failed {
		t.Errorf("Between = %d sent, %d failed; want %d, %d", sent, lost, got, failed)
	}
	if s, f := l.Between(end, end.Add(time.Hour)); s != 0 || f != 0 {
		t.Errorf("Between after Stop = %d, %d; want nothing", s, f)
	}
	fs := l.Failures()
	if len(fs) == 0 || len(fs) > 10 || !strings.Contains(fs[0], "502") {
		t.Errorf("Failures = %q, want up to 10 naming the 502", fs)
	}
}

// TestLoadCountsBrokenConnections: a request whose connection is closed
// without an answer fails, and is described by its error.
func TestLoadCountsBrokenConnections(t *testing.T) {
	var n atomic.Int64
	enough := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 3 {
			close(enough)
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close() // no answer at all
		}
	}))
	defer srv.Close()
	l := loadgen.Start(srv.URL+"/", 100)
	<-enough
	l.Stop()
	served, failed := l.Counts()
	if served != 0 || failed != int(n.Load()) {
		t.Errorf("served %d, failed %d; want 0 and the %d requests the server broke", served, failed, n.Load())
	}
	if fs := l.Failures(); len(fs) == 0 || strings.Contains(fs[0], "200") {
		t.Errorf("Failures = %q, want the errors", fs)
	}
}
