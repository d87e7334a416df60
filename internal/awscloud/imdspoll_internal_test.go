package awscloud

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	dto "github.com/prometheus/client_model/go"
)

// tokenIMDS is an IMDSv2 endpoint whose tokens the test can revoke.
type tokenIMDS struct {
	mu     sync.Mutex
	n      int    // tokens issued
	valid  string // the token GETs must carry
	puts   int
	ttls   []string // of the token requests
	gets   int
	denied int
}

func (s *tokenIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
		ttl := r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds")
		if ttl == "" {
			http.Error(w, "no ttl", http.StatusBadRequest)
			return
		}
		s.puts++
		s.n++
		s.ttls = append(s.ttls, ttl)
		s.valid = "token-" + strings.Repeat("x", s.n)
		w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", ttl)
		_, _ = w.Write([]byte(s.valid))
	case r.Method == http.MethodGet:
		s.gets++
		if r.Header.Get("X-Aws-Ec2-Metadata-Token") != s.valid {
			s.denied++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/latest/meta-data/autoscaling/target-lifecycle-state":
			_, _ = w.Write([]byte("InService"))
		default:
			http.NotFound(w, r)
		}
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (s *tokenIMDS) revoke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.valid = "revoked"
}

func (s *tokenIMDS) counts() (puts, gets, denied int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts, s.gets, s.denied
}

// TestMetadataPollReusesItsToken: one token for many reads, a new one (and
// the read again) when IMDS refuses the one held, a 404 for an item IMDS
// does not have.
func TestMetadataPollReusesItsToken(t *testing.T) {
	srv := &tokenIMDS{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	calls := NewCallCounter()
	p := newMetadataPoll(imds.Options{Endpoint: ts.URL}, calls)
	ctx := context.Background()
	for range 5 {
		s, found, err := p.get(ctx, "autoscaling/target-lifecycle-state", lifecycleStates)
		if err != nil || !found || s != "InService" {
			t.Fatalf("get = %q %v %v, want InService", s, found, err)
		}
	}
	if puts, gets, _ := srv.counts(); puts != 1 || gets != 5 || srv.ttls[0] != "21600" {
		t.Errorf("%d token requests (TTLs %v) and %d reads for 5 reads, want 1 (for 6 hours) and 5", puts, srv.ttls, gets)
	}
	srv.revoke()
	if s, _, err := p.get(ctx, "autoscaling/target-lifecycle-state", lifecycleStates); err != nil || s != "InService" {
		t.Fatalf("get after the token was revoked = %q %v, want InService with a new token", s, err)
	}
	if puts, gets, denied := srv.counts(); puts != 2 || gets != 7 || denied != 1 {
		t.Errorf("after a revoked token: %d token requests, %d reads, %d refused; want 2, 7, 1", puts, gets, denied)
	}
	if _, found, err := p.get(ctx, "spot/instance-action", nil); err != nil || found {
		t.Errorf("get of an item IMDS lacks = found %v, %v; want not found, no error", found, err)
	}
	for _, c := range []struct {
		op, outcome string
		want        float64
	}{
		{"imds:api/token", outcomeOK, 2},
		{"imds:autoscaling/target-lifecycle-state", outcomeOK, 6},
		{"imds:autoscaling/target-lifecycle-state", outcomeError, 1}, // the 401
		{"imds:spot/instance-action", outcomeNotFound, 1},
	} {
		var m dto.Metric
		if err := calls.calls.WithLabelValues(c.op, c.outcome, "imds").Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != c.want {
			t.Errorf("lifeguard_aws_calls_total{op=%q,outcome=%q} = %v, want %v", c.op, c.outcome, got, c.want)
		}
	}
}

func TestMetadataPollEndpoint(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
	for _, tt := range []struct {
		name string
		o    imds.Options
		env  string
		want string
	}{
		{"IPv4 by default", imds.Options{}, "", "http://169.254.169.254"},
		{"IPv6 endpoint mode", imds.Options{EndpointMode: imds.EndpointModeStateIPv6}, "", "http://[fd00:ec2::254]"},
		{"the environment", imds.Options{}, "http://127.0.0.1:1338/", "http://127.0.0.1:1338"},
		{"the configuration first", imds.Options{Endpoint: "http://10.0.0.1"}, "http://127.0.0.1:1338", "http://10.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", tt.env)
			if got := newMetadataPoll(tt.o, nil).endpoint; got != tt.want {
				t.Errorf("endpoint %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("disabled", func(t *testing.T) {
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		if _, _, err := newMetadataPoll(imds.Options{}, nil).get(context.Background(), "instance-id", nil); err != errMetadataDisabled {
			t.Errorf("get with IMDS disabled: %v, want %v", err, errMetadataDisabled)
		}
	})
}

// BenchmarkTargetLifecycleState reads autoscaling/target-lifecycle-state
// as the agent polls it, and as the SDK's client reads it, from a local
// IMDSv2 endpoint.
func BenchmarkTargetLifecycleState(b *testing.B) {
	ts := httptest.NewServer(&tokenIMDS{})
	defer ts.Close()
	ctx := context.Background()
	b.Run("poll", func(b *testing.B) {
		p := newMetadataPoll(imds.Options{Endpoint: ts.URL}, NewCallCounter())
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := p.get(ctx, "autoscaling/target-lifecycle-state", lifecycleStates); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sdk", func(b *testing.B) {
		c := imds.New(imds.Options{Endpoint: ts.URL})
		b.ReportAllocs()
		for b.Loop() {
			out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: "autoscaling/target-lifecycle-state"})
			if err != nil {
				b.Fatal(err)
			}
			_ = out.Content.Close()
		}
	})
}
