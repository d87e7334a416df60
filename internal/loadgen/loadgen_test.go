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

// TestLoadCountsRefusedConnections: a request nobody answers fails.
func TestLoadCountsRefusedConnections(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/"
	srv.Close() // nothing listens there now
	l := loadgen.Start(url, 100)
	for {
		if _, failed := l.Counts(); failed >= 3 {
			break
		}
		time.Sleep(time.Millisecond) // polling the counts of a running load
	}
	l.Stop()
	if served, _ := l.Counts(); served != 0 {
		t.Errorf("served = %d with nothing listening", served)
	}
}
