package awscloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/prometheus/client_golang/prometheus"
)

// metadataPoll reads instance metadata items, among them the two the
// agent polls for as long as it runs (autoscaling/target-lifecycle-state,
// every poll interval, and spot/instance-action on spot instances), with
// one plain IMDSv2 GET each:
// a session token reused until shortly before it expires, one kept-alive
// connection, the request built once per token, the answer read into a
// buffer of its own. The SDK's client builds its whole operation stack
// (some forty middlewares, a retryer) for every read, which made each poll
// cost more CPU than everything else an idle agent does. It talks to the
// endpoint the SDK's
// client would (its configuration, AWS_EC2_METADATA_SERVICE_ENDPOINT, the
// IPv4 or IPv6 address of the endpoint mode) with the configuration's
// HTTP client, and never falls back to IMDSv1. Safe for concurrent use;
// reads are serialized.
type metadataPoll struct {
	endpoint string // scheme://host[:port], no trailing slash
	disabled bool   // AWS_EC2_METADATA_DISABLED=true
	http     imds.HTTPClient
	calls    *CallCounter                       // nil: not counted
	counts   map[readOutcome]prometheus.Counter // calls' counters, once looked up

	mu      sync.Mutex
	token   string
	expires time.Time
	reqs    map[string]*http.Request // GET requests carrying token, by path
	buf     [512]byte
}

const (
	// tokenTTL is the session token's lifetime (the longest IMDS allows).
	tokenTTL = 6 * time.Hour
	// tokenMargin is how long before its expiry a token is replaced.
	tokenMargin = 5 * time.Minute
)

// errMetadataDisabled is what reads return with AWS_EC2_METADATA_DISABLED.
var errMetadataDisabled = errors.New("instance metadata is disabled (AWS_EC2_METADATA_DISABLED)")

// newMetadataPoll returns the poller for the IMDS endpoint of o, the SDK
// client's options, counting its reads in calls (nil: not counted).
func newMetadataPoll(o imds.Options, calls *CallCounter) *metadataPoll {
	endpoint := o.Endpoint
	if endpoint == "" {
		endpoint = os.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")
	}
	if endpoint == "" {
		endpoint = "http://169.254.169.254"
		if o.EndpointMode == imds.EndpointModeStateIPv6 {
			endpoint = "http://[fd00:ec2::254]"
		}
	}
	hc := o.HTTPClient
	if hc == nil {
		// As the SDK's client: fail fast where there is no IMDS.
		hc = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   1,
			IdleConnTimeout:       time.Minute,
			ResponseHeaderTimeout: 5 * time.Second,
		}}
	}
	return &metadataPoll{
		endpoint: strings.TrimRight(endpoint, "/"),
		disabled: o.ClientEnableState == imds.ClientDisabled || strings.EqualFold(os.Getenv("AWS_EC2_METADATA_DISABLED"), "true"),
		http:     hc,
		calls:    calls,
		counts:   map[readOutcome]prometheus.Counter{},
		reqs:     map[string]*http.Request{},
	}
}

// get reads a metadata path (under /latest/meta-data/); found is false,
// with a nil error, when IMDS has no such item (404). intern maps the
// answer to a string without allocating when it is one of a few known
// values.
func (p *metadataPoll) get(ctx context.Context, path string, intern func([]byte) string) (value string, found bool, err error) {
	if p.disabled {
		return "", false, errMetadataDisabled
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if err := p.tokenLocked(ctx); err != nil {
			return "", false, err
		}
		status, body, err := p.readLocked(ctx, path)
		switch {
		case err != nil:
			p.count(path, err, 0)
			return "", false, fmt.Errorf("read %s from IMDS: %w", path, err)
		case status == http.StatusUnauthorized && attempt == 0:
			p.count(path, nil, status)
			p.token, p.reqs = "", map[string]*http.Request{} // expired early, or IMDS restarted
			continue
		case status == http.StatusNotFound:
			p.count(path, nil, status)
			return "", false, nil
		case status != http.StatusOK:
			p.count(path, nil, status)
			return "", false, fmt.Errorf("read %s from IMDS: %w", path, httpStatus(status))
		}
		p.count(path, nil, status)
		if intern != nil {
			if s := intern(body); s != "" {
				return s, true, nil
			}
		}
		return string(body), true, nil
	}
}

// readLocked sends the GET of path with the current token and reads the
// answer into p.buf.
func (p *metadataPoll) readLocked(ctx context.Context, path string) (int, []byte, error) {
	req := p.reqs[path]
	if req == nil {
		r, err := http.NewRequest(http.MethodGet, p.endpoint+"/latest/meta-data/"+path, nil)
		if err != nil {
			return 0, nil, err
		}
		r.Header.Set("X-Aws-Ec2-Metadata-Token", p.token)
		p.reqs[path], req = r, r
	}
	resp, err := p.http.Do(req.WithContext(ctx))
	if err != nil {
		return 0, nil, err
	}
	n, err := readAll(resp.Body, p.buf[:])
	resp.Body.Close()
	if err != nil {
		return 0, nil, fmt.Errorf("read the answer: %w", err)
	}
	return resp.StatusCode, p.buf[:n], nil
}

// tokenLocked gets a session token unless the one held is good for more
// than tokenMargin.
func (p *metadataPoll) tokenLocked(ctx context.Context) error {
	if p.token != "" && time.Until(p.expires) > tokenMargin {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, p.endpoint+"/latest/api/token", nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", strconv.Itoa(int(tokenTTL/time.Second)))
	at := time.Now()
	resp, err := p.http.Do(req)
	if err != nil {
		p.count("api/token", err, 0)
		return fmt.Errorf("get an IMDS session token: %w", err)
	}
	n, err := readAll(resp.Body, p.buf[:])
	resp.Body.Close()
	p.count("api/token", err, resp.StatusCode)
	if err != nil {
		return fmt.Errorf("get an IMDS session token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get an IMDS session token: %w", httpStatus(resp.StatusCode))
	}
	if n == 0 {
		return errors.New("get an IMDS session token: empty answer")
	}
	ttl := tokenTTL
	if s, err := strconv.Atoi(resp.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds")); err == nil && s > 0 {
		ttl = time.Duration(s) * time.Second
	}
	p.token, p.expires, p.reqs = string(p.buf[:n]), at.Add(ttl), map[string]*http.Request{}
	return nil
}

// count counts a read of path, as the SDK's reads are counted
// (imds:<path>): err is its error, status the HTTP status of its answer.
// Called with p.mu held.
func (p *metadataPoll) count(path string, err error, status int) {
	if p.calls == nil {
		return
	}
	if err == nil && status != http.StatusOK {
		err = httpStatus(status)
	}
	k := readOutcome{path, outcome(err)}
	c := p.counts[k]
	if c == nil {
		c = p.calls.calls.WithLabelValues("imds:"+path, k.outcome, "imds")
		p.counts[k] = c
	}
	c.Inc()
}

// readOutcome is a metadata path and the outcome of a read of it.
type readOutcome struct{ path, outcome string }

// httpStatus is an answer's HTTP status that is not 200, as an error.
type httpStatus int

func (s httpStatus) Error() string       { return fmt.Sprintf("%d %s", int(s), http.StatusText(int(s))) }
func (s httpStatus) HTTPStatusCode() int { return int(s) }

// readAll reads r into buf; an answer larger than buf is an error.
func readAll(r io.Reader, buf []byte) (int, error) {
	n := 0
	for {
		k, err := r.Read(buf[n:])
		n += k
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if n == len(buf) {
			if k, _ := r.Read(make([]byte, 1)); k > 0 {
				return n, fmt.Errorf("answer longer than %d bytes", len(buf))
			}
			return n, nil
		}
	}
}

// lifecycleStates interns the values of autoscaling/target-lifecycle-state.
func lifecycleStates(b []byte) string {
	switch string(bytes.TrimSpace(b)) {
	case "InService":
		return "InService"
	case "Terminated":
		return "Terminated"
	case "Standby":
		return "Standby"
	case "Detached":
		return "Detached"
	case "Warmed:Stopped":
		return "Warmed:Stopped"
	case "Warmed:Running":
		return "Warmed:Running"
	case "Warmed:Hibernated":
		return "Warmed:Hibernated"
	case "Warmed:Terminated":
		return "Warmed:Terminated"
	}
	return ""
}
